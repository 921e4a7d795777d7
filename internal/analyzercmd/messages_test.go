package analyzercmd_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestSmallMessages: several report formats without --every are said to need it (it said
// "unknown --format"); ingest names the file a copy duplicates as the other paths given on the
// command line, relative to the working directory, not by its full path; a scheduled report of one
// host says "1 host", not "1 hosts".
func TestSmallMessages(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	r := runIn(t, dir, nil, "report", "--format", "html,json")
	if r.code != 2 || !strings.Contains(r.stderr, "--format html,json: several formats need --every") {
		t.Errorf("report --format html,json: got exit %d, stderr %q; want 2 and that several formats need --every", r.code, r.stderr)
	}
	pcap, err := os.ReadFile(lab("drop-name.pcap"))
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{"a.pcap", "b.pcap"} {
		os.WriteFile(filepath.Join(dir, f), pcap, 0o644)
	}
	if r := runIn(t, dir, nil, "--db", "db", "ingest", "--host", "web-1", "a.pcap"); r.code != 0 {
		t.Fatalf("ingest a.pcap: exit %d: %s", r.code, r.stderr)
	}
	r = runIn(t, dir, nil, "--db", "db", "ingest", "--host", "web-1", "b.pcap")
	if want := "ingest b.pcap: the same packets as a.pcap, already in the store for host web-1; not stored twice\n"; r.code != 0 || r.stderr != want {
		t.Errorf("ingest of a copy: got exit %d, stderr %q; want 0 and %q", r.code, r.stderr, want)
	}
	r = runIn(t, dir, nil, "--db", "db", "report", "--every", "24h", "--out-dir", "reports", "--format", "json", "--once")
	if r.code != 0 || !strings.Contains(r.stderr, ": 1 host, 18 attempts, 9 unanswered;") {
		t.Errorf("scheduled report: got exit %d, stderr %q; want 0 and a line that says 1 host, 18 attempts", r.code, r.stderr)
	}
}
