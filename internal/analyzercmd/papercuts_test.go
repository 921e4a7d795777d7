package analyzercmd_test

import (
	"encoding/json"
	"strings"
	"testing"
)

// TestSettingsReset: reset gives a setting its default again, in the views and in settings list,
// and says what it did.
func TestSettingsReset(t *testing.T) {
	db := t.TempDir()
	if r := run(t, nil, "--db", db, "ingest", "--quiet", lab("drop-name.pcap")); r.code != 0 {
		t.Fatalf("ingest: exit %d: %s", r.code, r.stderr)
	}
	answered := func() string {
		t.Helper()
		r := run(t, nil, "--db", db, "sql", "-f", "TSV", "SELECT countIf(outcome = 'answered') FROM dns_transactions")
		if r.code != 0 {
			t.Fatalf("sql: exit %d: %s", r.code, r.stderr)
		}
		return strings.TrimSpace(r.stdout)
	}
	isSet := func() map[string]bool {
		t.Helper()
		r := run(t, nil, "--db", db, "settings", "list", "-f", "json")
		var list struct {
			Rows []struct {
				Name string
				Set  bool
			}
		}
		if err := json.Unmarshal([]byte(r.stdout), &list); err != nil {
			t.Fatalf("settings list is not JSON: %v\n%s%s", err, r.stdout, r.stderr)
		}
		set := map[string]bool{}
		for _, row := range list.Rows {
			set[row.Name] = row.Set
		}
		return set
	}
	before := answered()
	// suffix_min_support set to its default: reset --all does not say it changed (it said
	// "suffix_min_support = 2, the default (was 2)").
	for _, args := range [][]string{{"match_window_ms", "1"}, {"retry_jitter_ms", "20"}, {"suffix_min_support", "2"}} {
		if r := run(t, nil, append([]string{"--db", db, "settings", "set"}, args...)...); r.code != 0 {
			t.Fatalf("settings set %v: exit %d: %s", args, r.code, r.stderr)
		}
	}
	if got := answered(); got == before {
		t.Fatalf("answered with match_window_ms 1: got %s, the same as with the default: the test proves nothing", got)
	}

	steps := []struct {
		name   string
		args   []string
		code   int
		stdout string // the whole of it
		stderr string // a part of it
	}{
		{"reset", []string{"reset", "match_window_ms"}, 0, "match_window_ms = 10000, the default (was 1)\n", ""},
		{"again", []string{"reset", "match_window_ms"}, 0, "match_window_ms = 10000, the default (it was not set)\n", ""},
		{"unknown name", []string{"reset", "match_window"}, 2, "", `unknown setting "match_window"`},
		{"no name", []string{"reset"}, 2, "", "NAME"},
		{"names and --all", []string{"reset", "--all", "match_skew_ms"}, 2, "", "not both"},
		{"all", []string{"reset", "--all"}, 0, "retry_jitter_ms = 10, the default (was 20)\n", ""},
		{"all again", []string{"reset", "--all"}, 0, "no setting has a value of yours: all have their defaults\n", ""},
		{"set to the default", []string{"set", "suffix_min_support", "2"}, 0, "suffix_min_support = 2 (default 2)\n", ""},
		{"all of them at the default", []string{"reset", "--all"}, 0, "all settings have their defaults (those set had their default values)\n", ""},
		{"one at the default", []string{"set", "suffix_min_support", "2"}, 0, "suffix_min_support = 2 (default 2)\n", ""},
		{"named at the default", []string{"reset", "suffix_min_support"}, 0, "suffix_min_support = 2, the default (it was set to that value)\n", ""},
		{"tiny value", []string{"set", "match_skew_ms", "1e-320"}, 2, "", "match_skew_ms is in milliseconds, which the views count to the nanosecond: 0 or at least 0.000001, not 1e-320"},
		{"tiny value below the minimum", []string{"set", "match_window_ms", "1e-320"}, 2, "", "match_window_ms must be at least 1, not 1e-320 (it takes"},
		{"small value", []string{"set", "match_skew_ms", "0.000001"}, 0, "match_skew_ms = 0.000001 (default 0.5)\n", ""},
		{"reset the small value", []string{"reset", "match_skew_ms"}, 0, "match_skew_ms = 0.5, the default (was 0.000001)\n", ""},
		{"list takes no arguments", []string{"list", "extra"}, 2, "", `list takes no arguments, got "extra"`},
	}
	for _, st := range steps {
		t.Run(st.name, func(t *testing.T) {
			r := run(t, nil, append([]string{"--db", db, "settings"}, st.args...)...)
			if r.code != st.code || r.stdout != st.stdout || !strings.Contains(r.stderr, st.stderr) {
				t.Errorf("settings %s: got exit %d, stdout %q, stderr %q; want exit %d, stdout %q, stderr with %q",
					strings.Join(st.args, " "), r.code, r.stdout, r.stderr, st.code, st.stdout, st.stderr)
			}
		})
	}
	if got := answered(); got != before {
		t.Errorf("answered after reset: got %s, want %s as before the set", got, before)
	}
	for name, set := range isSet() {
		if set {
			t.Errorf("settings list after reset --all: %s is set, want every setting at its default", name)
		}
	}
}

// TestSettingsResetOverHTTP: reset through a server (analyzer serve) works, and refuses while the
// server's views are older than reset (they would read its marker as the value).
func TestSettingsResetOverHTTP(t *testing.T) {
	srv := startServe(t, t.TempDir())
	url := "http://" + srv.addr
	ch := func(args ...string) result { return run(t, nil, append([]string{"--clickhouse", url}, args...)...) }
	if r := ch("settings", "set", "match_skew_ms", "3"); r.code != 0 {
		t.Fatalf("settings set: exit %d: %s", r.code, r.stderr)
	}
	// The view as an analyzer without reset created it.
	old := "CREATE OR REPLACE VIEW dns_transactions AS SELECT (SELECT ifNull(argMaxOrNull(value, updated_at), 0.5) FROM dnsloss_settings WHERE name = 'match_skew_ms') AS match_skew_ms"
	if r := ch("sql", old); r.code != 0 {
		t.Fatalf("cannot create the old view: exit %d: %s", r.code, r.stderr)
	}
	r := ch("settings", "reset", "match_skew_ms")
	if r.code == 0 || !strings.Contains(r.stderr, "dns_transactions") || !strings.Contains(r.stderr, "schema apply") {
		t.Errorf("reset with an old view: got exit %d, stderr %q; want a refusal that names dns_transactions and says to run schema apply", r.code, r.stderr)
	}
	if r := ch("schema", "apply"); r.code != 0 {
		t.Fatalf("schema apply: exit %d: %s", r.code, r.stderr)
	}
	r = ch("settings", "reset", "match_skew_ms")
	if want := "match_skew_ms = 0.5, the default (was 3)\n"; r.code != 0 || r.stdout != want {
		t.Errorf("reset after schema apply: got exit %d, stdout %q, stderr %q; want %q", r.code, r.stdout, r.stderr, want)
	}
	r = ch("sql", "-f", "Bogus", "SELECT 1")
	if r.code != 2 || !strings.Contains(r.stderr, "--format Bogus") || strings.Contains(r.stderr, "UNKNOWN_FORMAT") {
		t.Errorf("sql -f Bogus over HTTP: got exit %d, stderr %q; want exit 2 and one sentence naming --format Bogus", r.code, r.stderr)
	}
}

// TestRefusedFlagValues: flag values that used to be accepted and ignored, or that repeated the
// engine's error, get one clear error and exit status 2.
func TestRefusedFlagValues(t *testing.T) {
	db := t.TempDir()
	tests := []struct {
		name string
		args []string
		want []string // parts of stderr
	}{
		{"negative limit", []string{"lookups", "--limit", "-1"}, []string{"--limit -1", "0 for all"}},
		{"lookups empty host", []string{"lookups", "--host", ""}, []string{"--host is empty", "leave --host out"}},
		{"lookups blank name", []string{"lookups", "--name", " "}, []string{"--name is empty"}},
		{"lookups empty range", []string{"lookups", "--since", "2026-12-03T17:36:00Z", "--until", "2026-12-03 17:35"}, []string{"is not before --until"}},
		{"report before 1970", []string{"report", "--since", "1800-01-01", "--until", "2026-12-03"}, []string{"--since", "1800-01-01T00:00:00Z is outside", "1970-01-01 to 2261-12-31"}},
		{"report last too long", []string{"report", "--last", "73000d"}, []string{"--last 73000d", "is outside"}},
		{"lookups after 2261", []string{"lookups", "--until", "2300-01-01"}, []string{"--until", "is outside"}},
		{"negative worst", []string{"report", "--worst", "-1"}, []string{"--worst -1", "0 or more"}},
		{"negative keep", []string{"report", "--every", "1h", "--out-dir", db, "--keep", "-2"}, []string{"--keep -2", "0 or more"}},
		{"empty host", []string{"ingest", "--host", "", lab("drop-name.pcap")}, []string{"--host is empty", "leave --host out"}},
		{"blank host", []string{"analyze", "--host", " ", lab("drop-name.pcap")}, []string{"--host is empty"}},
		{"unknown format", []string{"sql", "-f", "Bogus", "SELECT 1"}, []string{"--format Bogus", "TSV", "JSONEachRow"}},
		{"misspelt format", []string{"sql", "-f", "JSONEachRo", "SELECT 1"}, []string{"--format JSONEachRo", "did you mean JSONEachRow"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := run(t, nil, append([]string{"--db", db}, tc.args...)...)
			if r.code != 2 {
				t.Errorf("exit: got %d, want 2 (stdout %q, stderr %q)", r.code, r.stdout, r.stderr)
			}
			for _, w := range tc.want {
				if !strings.Contains(r.stderr, w) {
					t.Errorf("stderr: got %q, want it to say %q", r.stderr, w)
				}
			}
			if strings.Contains(r.stderr, "UNKNOWN_FORMAT") || strings.Contains(r.stderr, "Code:") {
				t.Errorf("stderr: got %q, want our sentence, not the engine's text", r.stderr)
			}
		})
	}
	// The rows stay where they were: nothing was ingested under an empty host.
	r := run(t, nil, "--db", db, "sql", "-f", "TSV", "SELECT count() FROM dns_messages")
	if r.stdout != "0\n" {
		t.Errorf("dns_messages after refused ingests: got %q rows, want 0 (%s)", r.stdout, r.stderr)
	}
	// An unknown format the query names itself is the engine's to report.
	r = run(t, nil, "--db", db, "sql", "-f", "TSV", "SELECT 1 FORMAT Nope")
	if r.code == 0 || !strings.Contains(r.stderr, "Nope") {
		t.Errorf("FORMAT Nope in the query: got exit %d, stderr %q; want the engine's error about Nope", r.code, r.stderr)
	}
	// 0 is documented as "all of them" and still accepted.
	if r := run(t, nil, "--db", db, "lookups", "--limit", "0"); r.code != 0 {
		t.Errorf("lookups --limit 0: got exit %d (%s), want 0", r.code, r.stderr)
	}
}
