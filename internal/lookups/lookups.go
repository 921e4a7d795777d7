// Package lookups reads stub-resolver lookups (the dns_lookups view: what one getaddrinfo() or
// LookupHost call put on the wire) from a store, and says each one in a line a person reads at a
// glance.
package lookups

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/dnsloss/dnsloss/internal/chstore"
	"github.com/dnsloss/dnsloss/queries"
)

// Filter selects lookups. The zero value selects all.
type Filter struct {
	Failed bool      // only lookups without a positive answer
	Masked bool      // only lookups where an NXDOMAIN or NODATA hid a timeout
	Host   string    // capture host; empty for all
	Name   string    // the name the application asked for; empty for all
	Since  time.Time // lookups that started at or after; zero for no bound
	Until  time.Time // lookups that started before; zero for no bound
	Limit  int       // at most this many, the earliest first; 0 for no limit
}

// Lookup is one row of dns_lookups.
type Lookup struct {
	Host            string      `json:"host"`
	Client          string      `json:"client_ip"`
	Name            string      `json:"name"`
	QTypes          []string    `json:"qtypes"`
	StartNS         int64       `json:"start_ns,string"`
	EndNS           int64       `json:"end_ns,string"`
	DurationMS      float64     `json:"duration_ms"`
	Attempts        int         `json:"attempts"`
	NamesTried      []string    `json:"names_tried"`
	NameResults     []string    `json:"name_results"`
	NameOffsetsMS   []float64   `json:"name_offsets_ms"`
	NameSendsMS     [][]float64 `json:"name_sends_ms"`
	NameServers     [][]string  `json:"name_servers"`
	NameAnswered    [][]string  `json:"name_answered_qtypes"`   // per name, types whose last attempt got a positive answer
	NameUnanswered  [][]string  `json:"name_unanswered_qtypes"` // per name, types whose last attempt got none
	Servers         []string    `json:"servers"`
	Retries         int         `json:"retries"`
	SearchFallbacks int         `json:"search_fallbacks"`
	Outcome         string      `json:"outcome"`
	MaskedTimeout   bool        `json:"masked_timeout"`
	TimeLostMS      float64     `json:"time_lost_ms"`
}

// Start is when the lookup's first query left.
func (l Lookup) Start() time.Time { return time.Unix(0, l.StartNS).UTC() }

// End is when the lookup's last answer came, or its last wait ran out.
func (l Lookup) End() time.Time { return time.Unix(0, l.EndNS).UTC() }

const columns = `host, client_ip, name, qtypes, toString(toUnixTimestamp64Nano(start_ts)) AS start_ns,
    toString(toUnixTimestamp64Nano(end_ts)) AS end_ns, duration_ms, toUInt32(attempts) AS attempts, names_tried,
    name_results, name_offsets_ms, name_sends_ms, name_servers, name_answered_qtypes, name_unanswered_qtypes, servers, toUInt32(retries) AS retries,
    toUInt32(search_fallbacks) AS search_fallbacks, outcome, toBool(masked_timeout) AS masked_timeout, time_lost_ms`

// Query returns the SQL and parameters that select f's lookups. Values reach the store as
// server-side parameters, never as SQL text.
func (f Filter) Query() (string, chstore.Params) {
	var where []string
	p := chstore.Params{}
	if f.Failed {
		where = append(where, "outcome != 'answered'")
	}
	if f.Masked {
		where = append(where, "masked_timeout = 1")
	}
	if f.Host != "" {
		where = append(where, "host = {host:String}")
		p["host"] = f.Host
	}
	if f.Name != "" {
		where = append(where, "name = lower({name:String})")
		p["name"] = strings.TrimSuffix(f.Name, ".")
	}
	if !f.Since.IsZero() {
		where = append(where, "start_ts >= fromUnixTimestamp64Nano({since:Int64}, 'UTC')")
		p["since"] = strconv.FormatInt(f.Since.UnixNano(), 10)
	}
	if !f.Until.IsZero() {
		where = append(where, "start_ts < fromUnixTimestamp64Nano({until:Int64}, 'UTC')")
		p["until"] = strconv.FormatInt(f.Until.UnixNano(), 10)
	}
	p["lookups"] = "dns_lookups"
	sql := "SELECT " + columns + " FROM {lookups:Identifier}"
	if len(where) > 0 {
		sql += " WHERE " + strings.Join(where, " AND ")
	}
	sql += " ORDER BY start_ts, host, client_ip"
	if f.Limit > 0 {
		sql += " LIMIT {limit:UInt64}"
		p["limit"] = strconv.Itoa(f.Limit)
	}
	return sql, p
}

// List returns the lookups that f selects, the earliest first. With a time range, it links only
// the lookups of that range (queries.Link) instead of asking the view, which links the whole
// store whatever the range.
func List(ctx context.Context, store chstore.Store, f Filter) ([]Lookup, error) {
	sql, p := f.Query()
	if !f.Since.IsZero() || !f.Until.IsZero() {
		lk, err := queries.Link(ctx, store, f.Since, f.Until)
		if err != nil {
			return nil, fmt.Errorf("cannot list lookups from %s: %w", store.Describe(), err)
		}
		defer lk.Close()
		p["lookups"] = lk.Lookups
	}
	out, err := store.Query(ctx, sql, p, "JSONEachRow")
	if err != nil {
		return nil, fmt.Errorf("cannot list lookups from %s: %w", store.Describe(), err)
	}
	var ls []Lookup
	dec := json.NewDecoder(strings.NewReader(string(out)))
	for dec.More() {
		var l Lookup
		if err := dec.Decode(&l); err != nil {
			return nil, fmt.Errorf("cannot read lookup %d from %s: %w", len(ls)+1, store.Describe(), err)
		}
		ls = append(ls, l)
	}
	return ls, nil
}

// Line says the lookup in one line, e.g.
//
//	10.53.0.2 www.example.com A/AAAA: no answer from 10.53.0.1 at +0s, +5s; tried www.example.com.in.corp.example -> NXDOMAIN at +10s (NXDOMAIN hides a timeout)
//
// or, when the stub went on to the next name although one query type was answered,
//
//	10.53.0.2 www.example.com A/AAAA: no answer to AAAA from 10.53.0.1 at +0s, +5s (answer to A discarded); tried ...
//
// Times are offsets from the lookup's first query; sends less than 100 ms apart (A and AAAA)
// count as one. A negative answer after a round of sends that went unanswered says so.
func (l Lookup) Line() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s %s %s: ", l.Client, l.Name, strings.Join(l.QTypes, "/"))
	for i, name := range l.NamesTried {
		if i > 0 {
			b.WriteString("; ")
		}
		if name != l.Name {
			fmt.Fprintf(&b, "tried %s ", name)
		}
		sends := at(l.NameSendsMS, i)
		switch result := at(l.NameResults, i); result {
		case "timeout":
			if name != l.Name {
				b.WriteString("-> ")
			}
			b.WriteString("no answer")
			if un := at(l.NameUnanswered, i); len(un) > 0 && len(un) < len(l.QTypes) {
				fmt.Fprintf(&b, " to %s", strings.Join(un, "/"))
			}
			fmt.Fprintf(&b, " from %s at %s", strings.Join(at(l.NameServers, i), ", "), offsets(sends))
		case "answer":
			if name != l.Name {
				b.WriteString("-> ")
			}
			if rounds := dedupe(sends); len(rounds) > 1 {
				fmt.Fprintf(&b, "answered at %s after no answer at %s", offset(rounds[len(rounds)-1]), offsets(rounds[:len(rounds)-1]))
			} else {
				fmt.Fprintf(&b, "answered at %s", offset(last(sends)))
			}
		default:
			if name != l.Name {
				b.WriteString("-> ")
			}
			if rounds := dedupe(sends); len(rounds) > 1 {
				fmt.Fprintf(&b, "%s at %s after no answer at %s", strings.ToUpper(result), offset(rounds[len(rounds)-1]), offsets(rounds[:len(rounds)-1]))
			} else {
				fmt.Fprintf(&b, "%s at %s", strings.ToUpper(result), offset(last(sends)))
			}
		}
		if ans := at(l.NameAnswered, i); len(ans) > 0 && at(l.NameResults, i) != "answer" {
			fmt.Fprintf(&b, " (answer to %s discarded)", strings.Join(ans, "/"))
		}
	}
	if l.MaskedTimeout {
		hider := "NXDOMAIN"
		if !contains(l.NameResults, "nxdomain") {
			hider = "NODATA"
		}
		fmt.Fprintf(&b, " (%s hides a timeout)", hider)
	}
	return b.String()
}

func at[T any](s []T, i int) T {
	var zero T
	if i < len(s) {
		return s[i]
	}
	return zero
}

func contains(s []string, v string) bool {
	for _, x := range s {
		if x == v {
			return true
		}
	}
	return false
}

func last(s []float64) float64 {
	if len(s) == 0 {
		return 0
	}
	return s[len(s)-1]
}

// dedupe merges sends less than 100 ms after the previous kept one.
func dedupe(ms []float64) []float64 {
	var out []float64
	for _, v := range ms {
		if len(out) == 0 || v-out[len(out)-1] >= 100 {
			out = append(out, v)
		}
	}
	return out
}

func offsets(ms []float64) string {
	var parts []string
	for _, v := range dedupe(ms) {
		parts = append(parts, offset(v))
	}
	return strings.Join(parts, ", ")
}

// offset formats milliseconds as seconds after the start, to a tenth: "+5s", "+1.5s".
func offset(ms float64) string {
	s := math.Round(ms/100) / 10
	return "+" + strconv.FormatFloat(s, 'f', -1, 64) + "s"
}
