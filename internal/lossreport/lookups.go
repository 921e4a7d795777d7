package lossreport

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/dnsloss/dnsloss/internal/advice"
	"github.com/dnsloss/dnsloss/internal/chstore"
	"github.com/dnsloss/dnsloss/queries"
)

type unansweredRow struct {
	Host       string `json:"host"`
	Client     string `json:"client"`
	Server     string `json:"server"`
	Name       string `json:"name"`
	QType      uint16 `json:"qtype"`
	FirstNs    int64  `json:"first_ns"`
	LastNs     int64  `json:"last_ns"`
	Attempts   int64  `json:"attempts"`
	Unanswered int64  `json:"unanswered"`
	Answered   int64  `json:"answered"`
}

// hasLookups says whether the store has the lookups layer (view dns_lookups).
func hasLookups(ctx context.Context, s chstore.Store) (bool, error) {
	out, err := s.Query(ctx, "SELECT count() FROM system.tables WHERE database = currentDatabase() AND name = 'dns_lookups'", nil, "TSV")
	if err != nil {
		return false, fmt.Errorf("cannot look for the lookups layer: %w", err)
	}
	return strings.TrimSpace(string(out)) != "0", nil
}

type lookupCounts struct {
	Level          string  `json:"level"`
	Host           string  `json:"host"`
	Server         string  `json:"server_ip"`
	Lookups        int64   `json:"lookups"`
	FailedLookups  int64   `json:"failed_lookups"`
	MaskedTimeouts int64   `json:"masked_timeouts"`
	Retries        int64   `json:"retries"`
	TimeLostMs     float64 `json:"time_lost_ms"`
}

func (l *lookupCounts) setOn(c *Counts) {
	c.Lookups, c.FailedLookups, c.MaskedTimeouts, c.Retries = &l.Lookups, &l.FailedLookups, &l.MaskedTimeouts, &l.Retries
	c.TimeLostMs = &l.TimeLostMs
}

func zeroLookups(c *Counts) {
	var z lookupCounts
	z.setOn(c)
}

// lookupCountsOf returns the lookup counts by level, host and server.
func lookupCountsOf(ctx context.Context, s chstore.Store, params chstore.Params) (map[[3]string]*lookupCounts, error) {
	rows, err := queryRows[lookupCounts](ctx, s, "loss_report_lookups", params)
	if err != nil {
		return nil, err
	}
	out := map[[3]string]*lookupCounts{}
	for i := range rows {
		out[[3]string{rows[i].Level, rows[i].Host, rows[i].Server}] = &rows[i]
	}
	return out, nil
}

type worstLookupRow struct {
	Host          string   `json:"host"`
	Client        string   `json:"client_ip"`
	Name          string   `json:"name"`
	QTypes        []string `json:"qtypes"`
	StartNs       int64    `json:"start_ns"`
	DurationMs    float64  `json:"duration_ms"`
	Attempts      int64    `json:"attempts"`
	Retries       int64    `json:"retries"`
	Outcome       string   `json:"outcome"`
	MaskedTimeout uint8    `json:"masked_timeout"`
	TimeLostMs    float64  `json:"time_lost_ms"`
	NamesTried    []string `json:"names_tried"`
	NameResults   []string `json:"name_results"`
	Servers       []string `json:"servers"`
}

// addLookups fills the lookup counts and the worst lookups from the lookups layer where the store
// has it (lk, linked for the report's period and the one it is compared with); without it, the
// worst lookups are the names whose attempts went unanswered most often.
func (r *Report) addLookups(ctx context.Context, s chstore.Store, params chstore.Params, limit int, lk *queries.Linked, opt Options) error {
	params["limit"] = strconv.Itoa(limit)
	defer delete(params, "limit")
	if !r.LookupsAvailable {
		return r.addUnanswered(ctx, s, params)
	}
	counts, err := lookupCountsOf(ctx, s, params)
	if err != nil {
		return err
	}
	if r.Total.Attempts > 0 {
		zeroLookups(&r.Total)
		if c := counts[[3]string{"total", "", ""}]; c != nil {
			c.setOn(&r.Total)
		}
	}
	for i := range r.Hosts {
		zeroLookups(&r.Hosts[i].Counts)
		if c := counts[[3]string{"host", r.Hosts[i].Host, ""}]; c != nil {
			c.setOn(&r.Hosts[i].Counts)
		}
	}
	for i := range r.Rows {
		zeroLookups(&r.Rows[i].Counts)
		if c := counts[[3]string{"server", r.Rows[i].Host, r.Rows[i].Server}]; c != nil {
			c.setOn(&r.Rows[i].Counts)
		}
	}
	rows, err := queryRows[worstLookupRow](ctx, s, "loss_report_worst_lookups", params)
	if err != nil {
		return err
	}
	for _, w := range rows {
		l := Lookup{
			Host: w.Host, Client: w.Client, Server: strings.Join(w.Servers, ","), Name: w.Name, QType: strings.Join(w.QTypes, ","),
			Start: time.Unix(0, w.StartNs).UTC(), DurationMs: w.DurationMs, Attempts: w.Attempts, Outcome: w.Outcome,
		}
		if w.MaskedTimeout == 1 {
			l.Outcome = "masked_timeout"
		}
		var tried []string
		for i, n := range w.NamesTried {
			res := ""
			if i < len(w.NameResults) {
				res = w.NameResults[i]
			}
			tried = append(tried, n+" ("+res+")")
		}
		l.Line = fmt.Sprintf("%s %s %s: %s %s %s after %s s, %s, %s, %s ms lost; tried %s via %s",
			fmtTime(l.Start), l.Host, l.Client, l.Name, l.QType, strings.ReplaceAll(l.Outcome, "_", " "),
			FormatFloat(roundMs(w.DurationMs/1000)), plural(w.Attempts, "attempt"), plurals(w.Retries, "retry", "retries"), FormatFloat(w.TimeLostMs),
			strings.Join(tried, ", "), orNone(w.Servers))
		r.WorstLookups = append(r.WorstLookups, l)
	}
	return r.addAdvice(ctx, s, advice.Scope{Since: opt.Since, Until: opt.Until, Transactions: lk.Transactions, Attempts: lk.Attempts})
}

// addAdvice adds the resolver-option advice of every host in the report (package advice: the
// chance a lookup fails and its worst-case wait under the current and better options), from the
// loss measured in the report's period.
func (r *Report) addAdvice(ctx context.Context, s chstore.Store, sc advice.Scope) error {
	ms, err := advice.Load(ctx, s, sc)
	if err != nil {
		return err
	}
	in := map[string]bool{}
	for _, h := range r.Hosts {
		in[h.Host] = true
	}
	for _, m := range ms {
		if in[m.Host] && m.P > 0 {
			r.Advice = append(r.Advice, Advice{Host: m.Host, Text: strings.TrimPrefix(strings.TrimRight(advice.Advise(m).Text(), "\n"), m.Host+": ")})
		}
	}
	return nil
}

// addUnanswered lists the names whose attempts went unanswered most often (no lookups layer).
func (r *Report) addUnanswered(ctx context.Context, s chstore.Store, params chstore.Params) error {
	rows, err := queryRows[unansweredRow](ctx, s, "loss_report_unanswered", params)
	if err != nil {
		return err
	}
	for _, u := range rows {
		l := Lookup{
			Host: u.Host, Client: u.Client, Server: u.Server, Name: u.Name, QType: TypeName(u.QType),
			Start: time.Unix(0, u.FirstNs).UTC(), DurationMs: roundMs(float64(u.LastNs-u.FirstNs) / 1e6),
			Attempts: u.Attempts, Unanswered: u.Unanswered, Outcome: "unanswered",
		}
		if u.Answered > 0 {
			l.Outcome = "partly unanswered"
		}
		l.Line = fmt.Sprintf("%s %s: %s %s from %s to %s: %d of %s unanswered over %s s",
			l.Start.Format("2006-01-02 15:04:05.000Z"), l.Host, l.Name, l.QType, l.Client, l.Server,
			l.Unanswered, plural(l.Attempts, "attempt"), FormatFloat(roundMs(l.DurationMs/1000)))
		r.WorstLookups = append(r.WorstLookups, l)
	}
	r.Notes = append(r.Notes, "lookup counts (lookups, failed, masked timeouts, retries, time lost) and resolver advice need the lookups layer (view dns_lookups), which this store does not have; worst lookups list the names whose queries went unanswered most often")
	return nil
}

// addPreviousLookups adds the lookup counts of the previous period to r.prevHosts.
func (r *Report) addPreviousLookups(ctx context.Context, s chstore.Store, params chstore.Params) error {
	if !r.LookupsAvailable {
		return nil
	}
	counts, err := lookupCountsOf(ctx, s, params)
	if err != nil {
		return err
	}
	for host, prev := range r.prevHosts {
		zeroLookups(prev)
		if c := counts[[3]string{"host", host, ""}]; c != nil {
			c.setOn(prev)
		}
	}
	return nil
}

func roundMs(v float64) float64 {
	f, _ := strconv.ParseFloat(strconv.FormatFloat(v, 'f', 3, 64), 64)
	return f
}

var typeNames = map[uint16]string{
	1: "A", 2: "NS", 5: "CNAME", 6: "SOA", 12: "PTR", 15: "MX", 16: "TXT", 28: "AAAA", 33: "SRV",
	35: "NAPTR", 43: "DS", 48: "DNSKEY", 64: "SVCB", 65: "HTTPS", 255: "ANY",
}

// TypeName returns the mnemonic of a DNS query type, or TYPEn (RFC 3597).
func TypeName(t uint16) string {
	if n, ok := typeNames[t]; ok {
		return n
	}
	return "TYPE" + strconv.Itoa(int(t))
}
