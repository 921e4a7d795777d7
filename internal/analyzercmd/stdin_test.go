package analyzercmd_test

import (
	"bytes"
	"io"
	"os"
	"os/exec"
	"strings"
	"testing"
)

// TestStdinLeftAlone: the analyzer neither reads nor is disturbed by what waits on its stdin. The
// embedded engine took a pipe on stdin as INSERT data: every write failed, and in
// `while read f; do analyzer ingest "$f"; done < list` it swallowed the rest of the list.
func TestStdinLeftAlone(t *testing.T) {
	t.Parallel()
	db := t.TempDir()
	const rest = "the rest of the list\n"
	for _, args := range [][]string{
		{"ingest", "-q", lab("drop-name.pcap")}, // a new store: schema migrations are inserts too
		{"ingest", "-q", lab("baseline.pcap")},
		{"settings", "set", "match_window_ms", "5000"},
		{"sql", "INSERT INTO search_domains (host, domains, ndots) VALUES ('web-1', ['in.corp.example'], 1)"},
	} {
		r, w, err := os.Pipe()
		if err != nil {
			t.Fatal(err)
		}
		if _, err := io.WriteString(w, rest); err != nil {
			t.Fatal(err)
		}
		w.Close()
		cmd := exec.Command(analyzer, append([]string{"--db", db}, args...)...)
		var stderr bytes.Buffer
		cmd.Stdin, cmd.Stderr = r, &stderr
		if err := cmd.Run(); err != nil {
			t.Errorf("%s with a pipe on stdin: %v\n%s", strings.Join(args, " "), err, stderr.String())
		}
		left, _ := io.ReadAll(r)
		r.Close()
		if string(left) != rest {
			t.Errorf("%s: left %q on stdin, want %q untouched", strings.Join(args, " "), left, rest)
		}
	}
	got := run(t, nil, "--db", db, "sql", "-f", "TSV", "SELECT host, count() FROM dns_messages GROUP BY host ORDER BY host")
	// drop-name.pcap holds 26 DNS messages, baseline.pcap 86 (testdata/lab/README.md)
	if want := "baseline\t86\ndrop-name\t26\n"; got.stdout != want {
		t.Errorf("rows: got %q, want %q (%s)", got.stdout, want, got.stderr)
	}
}
