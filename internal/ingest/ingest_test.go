package ingest_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/dnsloss/dnsloss/internal/chtest"
	"github.com/dnsloss/dnsloss/internal/dnsrow"
	"github.com/dnsloss/dnsloss/internal/dnswire"
	"github.com/dnsloss/dnsloss/internal/ingest"
	"github.com/dnsloss/dnsloss/internal/pcapread"
)

func TestMain(m *testing.M) { os.Exit(chtest.Main(m)) }

// decode runs a Decoder over a capture, Flush included, as ingest does, and returns its stats.
func decode(t *testing.T, path string) dnswire.Stats {
	t.Helper()
	r, err := pcapread.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	d := dnswire.NewDecoder(dnswire.Config{})
	emit := func(*dnsrow.Message) {}
	var p pcapread.Packet
	for {
		err := r.Next(&p)
		if errors.Is(err, io.EOF) || errors.Is(err, pcapread.ErrTruncatedFile) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		d.Decode(&dnswire.Frame{LinkType: p.LinkType, TS: p.TS, Data: p.Data, WireLen: p.WireLen, Iface: p.Iface}, emit)
	}
	d.Flush(emit)
	return d.Stats()
}

// TestCaptureStats: the capture_stats row of an ingested capture holds the decoder's counters,
// reassembly included, and as many dns_messages rows were stored as the row says.
func TestCaptureStats(t *testing.T) {
	columns := []string{"packets", "dns_messages", "non_dns", "malformed", "truncated", "decode_errors", "reassembly_drops"}
	tests := []struct {
		file string
		want map[string]uint64 // counted independently of the decoder, where given
	}{
		// 495 fragments make 82 messages; none lost.
		{"DNS-OARC_dnscap__frags.pcap", map[string]uint64{"packets": 495, "dns_messages": 82, "reassembly_drops": 0}},
		// 145 + 30 bytes of the TCP stream never captured (internal/tcpdns TestMidMiss).
		{"DNS-OARC_dnscap__dnso1tcp-midmiss.pcap", map[string]uint64{"packets": 19, "dns_messages": 6, "reassembly_drops": 175}},
		{"DNS-OARC_dnscap__dnso1tcp.pcap", map[string]uint64{"packets": 212, "dns_messages": 82, "reassembly_drops": 0}},
		{"zeek_zeek__dns-invalid-names.pcap", map[string]uint64{"dns_messages": 3, "malformed": 3}},
		{"kbandla_dpkt__truncated_dns.pcap", map[string]uint64{"dns_messages": 1, "truncated": 1}},
		{"DNS-OARC_dnscap__dns.pcap", map[string]uint64{"packets": 133, "dns_messages": 82, "non_dns": 51}},
	}
	s := chtest.Fresh(t)
	for _, tc := range tests {
		t.Run(tc.file, func(t *testing.T) {
			path := filepath.Join("..", "dnswire", "testdata", tc.file)
			res, err := ingest.File(context.Background(), s, path, ingest.Options{Host: tc.file})
			if err != nil {
				t.Fatal(err)
			}
			want := ingest.CaptureStats(decode(t, path), res.BadRecords)
			for k, v := range tc.want {
				if want[k] != v {
					t.Errorf("decoder: got %s %d, want %d", k, want[k], v)
				}
			}
			got := chtest.Query(t, s, "SELECT "+strings.Join(columns, ", ")+" FROM capture_stats WHERE host = {h:String}", map[string]string{"h": tc.file})
			var wantRow []string
			for _, c := range columns {
				wantRow = append(wantRow, fmt.Sprint(want[c]))
			}
			if w := strings.Join(wantRow, "\t") + "\n"; got != w {
				t.Errorf("capture_stats (%s):\ngot  %s\nwant %s", strings.Join(columns, ", "), got, w)
			}
			rows := chtest.Query(t, s, "SELECT count() FROM dns_messages WHERE host = {h:String}", map[string]string{"h": tc.file})
			if rows != fmt.Sprintf("%d\n", want["dns_messages"]) {
				t.Errorf("dns_messages rows: got %s, want %d", rows, want["dns_messages"])
			}
		})
	}
}
