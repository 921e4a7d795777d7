package ingest_test

import (
	"context"
	"errors"
	"io"
	"path/filepath"
	"strings"
	"testing"

	"github.com/dnsloss/dnsloss/internal/chstore"
	"github.com/dnsloss/dnsloss/internal/chtest"
	"github.com/dnsloss/dnsloss/internal/dnsrow"
	"github.com/dnsloss/dnsloss/internal/ingest"
)

// baseline.pcap holds 43 queries and 43 responses (testdata/lab/README.md): 86 rows.
const baseline = "../../testdata/lab/baseline.pcap"

// TestFileReplacesEarlierRows: rows that an interrupted ingest of the same file left (no
// capture_stats row yet) are replaced, and rows of other files stay.
func TestFileReplacesEarlierRows(t *testing.T) {
	abs, err := filepath.Abs(baseline)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name    string
		earlier []string // sources of rows already in dns_messages for host "baseline"
		want    string   // rows after the ingest
	}{
		{"empty store", nil, "86"},
		{"interrupted ingest of the same file", []string{abs, abs, abs}, "86"},
		{"another file of the same host", []string{"/elsewhere/baseline.pcap", "/elsewhere/baseline.pcap"}, "88"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := chtest.Fresh(t)
			var msgs []dnsrow.Message
			for _, src := range tc.earlier {
				msgs = append(msgs, dnsrow.Message{Host: []byte("baseline"), Source: []byte(src), TS: 1e18, IPVersion: 4, Transport: dnsrow.TransportUDP})
			}
			if len(msgs) > 0 {
				chtest.Insert(t, s, msgs)
			}
			res, err := ingest.File(context.Background(), s, baseline, ingest.Options{})
			if err != nil {
				t.Fatal(err)
			}
			if res.Skipped {
				t.Fatal("got Skipped, want the file ingested")
			}
			if got := strings.TrimSpace(chtest.Query(t, s, "SELECT count() FROM dns_messages WHERE host = 'baseline'", nil)); got != tc.want {
				t.Errorf("got %s rows, want %s", got, tc.want)
			}
		})
	}
}

// interrupted is a store whose statements fail as canceled from the n-th on (counting from 0), as
// when Ctrl-C arrives in the middle of an ingest.
type interrupted struct {
	chstore.Store
	n int
}

func (s *interrupted) next() error {
	s.n--
	if s.n < 0 {
		return context.Canceled
	}
	return nil
}

func (s *interrupted) Exec(ctx context.Context, sql string, p chstore.Params) error {
	if err := s.next(); err != nil {
		return err
	}
	return s.Store.Exec(ctx, sql, p)
}

func (s *interrupted) Query(ctx context.Context, sql string, p chstore.Params, format string) ([]byte, error) {
	if err := s.next(); err != nil {
		return nil, err
	}
	return s.Store.Query(ctx, sql, p, format)
}

func (s *interrupted) InsertNative(ctx context.Context, table, columns string, write func(io.Writer) error) error {
	if err := s.next(); err != nil {
		return err
	}
	return s.Store.InsertNative(ctx, table, columns, write)
}

// TestInterruptedReplace: an ingest --replace interrupted at any statement leaves a store in
// which the next plain ingest of the file ends with the file's rows once (a replace that had
// deleted the rows but not yet the capture_stats row left the file counted as ingested, rowless).
func TestInterruptedReplace(t *testing.T) {
	s := chtest.Fresh(t)
	ctx := context.Background()
	count := func() string {
		return strings.TrimSpace(chtest.Query(t, s, "SELECT (SELECT count() FROM dns_messages WHERE host = 'baseline'), (SELECT count() FROM capture_stats WHERE host = 'baseline')", nil))
	}
	for n := 0; ; n++ {
		if _, err := ingest.File(ctx, s, baseline, ingest.Options{}); err != nil {
			t.Fatal(err)
		}
		_, err := ingest.File(ctx, &interrupted{Store: s, n: n}, baseline, ingest.Options{Replace: true})
		if err == nil {
			break // the replace ran to the end: every statement has had its turn to fail
		}
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("interrupted at statement %d: %v", n, err)
		}
		if _, err := ingest.File(ctx, s, baseline, ingest.Options{}); err != nil {
			t.Fatal(err)
		}
		if got := count(); got != "86\t1" {
			t.Errorf("replace interrupted at statement %d, then a plain ingest: got rows, capture_stats rows %q, want 86 and 1", n, got)
		}
	}
	if got := count(); got != "86\t1" {
		t.Errorf("after a replace that ran to the end: got %q, want 86 and 1", got)
	}
}
