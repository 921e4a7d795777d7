package analyzercmd_test

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestUsageErrors: a command line the parser refuses (unknown flag, flag without its value, value
// that does not parse, unknown subcommand) exits 2 with one line that says where the help is, as
// README says, not the whole help and exit status 1.
func TestUsageErrors(t *testing.T) {
	t.Parallel()
	db := filepath.Join(t.TempDir(), "db")
	tests := []struct {
		name string
		args []string
		want []string // parts of stderr
	}{
		{"unknown global flag", []string{"--bogus", "report"}, []string{"unknown flag --bogus", "(see analyzer --help)"}},
		{"unknown command flag", []string{"ingest", "--bogus", lab("drop-name.pcap")}, []string{"unknown flag --bogus", "(see analyzer ingest --help)"}},
		{"unknown subcommand flag", []string{"settings", "set", "--bogus", "match_window_ms", "5"}, []string{"unknown flag --bogus", "(see analyzer settings set --help)"}},
		{"global flag without value", []string{"--db"}, []string{"flag --db needs a value", "analyzer --help"}},
		{"short flag without value", []string{"sql", "-f"}, []string{"flag -f needs a value", "analyzer sql --help"}},
		{"value that does not parse", []string{"report", "--worst", "abc"}, []string{`invalid value "abc" for flag --worst`, "analyzer report --help"}},
		{"unknown subcommand", []string{"settings", "bogus"}, []string{`no command "bogus"`, "analyzer settings --help"}},
		{"unknown command", []string{"bogus"}, []string{`no command "bogus"`, "analyzer --help"}},
		{"query that starts with a comment", []string{"sql", "-- the worst\nSELECT 1"}, []string{"taken for a flag", "put -- before it", "analyzer sql --help"}},
		{"missing argument", []string{"settings", "set", "match_window_ms"}, []string{"NAME VALUE"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			args := tc.args
			if args[0] != "--db" {
				args = append([]string{"--db", db}, args...)
			}
			r := run(t, nil, args...)
			if r.code != 2 {
				t.Errorf("exit: got %d, want 2 (stderr %q)", r.code, r.stderr)
			}
			if r.stdout != "" {
				t.Errorf("stdout: got %q, want nothing (no help)", r.stdout)
			}
			if lines := strings.Count(strings.TrimSpace(r.stderr), "\n") + 1; lines != 1 {
				t.Errorf("stderr takes %d lines, want one:\n%s", lines, r.stderr)
			}
			for _, w := range tc.want {
				if !strings.Contains(r.stderr, w) {
					t.Errorf("stderr: got %q, want it to say %q", r.stderr, w)
				}
			}
		})
	}
	if _, err := os.Stat(db); err == nil {
		t.Errorf("a usage error created the store %s", db)
	}
	// Help asked for is no error.
	if r := run(t, nil, "settings", "set", "--help"); r.code != 0 || !strings.Contains(r.stdout, "NAME VALUE") {
		t.Errorf("settings set --help: got exit %d, stdout %q; want 0 and the help", r.code, r.stdout)
	}
}

// runIn runs analyzer in dir, with env added to the environment.
func runIn(t *testing.T, dir string, env []string, args ...string) result {
	t.Helper()
	cmd := exec.Command(analyzer, args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), env...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatalf("cannot run analyzer: %v", err)
	}
	return result{out.String(), errb.String(), code}
}

// TestStoreFlags: an empty --db is refused (the engine made its store in the current directory),
// and so is --db with --clickhouse (--db was ignored); $DNSLOSS_DB with --clickhouse on the
// command line is only said to be unused.
func TestStoreFlags(t *testing.T) {
	t.Parallel()
	server := "http://127.0.0.1:1" // nothing listens: the refusals come before any connection
	tests := []struct {
		name string
		env  []string
		args []string
		code int
		want []string // parts of stderr
	}{
		{"empty --db", nil, []string{"--db", "", "report"}, 2, []string{"--db is empty", "leave --db out"}},
		{"blank --db", nil, []string{"--db", " ", "sql", "SELECT 1"}, 2, []string{"--db is empty"}},
		{"empty --db serve", nil, []string{"--db", "", "serve"}, 2, []string{"--db is empty"}},
		{"empty $DNSLOSS_DB", []string{"DNSLOSS_DB="}, []string{"report"}, 2, []string{"$DNSLOSS_DB is empty", "unset it"}},
		{"--db and --clickhouse", nil, []string{"--db", "x", "--clickhouse", server, "report"}, 2, []string{"--db and --clickhouse both given", "not both"}},
		{"--db and $DNSLOSS_CLICKHOUSE", []string{"DNSLOSS_CLICKHOUSE=" + server}, []string{"--db", "x", "report"}, 2, []string{"--db and $DNSLOSS_CLICKHOUSE both given", "unset DNSLOSS_CLICKHOUSE"}},
		{"both from the environment", []string{"DNSLOSS_CLICKHOUSE=" + server, "DNSLOSS_DB=x"}, []string{"report"}, 2, []string{"$DNSLOSS_DB and $DNSLOSS_CLICKHOUSE both given"}},
		{"$DNSLOSS_DB and --clickhouse", []string{"DNSLOSS_DB=x"}, []string{"--clickhouse", server, "report"}, 1, []string{"$DNSLOSS_DB is not used: --clickhouse is given", "cannot reach ClickHouse"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			r := runIn(t, dir, tc.env, tc.args...)
			if r.code != tc.code {
				t.Errorf("exit: got %d, want %d (stderr %q)", r.code, tc.code, r.stderr)
			}
			for _, w := range tc.want {
				if !strings.Contains(r.stderr, w) {
					t.Errorf("stderr: got %q, want it to say %q", r.stderr, w)
				}
			}
			if left, _ := os.ReadDir(dir); len(left) > 0 {
				t.Errorf("the run left %d entries in its working directory (%s...), want none", len(left), left[0].Name())
			}
		})
	}
}

// TestSQLStatement: sql refuses an empty QUERY (it succeeded, printing nothing) and one of several
// statements (the embedded engine ran them all, and when one failed printed nothing though those
// before it had run); a ';' in a string or a comment, or ending the statement, is no second one.
func TestSQLStatement(t *testing.T) {
	t.Parallel()
	db := t.TempDir() // an empty directory: sql makes the store in it
	tests := []struct {
		name   string
		query  string
		code   int
		stdout string
		stderr string // a part of it
	}{
		{"empty", "", 2, "", "QUERY is empty"},
		{"blank", " \n\t", 2, "", "QUERY is empty"},
		{"two", "SELECT 1; SELECT 2", 2, "", "several SQL statements"},
		{"create and drop", "CREATE TABLE t (x UInt8) ENGINE = Memory; DROP TABLE t", 2, "", "several SQL statements"},
		{"in a string", "SELECT 'a;b'", 0, "a;b\n", ""},
		{"in a comment", "SELECT 1 -- ; SELECT 2", 0, "1\n", ""},
		{"ended by one", "SELECT 3;", 0, "3\n", ""},
		{"and a comment", "SELECT 4; -- done", 0, "4\n", ""},
		// No statement: the engine said "Empty query" (exit 1), or ran nothing and printed nothing.
		{"only ';'", ";", 2, "", "QUERY holds no SQL statement"},
		{"only a comment", "-- only a comment", 2, "", "QUERY holds no SQL statement"},
		{"only a block comment", "/* nothing */ ;", 2, "", "QUERY holds no SQL statement"},
	}
	for _, tc := range tests {
		r := run(t, nil, "--db", db, "sql", "-f", "TSV", "--", tc.query)
		if r.code != tc.code || r.stdout != tc.stdout || !strings.Contains(r.stderr, tc.stderr) {
			t.Errorf("%s: sql %q: got exit %d, stdout %q, stderr %q; want exit %d, stdout %q, stderr with %q",
				tc.name, tc.query, r.code, r.stdout, r.stderr, tc.code, tc.stdout, tc.stderr)
		}
	}
	r := run(t, nil, "--db", db, "sql", "-f", "TSV", "SELECT count() FROM system.tables WHERE database = currentDatabase() AND name = 't'")
	if r.stdout != "0\n" {
		t.Errorf("table t after the refused statements: got %q (%s), want 0: none of them may run", r.stdout, r.stderr)
	}
}

// TestIngestStopsAtBadFile: an ingest that stops at a bad file names the files after it, which
// were not ingested, and says that running it again is safe; it is.
func TestIngestStopsAtBadFile(t *testing.T) {
	t.Parallel()
	db := filepath.Join(t.TempDir(), "db")
	bad := filepath.Join(t.TempDir(), "bad.pcap")
	os.WriteFile(bad, []byte("this is not a capture file\n"), 0o644)
	files := []string{lab("drop-name.pcap"), bad, lab("loss20.pcap"), lab("baseline.pcap")}
	r := run(t, nil, append([]string{"--db", db, "ingest", "--quiet"}, files...)...)
	if r.code != 1 {
		t.Errorf("exit: got %d, want 1 (stderr %q)", r.code, r.stderr)
	}
	for _, w := range []string{"bad.pcap", "not a pcap", `2 files were not ingested: "` + lab("loss20.pcap") + `", "` + lab("baseline.pcap") + `"`, "run the same ingest again", "skipped"} {
		if !strings.Contains(r.stderr, w) {
			t.Errorf("stderr: got %q, want it to say %q", r.stderr, w)
		}
	}
	hosts := func() string {
		t.Helper()
		r := run(t, nil, "--db", db, "sql", "-f", "TSV", "SELECT arraySort(groupUniqArray(host)) FROM dns_messages")
		return strings.TrimSpace(r.stdout)
	}
	if got := hosts(); got != "['drop-name']" {
		t.Errorf("hosts after the stopped ingest: got %s, want only drop-name's", got)
	}
	// As the message says: again, without the bad file.
	files = append(files[:1], files[2:]...)
	if r := run(t, nil, append([]string{"--db", db, "ingest", "--quiet"}, files...)...); r.code != 0 {
		t.Fatalf("ingest again: exit %d: %s", r.code, r.stderr)
	}
	if got := hosts(); got != "['baseline','drop-name','loss20']" {
		t.Errorf("hosts after ingesting again: got %s, want baseline, drop-name and loss20", got)
	}
	r = run(t, nil, "--db", db, "sql", "-f", "TSV", "SELECT count() FROM capture_stats")
	if r.stdout != "3\n" {
		t.Errorf("capture_stats after ingesting again: got %q rows, want 3 (one per file, drop-name's once)", r.stdout)
	}
	// The last file bad: nothing else to name.
	r = run(t, nil, "--db", db, "ingest", "--quiet", lab("baseline.pcap"), bad)
	if r.code != 1 || strings.Contains(r.stderr, "not ingested") {
		t.Errorf("bad file last: got exit %d, stderr %q; want 1 and no list of files not ingested", r.code, r.stderr)
	}
}
