package ingest_test

import (
	"context"
	"encoding/binary"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/dnsloss/dnsloss/internal/chstore"
	"github.com/dnsloss/dnsloss/internal/chtest"
	"github.com/dnsloss/dnsloss/internal/ingest"
)

// dropName holds 26 DNS messages (testdata/lab/README.md: drop-name), captured at another time
// than baseline.pcap.
const dropName = "../../testdata/lab/drop-name.pcap"

func copyFile(t *testing.T, from, to string) {
	t.Helper()
	b, err := os.ReadFile(from)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Dir(to), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(to, b, 0o644); err != nil {
		t.Fatal(err)
	}
}

// TestFileContents: a file is known by its path, checked against its contents. A copy under
// another path is not stored twice; a file written anew under an ingested path is refused (not
// skipped), and --replace takes it.
func TestFileContents(t *testing.T) {
	ctx := context.Background()
	s := chtest.Fresh(t)
	dir := t.TempDir()
	a, b := filepath.Join(dir, "a", "baseline.pcap"), filepath.Join(dir, "b", "baseline.pcap")
	copyFile(t, baseline, a)
	copyFile(t, baseline, b)
	rows := func() string {
		return strings.TrimSpace(chtest.Query(t, s, "SELECT count() FROM dns_messages WHERE host = 'baseline'", nil)) + " rows, " +
			strings.TrimSpace(chtest.Query(t, s, "SELECT count() FROM capture_stats WHERE host = 'baseline'", nil)) + " files"
	}

	if _, err := ingest.File(ctx, s, a, ingest.Options{}); err != nil {
		t.Fatal(err)
	}
	res, err := ingest.File(ctx, s, b, ingest.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if !res.Skipped || res.DuplicateOf != a {
		t.Errorf("copy: got Skipped %v, DuplicateOf %q, want true, %q", res.Skipped, res.DuplicateOf, a)
	}
	if got, want := rows(), "86 rows, 1 files"; got != want {
		t.Errorf("after the copy: %s, want %s", got, want)
	}

	copyFile(t, dropName, a) // a new capture under the ingested name
	_, err = ingest.File(ctx, s, a, ingest.Options{})
	if err == nil || !strings.Contains(err.Error(), "has changed since") || !strings.Contains(err.Error(), "--replace") {
		t.Errorf("changed file: got error %v, want one saying it changed and naming --replace", err)
	}
	if got, want := rows(), "86 rows, 1 files"; got != want {
		t.Errorf("after the refusal: %s, want %s", got, want)
	}
	if res, err := ingest.File(ctx, s, a, ingest.Options{Replace: true}); err != nil || res.Skipped {
		t.Fatalf("--replace: got %+v, %v", res, err)
	}
	if got, want := rows(), "26 rows, 1 files"; got != want {
		t.Errorf("after --replace: %s, want %s", got, want)
	}
	// the unchanged file again: skipped, as before
	if res, err := ingest.File(ctx, s, a, ingest.Options{}); err != nil || !res.Skipped || res.DuplicateOf != "" {
		t.Errorf("unchanged file: got %+v, %v, want skipped", res, err)
	}

	// A file that grew since it was ingested (a capture still being written): its first packet is
	// the one stored, its later packets are new.
	c := filepath.Join(dir, "c", "growing.pcap")
	whole, err := os.ReadFile(baseline)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Dir(c), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(c, firstRecords(t, whole, 40), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := ingest.File(ctx, s, c, ingest.Options{}); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(c, whole, 0o644); err != nil {
		t.Fatal(err)
	}
	_, err = ingest.File(ctx, s, c, ingest.Options{})
	if err == nil || !strings.Contains(err.Error(), "it holds 86 packets") || !strings.Contains(err.Error(), "the store 40 packets") {
		t.Errorf("grown file: got error %v, want one saying it holds 86 packets and the store 40", err)
	}
}

// TestOverlaps: a file of the same host whose packets span the time of a stored file is
// stored, and named as overlapping it; a file of another host, or of another time, is not.
func TestOverlaps(t *testing.T) {
	ctx := context.Background()
	s := chtest.Fresh(t)
	dir := t.TempDir()
	whole, err := os.ReadFile(baseline)
	if err != nil {
		t.Fatal(err)
	}
	full, part := filepath.Join(dir, "full.pcap"), filepath.Join(dir, "part.pcap")
	if err := os.WriteFile(full, whole, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(part, firstRecords(t, whole, 40), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		path, host string
		want       []string
	}{
		{full, "web-1", nil},
		{dropName, "web-1", nil}, // another time
		{part, "web-2", nil},     // another host
		{part, "web-1", []string{full}},
	} {
		res, err := ingest.File(ctx, s, tc.path, ingest.Options{Host: tc.host, Replace: true})
		if err != nil {
			t.Fatal(err)
		}
		if strings.Join(res.Overlaps, ",") != strings.Join(tc.want, ",") || res.Skipped {
			t.Errorf("%s as %s: overlaps %q (skipped %v), want %q", tc.path, tc.host, res.Overlaps, res.Skipped, tc.want)
		}
	}
}

// firstRecords returns the pcap file b cut after its first n records (little-endian pcap).
func firstRecords(t *testing.T, b []byte, n int) []byte {
	t.Helper()
	if binary.LittleEndian.Uint32(b) != 0xa1b2c3d4 {
		t.Fatal("want a little-endian microsecond pcap")
	}
	off := 24
	for i := 0; i < n; i++ {
		off += 16 + int(binary.LittleEndian.Uint32(b[off+8:]))
	}
	return b[:off]
}

// cancelOnInsert is a store on which Ctrl-C arrives as the rows start to stream.
type cancelOnInsert struct {
	chstore.Store
	cancel context.CancelFunc
}

func (s cancelOnInsert) InsertNative(ctx context.Context, table, columns string, write func(w io.Writer) error) error {
	s.cancel()
	return s.Store.InsertNative(ctx, table, columns, write)
}

// TestInterruptedSays: an interrupted ingest says that the rows stored so far stay until the
// same ingest runs again.
func TestInterruptedSays(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	_, err := ingest.File(ctx, cancelOnInsert{chtest.Fresh(t), cancel}, baseline, ingest.Options{})
	if err == nil || !strings.Contains(err.Error(), "interrupted") || !strings.Contains(err.Error(), "until the same ingest runs again") ||
		!errors.Is(err, context.Canceled) {
		t.Errorf("got %v, want it to say the ingest was interrupted and what to do, wrapping context.Canceled", err)
	}
}
