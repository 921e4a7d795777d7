package ingest_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

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
}
