package lossreport_test

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/dnsloss/dnsloss/internal/chtest"
	"github.com/dnsloss/dnsloss/internal/dnsrow"
	"github.com/dnsloss/dnsloss/internal/lossreport"
)

// TestTypeNames checks that dns_lookups names query types as TypeName does (the view and the
// report's lines each hold the list of mnemonics): one answered lookup for each type 1-300.
func TestTypeNames(t *testing.T) {
	s := chtest.Fresh(t)
	var msgs []dnsrow.Message
	var want strings.Builder
	for qt := uint16(1); qt <= 300; qt++ {
		at := base.Add(time.Duration(qt) * time.Second)
		q := dnsrow.Message{Host: []byte("h"), TS: at.UnixNano(), Transport: dnsrow.TransportUDP, ID: qt,
			QName: []byte(fmt.Sprintf("n%d.example", qt)), QType: qt, QClass: 1, QDCount: 1, IPVersion: 4,
			SrcIP: ip("::ffff:10.0.0.2"), DstIP: ip("::ffff:10.0.0.1"), SrcPort: 1000 + qt, DstPort: 53}
		r := q
		r.QR, r.TS, r.ANCount = 1, at.Add(time.Millisecond).UnixNano(), 1
		r.SrcIP, r.DstIP, r.SrcPort, r.DstPort = q.DstIP, q.SrcIP, 53, q.SrcPort
		msgs = append(msgs, q, r)
		fmt.Fprintf(&want, "n%d.example\t['%s']\n", qt, lossreport.TypeName(qt))
	}
	chtest.Insert(t, s, msgs)
	got := chtest.Query(t, s, "SELECT name, qtypes FROM dns_lookups ORDER BY start_ts", nil)
	if got != want.String() {
		g, w := strings.Split(got, "\n"), strings.Split(want.String(), "\n")
		for i := range min(len(g), len(w)) {
			if g[i] != w[i] {
				t.Errorf("dns_lookups says %q, TypeName %q", g[i], w[i])
			}
		}
		if len(g) != len(w) {
			t.Errorf("dns_lookups: %d lines, want %d", len(g), len(w))
		}
	}
}
