package analyzercmd_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestNoStore: a command that only reads refuses a --db that holds no store (a mistyped --db made
// an empty store and reported "No DNS query attempts in this period", exit 0), and no command
// makes a store in a directory that holds other files; a command that writes makes a new one.
func TestNoStore(t *testing.T) {
	t.Parallel()
	tmp := t.TempDir()
	missing := filepath.Join(tmp, "nonexist", "x", "y")
	other := filepath.Join(tmp, "other")
	os.MkdirAll(other, 0o755)
	os.WriteFile(filepath.Join(other, "notes.txt"), []byte("not a store\n"), 0o644)
	tests := []struct {
		name string
		args []string
		want string // a part of stderr
	}{
		{"report", []string{"--db", missing, "report"}, "no store at " + missing + ": ingest a capture first (analyzer ingest FILE), or give --db / $DNSLOSS_DB the store's directory"},
		{"lookups", []string{"--db", missing, "lookups"}, "no store at " + missing},
		{"sql", []string{"--db", missing, "sql", "SELECT 1"}, "no store at " + missing},
		{"settings list", []string{"--db", missing, "settings", "list"}, "no store at " + missing},
		{"settings reset", []string{"--db", missing, "settings", "reset", "--all"}, "no store at " + missing},
		{"report in another directory", []string{"--db", other, "report"}, other + " holds other files and no store"},
		{"ingest into another directory", []string{"--db", other, "ingest", lab("drop-name.pcap")}, other + " holds other files and no store"},
		{"settings set in another directory", []string{"--db", other, "settings", "set", "match_window_ms", "5000"}, other + " holds other files and no store"},
		{"serve another directory", []string{"--db", other, "serve", "--listen", "127.0.0.1:bogus"}, other + " holds other files and no store"}, // a --listen that fails (after the store is opened) stops it, should it start,
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := run(t, nil, tc.args...)
			if r.code != 2 || !strings.Contains(r.stderr, tc.want) {
				t.Errorf("got exit %d, stderr %q; want 2 and %q", r.code, r.stderr, tc.want)
			}
		})
	}
	if _, err := os.Stat(filepath.Join(tmp, "nonexist")); err == nil {
		t.Errorf("a command that reads created %s", missing)
	}
	if left, _ := os.ReadDir(other); len(left) != 1 {
		t.Errorf("the directory that is not a store holds %d entries after the refusals, want its 1 file", len(left))
	}

	// Without --db, in a directory without ./dnsloss-data: refused, and none made.
	cwd := t.TempDir()
	r := runIn(t, cwd, nil, "report")
	if r.code != 2 || !strings.Contains(r.stderr, "no store at ./dnsloss-data") {
		t.Errorf("report without a store in the working directory: got exit %d, stderr %q; want 2 and no store at ./dnsloss-data", r.code, r.stderr)
	}
	if left, _ := os.ReadDir(cwd); len(left) > 0 {
		t.Errorf("report without a store left %s in the working directory", left[0].Name())
	}

	// A command that writes makes the store, and the commands that read use it; so do they a
	// store made before this program wrote its lock file into it (the engine's layout).
	db := filepath.Join(tmp, "new", "db")
	if r := run(t, nil, "--db", db, "ingest", "--quiet", lab("drop-name.pcap")); r.code != 0 {
		t.Fatalf("ingest into a new directory: exit %d: %s", r.code, r.stderr)
	}
	if err := os.Remove(filepath.Join(db, "dnsloss.lock")); err != nil {
		t.Fatal(err)
	}
	if r := run(t, nil, "--db", db, "sql", "-f", "TSV", "SELECT count() FROM dns_messages"); r.code != 0 || r.stdout != "26\n" {
		t.Errorf("sql on the store without its lock file: got exit %d, %q (%s), want 26", r.code, r.stdout, r.stderr)
	}
}
