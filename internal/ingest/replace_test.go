package ingest_test

import (
	"context"
	"path/filepath"
	"strings"
	"testing"

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
