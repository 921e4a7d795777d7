//go:build !nochdb

package sink_test

import (
	"context"
	"net/netip"
	"os"
	"strings"
	"testing"

	"github.com/dnsloss/dnsloss/internal/chtest"
	"github.com/dnsloss/dnsloss/internal/dnsrow"
	"github.com/dnsloss/dnsloss/internal/sink"
)

func TestMain(m *testing.M) { os.Exit(chtest.Main(m)) }

// TestInsertNativeAsIs: a block that names its columns goes to an HTTP server as it is (in
// compressed frames with lz4 and zstd, gzip-encoded, or plain) and is stored exactly as the
// decoding path stores it, deduplicated by its token alike.
func TestInsertNativeAsIs(t *testing.T) {
	addr := chtest.Serve(t, "", "")
	for _, comp := range []string{"lz4", "zstd", "gzip", "none"} {
		t.Run(comp, func(t *testing.T) {
			s := chtest.Fresh(t)
			ch, err := sink.OpenClickHouse(sink.ServerConfig{URL: "http://" + addr, Compression: comp})
			if err != nil {
				t.Fatal(err)
			}
			defer ch.Close()
			blocks := map[string]*sink.Block{}
			for _, host := range []string{"as-is", "decoded"} {
				b := dnsrow.NewBatch()
				m := dnsrow.Message{Host: []byte(host), Iface: []byte("eth0"), Source: []byte("afpacket:eth0"), Direction: dnsrow.DirOut,
					IPVersion: 4, SrcIP: netip.MustParseAddr("10.53.0.2").As16(), DstIP: netip.MustParseAddr("2001:db8::1").As16(),
					SrcPort: 40000, DstPort: 53, Transport: dnsrow.TransportUDP, RD: 1, QType: 1, QClass: 1, QDCount: 1, Size: 44}
				for i := range 3000 { // several compressed frames' worth
					m.TS, m.ID, m.QName = int64(1767225600+i)*1e9, uint16(i), []byte(strings.Repeat("x", i%50)+".example")
					m.EDNSOptions = []uint16{uint16(i % 3)}[:i%2]
					b.Append(&m)
				}
				data, err := b.EncodeNative(nil)
				if err != nil {
					t.Fatal(err)
				}
				blk := &sink.Block{Table: dnsrow.Table, Rows: b.Rows(), Native: data, Token: host + "-" + comp}
				if host == "as-is" {
					for _, c := range b.Input() {
						blk.Columns = append(blk.Columns, c.Name)
					}
				}
				blocks[host] = blk
			}
			// The as-is block twice with one token (a retry after a lost answer): stored once.
			for _, b := range []*sink.Block{blocks["as-is"], blocks["as-is"], blocks["decoded"]} {
				if err := ch.Insert(context.Background(), b); err != nil {
					t.Fatalf("insert of %s: %v", b.Token, err)
				}
			}
			rows := func(host string) string {
				out, err := s.Query(context.Background(), "SELECT * EXCEPT host FROM dns_messages WHERE host = '"+host+"' ORDER BY ts", nil, "TSV")
				if err != nil {
					t.Fatal(err)
				}
				return string(out)
			}
			asIs, decoded := rows("as-is"), rows("decoded")
			if n := strings.Count(asIs, "\n"); n != 3000 {
				t.Errorf("as-is: %d rows stored, want 3000 (one copy)", n)
			}
			if asIs != decoded {
				t.Errorf("rows sent as-is differ from rows sent decoded:\n%.500s\n---\n%.500s", asIs, decoded)
			}
		})
	}
}
