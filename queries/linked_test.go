package queries_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/dnsloss/dnsloss/internal/chstore"
	"github.com/dnsloss/dnsloss/internal/chtest"
	"github.com/dnsloss/dnsloss/internal/simcap"
	"github.com/dnsloss/dnsloss/queries"
)

// TestLinkSameAsViews: the scratch tables of a period hold exactly the rows the views give for
// it, though Link reads only the messages near the period: a third of a ten-minute capture of
// glibc clients at 20 % loss, cut off the lookup buckets, with lookups running across both ends.
// The unbounded Link is the views' whole answer.
func TestLinkSameAsViews(t *testing.T) {
	cfg := simcap.Defaults()
	cfg.Hosts, cfg.Lookups, cfg.QLoss, cfg.RLoss, cfg.Seed = 2, 300, 0.2, 0.2, 5
	res, err := simcap.Run(cfg)
	if err != nil {
		t.Fatal(err)
	}
	s := chtest.Fresh(t, "search_domains")
	chtest.Insert(t, s, res.Messages)
	first, last := res.Messages[0].TS, res.Messages[0].TS
	for _, m := range res.Messages {
		first, last = min(first, m.TS), max(last, m.TS)
	}
	if last-first < int64(5*time.Minute) {
		t.Fatalf("the capture spans %s, want 5 minutes or more (several lookup buckets)", time.Duration(last-first))
	}
	since := time.Unix(0, first+(last-first)/3+1_234_567).UTC()
	until := time.Unix(0, first+2*(last-first)/3+7_654_321).UTC()

	lookups := "host, client_ip, name, qtypes, toUnixTimestamp64Nano(start_ts), duration_ms, attempts, names_tried, name_results," +
		" servers, retries, outcome, masked_timeout, time_lost_ms"
	attempts := "host, client_ip, toUnixTimestamp64Nano(lookup_ts), toUnixTimestamp64Nano(ts), qname, qtype, id, client_port, result, link"
	tx := "host, toUnixTimestamp64Nano(query_ts), client_ip, client_port, id, qname, qtype, outcome, rtt_ms, rcode"
	mid := time.Unix(0, first+(last-first)/2).UTC()
	for _, tc := range []struct {
		name         string
		since, until time.Time
		settings     string // rows for dnsloss_settings, for this case only
		minRows      int
	}{
		{"period", since, until, "", 100},
		{"everything", time.Time{}, time.Time{}, "", 100},
		// 20 s with buckets of 3 s: the linked messages hold fewer search steps than the
		// suffix needs (6), the hour around them more
		{"short period", mid, mid.Add(20 * time.Second), "('lookup_bucket_ms', 3000), ('suffix_min_support', 6)", 5},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.settings != "" {
				chtest.Query(t, s, "INSERT INTO dnsloss_settings (name, value) VALUES "+tc.settings, nil)
				defer chtest.Query(t, s, "TRUNCATE TABLE dnsloss_settings", nil)
			}
			lk, err := queries.Link(context.Background(), s, tc.since, tc.until)
			if err != nil {
				t.Fatal(err)
			}
			defer lk.Close()
			if !lk.Scratch {
				t.Fatal("Link made no scratch tables")
			}
			p := chstore.Params{"since": "1970-01-01 00:00:00", "until": "2262-01-01 00:00:00",
				"l": lk.Lookups, "a": lk.Attempts, "t": lk.Transactions}
			if !tc.since.IsZero() {
				p["since"], p["until"] = tc.since.Format("2006-01-02 15:04:05.000000000"), tc.until.Format("2006-01-02 15:04:05.000000000")
			}
			in := func(col string) string {
				return " WHERE " + col + " >= {since:DateTime64(9, 'UTC')} AND " + col + " < {until:DateTime64(9, 'UTC')} ORDER BY ALL"
			}
			for _, c := range []struct{ what, view, table string }{
				{"lookups", "SELECT " + lookups + " FROM dns_lookups" + in("start_ts"), "SELECT " + lookups + " FROM {l:Identifier}" + in("start_ts")},
				{"attempts", "SELECT " + attempts + " FROM dns_lookup_attempts" + in("lookup_ts"), "SELECT " + attempts + " FROM {a:Identifier}" + in("lookup_ts")},
				{"transactions", "SELECT " + tx + " FROM dns_transactions" + in("query_ts"), "SELECT " + tx + " FROM {t:Identifier}" + in("query_ts")},
			} {
				want := chtest.Query(t, s, c.view, p)
				got := chtest.Query(t, s, c.table, p)
				wl, gl := strings.Split(strings.TrimSpace(want), "\n"), strings.Split(strings.TrimSpace(got), "\n")
				if len(wl) < tc.minRows {
					t.Fatalf("%s: the views give %d rows in the period, want %d or more for a meaningful test", c.what, len(wl), tc.minRows)
				}
				if want != got {
					t.Errorf("%s: the scratch table has %d rows, the views %d; first difference:\n%s", c.what, len(gl), len(wl), firstDiff(wl, gl))
				}
			}
			if tc.settings != "" {
				tried := chtest.Query(t, s, "SELECT countIf(length(names_tried) > 1) FROM {l:Identifier}", p)
				if strings.TrimSpace(tried) == "0" {
					t.Errorf("no lookup in the period tried a second name: the case shows nothing about suffixes")
				}
				return
			}
			if tc.since.IsZero() {
				return
			}
			failed := chtest.Query(t, s, "SELECT countIf(outcome != 'answered'), countIf(start_ts < {since:DateTime64(9, 'UTC')} OR end_ts >= {until:DateTime64(9, 'UTC')})"+
				" FROM dns_lookups WHERE start_ts >= {since:DateTime64(9, 'UTC')} - INTERVAL 30 SECOND AND start_ts < {until:DateTime64(9, 'UTC')}", p)
			if f := strings.Fields(failed); len(f) != 2 || f[0] == "0" || f[1] == "0" {
				t.Errorf("failed lookups and lookups across the period's ends near it: %q, want some of each", failed)
			}
		})
	}
}

func firstDiff(want, got []string) string {
	for i := range max(len(want), len(got)) {
		var w, g string
		if i < len(want) {
			w = want[i]
		}
		if i < len(got) {
			g = got[i]
		}
		if w != g {
			return "views: " + w + "\ntable: " + g
		}
	}
	return ""
}

// TestLinkAsksOtherViews: a store whose lookup views are not this program's (a server not yet
// upgraded with `schema apply`, or a cluster's) is asked through its views: the scratch tables
// take the views' columns but would be filled by this program's queries.
func TestLinkAsksOtherViews(t *testing.T) {
	s := chtest.Fresh(t)
	ctx := context.Background()
	comment := strings.TrimSpace(chtest.Query(t, s, "SELECT comment FROM system.tables WHERE database = currentDatabase() AND name = 'dns_lookups'", nil))
	if !strings.HasPrefix(comment, "dnsloss:") {
		t.Fatalf("dns_lookups has comment %q, want the hash ApplyViews leaves", comment)
	}
	setComment := func(c string) {
		if err := s.Exec(ctx, "ALTER TABLE dns_lookups MODIFY COMMENT "+chstore.QuoteString(c), nil); err != nil {
			t.Fatal(err)
		}
	}
	setComment("dnsloss:0123456789abcdef")
	defer setComment(comment)
	// Leftovers of a killed report are dropped once a day old, by the time in their name; the
	// tables of a report still running (younger) are left alone. So on a server: here the
	// store, wrapped, does not say that this process holds it alone.
	stale := fmt.Sprintf("dnsloss_scratch_%d_0123456789abcdef_l", time.Now().Add(-25*time.Hour).Unix())
	running := fmt.Sprintf("dnsloss_scratch_%d_0123456789abcdef_l", time.Now().Add(-time.Hour).Unix())
	for _, n := range []string{stale, running} {
		if err := s.Exec(ctx, "CREATE TABLE "+n+" AS dns_lookups ENGINE = Memory", nil); err != nil {
			t.Fatal(err)
		}
	}
	defer s.Exec(ctx, "DROP TABLE IF EXISTS "+running, nil)
	lk, err := queries.Link(ctx, sharedStore{s}, time.Time{}, time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	defer lk.Close()
	if lk.Scratch || lk.Transactions != "dns_transactions" || lk.Attempts != "dns_lookup_attempts" || lk.Lookups != "dns_lookups" {
		t.Errorf("got %+v, want the views", lk)
	}
	if n := chtest.Query(t, s, "SELECT arrayStringConcat(groupArray(name), ' ') FROM system.tables WHERE startsWith(name, 'dnsloss_scratch_')", nil); strings.TrimSpace(n) != running {
		t.Errorf("scratch tables after Link: %q, want only the running report's %s", n, running)
	}
	// On the embedded engine, which this process holds alone, every leftover goes.
	lk2, err := queries.Link(ctx, s, time.Time{}, time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	defer lk2.Close()
	if n := chtest.Query(t, s, "SELECT arrayStringConcat(groupArray(name), ' ') FROM system.tables WHERE startsWith(name, 'dnsloss_scratch_')", nil); strings.TrimSpace(n) != "" {
		t.Errorf("scratch tables after Link on the embedded engine: %q, want none", n)
	}
}

// sharedStore hides that its store is held by this process alone (chstore.Exclusive), as a
// server's is not.
type sharedStore struct{ chstore.Store }
