package collectorcmd

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/dnsloss/dnsloss/internal/dnsrow"
	"github.com/dnsloss/dnsloss/internal/sink"
)

// Flags out of range, a flag that does not parse, and an interface that does not exist are
// usage errors: exit status 2 at once, naming the flag (or the interface) and what it wants,
// before the sink opens (no spool directory is made).
func TestCaptureRefusesBadFlags(t *testing.T) {
	tests := []struct {
		args []string
		want []string // in stderr
	}{
		{[]string{"--workers", "-1"}, []string{"--workers -1", "1 to 256"}},
		{[]string{"--workers", "0"}, []string{"--workers 0", "1 to 256"}},
		{[]string{"--workers", "257"}, []string{"--workers 257", "1 to 256"}},
		{[]string{"--ring-mb", "0"}, []string{"--ring-mb 0", "want 1 to "}},
		{[]string{"--ring-mb", "-64"}, []string{"--ring-mb -64", "want 1 to "}},
		// 1 PiB of ring: more than any machine here has (the ring is locked kernel memory)
		{[]string{"--ring-mb", "1073741824"}, []string{"--ring-mb 1073741824", "want 1 to ", "a quarter of this machine's memory"}},
		{[]string{"--source", "pcap", "--ring-mb", "4096"}, []string{"--ring-mb 4096", "1 to 2047 with --source pcap"}},
		{[]string{"--batch-rows", "0"}, []string{"--batch-rows 0", "1 or more"}},
		{[]string{"--batch-rows", "-5"}, []string{"--batch-rows -5", "1 or more"}},
		{[]string{"--snaplen", "0"}, []string{"--snaplen 0", "1 or more"}},
		{[]string{"--spool-mb", "0"}, []string{"--spool-mb 0", "1 or more"}},
		{[]string{"--batch-age", "0s"}, []string{"--batch-age 0s", "more than 0"}},
		{[]string{"--stats-interval", "-1s"}, []string{"--stats-interval -1s", "more than 0"}},
		{[]string{"--flush-timeout", "-1s"}, []string{"--flush-timeout -1s", "0 or more"}},
		{[]string{"--source", "pfring"}, []string{`--source "pfring"`, "afpacket or pcap"}},
		{[]string{"--workers", "many"}, []string{"-workers", "see collector capture --help"}},
		{[]string{"--no-such-flag"}, []string{"no-such-flag", "see collector capture --help"}},
		{[]string{"--clickhouse", "htp://ch1:8123"}, []string{`scheme "htp"`}},
		{[]string{"--compression", "brotli"}, []string{`compression "brotli"`}},
		// In range, so the interface is what is refused.
		{[]string{"--workers", "256", "--ring-mb", "1", "--batch-rows", "1", "-i", "dnsloss-nosuch0"},
			[]string{"--interface dnsloss-nosuch0", "no such network interface"}},
		{[]string{"-i", "any,dnsloss-nosuch1"}, []string{"--interface dnsloss-nosuch1"}},
	}
	for _, tc := range tests {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			spool := filepath.Join(t.TempDir(), "spool")
			args := append([]string{"collector", "capture", "--clickhouse", "http://127.0.0.1:1/db", "--spool-dir", spool, "-i", "lo"}, tc.args...)
			var stdout, stderr bytes.Buffer
			start := time.Now()
			// Bounded, so that a flag wrongly accepted fails the test instead of capturing on.
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			code := Run(ctx, args, &stdout, &stderr)
			if code != 2 {
				t.Errorf("exit status %d, want 2; stderr:\n%s", code, stderr.String())
			}
			for _, w := range tc.want {
				if !strings.Contains(stderr.String(), w) {
					t.Errorf("stderr does not say %q:\n%s", w, stderr.String())
				}
			}
			if d := time.Since(start); d > 5*time.Second {
				t.Errorf("refused after %s, want at once", d)
			}
			if _, err := os.Stat(spool); !os.IsNotExist(err) {
				t.Errorf("the spool directory was made (%v): the refusal came after the sink opened", err)
			}
		})
	}
}

// failingInserter refuses every insert, as an unreachable server does.
type failingInserter struct{}

func (failingInserter) Insert(context.Context, *sink.Block) error { return os.ErrDeadlineExceeded }
func (failingInserter) Close() error                              { return nil }

// columnNames lists the batch's columns, as the capture gives them to the sink.
func columnNames(b *dnsrow.Batch) []string {
	var names []string
	for _, c := range b.Input() {
		names = append(names, c.Name)
	}
	return names
}

// When the capture cannot start after the sink has opened (here a filter that does not compile),
// the error comes at once, not after --flush-timeout spent trying to send what an earlier run
// spooled, and that spool is kept for the next run.
func TestCaptureStartFailureKeepsSpool(t *testing.T) {
	spool := filepath.Join(t.TempDir(), "spool")
	sk, err := sink.New(sink.Config{Inserter: failingInserter{}, SpoolDir: spool})
	if err != nil {
		t.Fatal(err)
	}
	b := dnsrow.NewBatch()
	b.Append(&dnsrow.Message{Host: []byte("h"), QName: []byte("example.com")})
	native, err := b.EncodeNative(nil)
	if err != nil {
		t.Fatal(err)
	}
	sk.Submit(&sink.Block{Table: dnsrow.Table, Rows: 1, Native: native, Columns: columnNames(b)})
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := sk.Close(ctx); err != nil {
		t.Fatal(err)
	}
	before, _ := filepath.Glob(filepath.Join(spool, "*.block"))
	if len(before) != 1 {
		t.Fatalf("spooled blocks: %v, want one", before)
	}
	var stdout, stderr bytes.Buffer
	start := time.Now()
	code := Run(context.Background(), []string{"collector", "capture", "-i", "lo", "--clickhouse", "http://127.0.0.1:1/db",
		"--spool-dir", spool, "--flush-timeout", "30s", "--filter", "port fifty-three"}, &stdout, &stderr)
	if code == 0 || !strings.Contains(stderr.String(), "fifty-three") {
		t.Errorf("exit status %d, want a failure naming the filter; stderr:\n%s", code, stderr.String())
	}
	if d := time.Since(start); d > 10*time.Second {
		t.Errorf("the failure came after %s, want at once", d)
	}
	if after, _ := filepath.Glob(filepath.Join(spool, "*.block")); len(after) != 1 {
		t.Errorf("spooled blocks after the failed start: %v, want the one kept", after)
	}
}

// TestUnknownCommand: an unknown command is a usage error, exit 2 (the cli package's own answer
// was exit 3, the status of a crossed --fail-if threshold).
func TestUnknownCommand(t *testing.T) {
	var stdout, stderr bytes.Buffer
	code := Run(context.Background(), []string{"collector", "bogus"}, &stdout, &stderr)
	if want := "collector: no command \"bogus\" (see collector --help)\n"; code != 2 || stderr.String() != want {
		t.Errorf("got exit %d, stderr %q, want 2, %q", code, stderr.String(), want)
	}
}
