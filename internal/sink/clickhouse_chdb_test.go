//go:build !nochdb

package sink_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/netip"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

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

// TestHeldServerOverHTTP: the HTTP server in front of the engine holds every request (a handler
// waiting on a channel). Submit of many more blocks than MemBlocks returns meanwhile, the blocks
// beyond MemBlocks go to the spool, and once the server lets requests through every block is
// stored exactly once.
func TestHeldServerOverHTTP(t *testing.T) {
	const n, mem, rows = 40, 4, 100
	s := chtest.Fresh(t)
	target, err := url.Parse("http://" + chtest.Serve(t, "", ""))
	if err != nil {
		t.Fatal(err)
	}
	release := make(chan struct{})
	held := make(chan struct{}, 1)
	proxy := httputil.NewSingleHostReverseProxy(target)
	front := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case held <- struct{}{}:
		default:
		}
		select {
		case <-release:
		case <-r.Context().Done():
			return
		}
		proxy.ServeHTTP(w, r)
	}))
	defer front.Close()
	ch, err := sink.OpenClickHouse(sink.ServerConfig{URL: front.URL})
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	sk, err := sink.New(sink.Config{Inserter: ch, SpoolDir: dir, MemBlocks: mem, QueueBlocks: n, TokenPrefix: "held",
		MinBackoff: time.Millisecond, MaxBackoff: 10 * time.Millisecond, InsertTimeout: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	blocks := make([]*sink.Block, n)
	for i := range blocks {
		b := dnsrow.NewBatch()
		m := dnsrow.Message{Host: []byte(fmt.Sprintf("block-%02d", i)), Iface: []byte("eth0"), Source: []byte("afpacket:eth0"),
			Direction: dnsrow.DirOut, IPVersion: 4, SrcIP: netip.MustParseAddr("10.53.0.2").As16(), DstIP: netip.MustParseAddr("10.53.0.1").As16(),
			SrcPort: 40000, DstPort: 53, Transport: dnsrow.TransportUDP, RD: 1, QType: 1, QClass: 1, QDCount: 1, Size: 44}
		for j := range rows {
			m.TS, m.ID, m.QName = int64(1767225600+j)*1e9, uint16(j), []byte(fmt.Sprintf("q%d.example", j))
			b.Append(&m)
		}
		data, err := b.EncodeNative(nil)
		if err != nil {
			t.Fatal(err)
		}
		blocks[i] = &sink.Block{Table: dnsrow.Table, Rows: rows, Native: data, Iface: "eth0"}
		for _, c := range b.Input() {
			blocks[i].Columns = append(blocks[i].Columns, c.Name)
		}
	}
	sk.Submit(blocks[0])
	select {
	case <-held:
	case <-time.After(time.Minute): // a guard against a hang, not a measure of speed
		t.Fatal("the first insert never reached the server")
	}
	submitted := make(chan struct{})
	go func() {
		for _, b := range blocks[1:] {
			sk.Submit(b)
		}
		close(submitted)
	}()
	select {
	case <-submitted:
	case <-time.After(time.Minute):
		t.Fatal("Submit did not return while the server held its requests")
	}
	spooled := func() int {
		m, err := filepath.Glob(filepath.Join(dir, "*.block"))
		if err != nil {
			t.Fatal(err)
		}
		return len(m)
	}
	for deadline := time.Now().Add(time.Minute); spooled() != n-mem; {
		if time.Now().After(deadline) {
			t.Fatalf("spool files while held: got %d, want %d", spooled(), n-mem)
		}
		time.Sleep(10 * time.Millisecond)
	}
	close(release)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := sk.Close(ctx); err != nil {
		t.Fatal(err)
	}
	if st := sk.Stats(); st.BlocksSent[dnsrow.Table] != n || st.DroppedRows() != 0 || spooled() != 0 {
		t.Errorf("after release: got %d blocks sent, %d rows dropped, %d spool files; want %d, 0, 0",
			st.BlocksSent[dnsrow.Table], st.DroppedRows(), spooled(), n)
	}
	out, err := s.Query(context.Background(), "SELECT host, count() FROM dns_messages GROUP BY host ORDER BY host", nil, "TSV")
	if err != nil {
		t.Fatal(err)
	}
	var want strings.Builder
	for i := range n {
		fmt.Fprintf(&want, "block-%02d\t%d\n", i, rows)
	}
	if string(out) != want.String() {
		t.Errorf("rows stored per block: got\n%s\nwant\n%s", out, want.String())
	}
}
