package lossreport_test

import (
	"context"
	"strings"
	"testing"

	"github.com/dnsloss/dnsloss/internal/chtest"
	"github.com/dnsloss/dnsloss/internal/dnsrow"
	"github.com/dnsloss/dnsloss/internal/ingest"
	"github.com/dnsloss/dnsloss/internal/lossreport"
)

// TestUnfinishedIngestNoted: rows of a file whose ingest did not finish (no capture_stats row)
// are counted, and the report says so; a finished ingest and live capture rows are not noted.
func TestUnfinishedIngestNoted(t *testing.T) {
	ctx := context.Background()
	s := chtest.Fresh(t)
	if _, err := ingest.File(ctx, s, "../../testdata/lab/baseline.pcap", ingest.Options{}); err != nil {
		t.Fatal(err)
	}
	var msgs []dnsrow.Message
	for i, src := range []string{"/x/cut.pcap", "/x/cut.pcap", "/x/cut.pcap", "afpacket:eth0"} {
		msgs = append(msgs, dnsrow.Message{Host: []byte("cut"), Source: []byte(src), TS: base.UnixNano() + int64(i), IPVersion: 4,
			Transport: dnsrow.TransportUDP, QName: []byte("a.example"), QType: 1, QClass: 1, QDCount: 1,
			SrcIP: ip("::ffff:10.0.0.2"), DstIP: ip("::ffff:10.0.0.1"), SrcPort: 1000, DstPort: 53, ID: uint16(i)})
	}
	chtest.Insert(t, s, msgs)
	r, err := lossreport.Build(ctx, s, lossreport.Options{})
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, n := range r.Notes {
		if strings.Contains(n, "did not finish") {
			got = append(got, n)
		}
	}
	want := "host cut: 3 DNS messages from /x/cut.pcap, whose ingest did not finish (interrupted?), are counted here; run `analyzer ingest \"/x/cut.pcap\"` again to store the whole file"
	if len(got) != 1 || got[0] != want {
		t.Errorf("notes: got %q, want [%q]", got, want)
	}
}
