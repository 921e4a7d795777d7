package dnswire

import (
	"encoding/binary"
	"fmt"
	"net/netip"
	"testing"
	"time"

	"github.com/dnsloss/dnsloss/internal/dnsrow"
	"github.com/dnsloss/dnsloss/internal/ipfrag"
	"github.com/dnsloss/dnsloss/internal/tcpdns"
)

// ip4 builds an IPv4 header src -> dst around payload, with identification id and the flags and
// fragment offset field frag.
func ip4(src, dst string, proto byte, id, frag uint16, payload []byte) []byte {
	b := make([]byte, 20, 20+len(payload))
	b[0] = 0x45
	binary.BigEndian.PutUint16(b[2:], uint16(20+len(payload)))
	binary.BigEndian.PutUint16(b[4:], id)
	binary.BigEndian.PutUint16(b[6:], frag)
	b[8], b[9] = 64, proto
	s, d := netip.MustParseAddr(src).As4(), netip.MustParseAddr(dst).As4()
	copy(b[12:], s[:])
	copy(b[16:], d[:])
	return append(b, payload...)
}

// tcpSeg builds a TCP header (20 bytes) and payload.
func tcpSeg(sport, dport uint16, seq, ack uint32, flags byte, payload []byte) []byte {
	b := make([]byte, 20, 20+len(payload))
	binary.BigEndian.PutUint16(b[0:], sport)
	binary.BigEndian.PutUint16(b[2:], dport)
	binary.BigEndian.PutUint32(b[4:], seq)
	binary.BigEndian.PutUint32(b[8:], ack)
	b[12] = 0x50
	b[13] = flags
	return append(b, payload...)
}

// prefixed is a DNS message with its 2-byte TCP length prefix.
func prefixed(m []byte) []byte { return cat([]byte{byte(len(m) >> 8), byte(len(m))}, m) }

// emitted is a row and the frame during whose decoding it came out (-1: Flush).
type emitted struct {
	frame int
	msg   dnsrow.Message
	iface string
	mal   string
}

func (e emitted) String() string {
	return fmt.Sprintf("frame %d ts %d %s %v:%d > %v:%d id %d qr %d size %d frag %d tcpre %d trunc %d mal %q",
		e.frame, e.msg.TS, e.iface, netip.AddrFrom16(e.msg.SrcIP).Unmap(), e.msg.SrcPort, netip.AddrFrom16(e.msg.DstIP).Unmap(), e.msg.DstPort,
		e.msg.ID, e.msg.QR, e.msg.Size, e.msg.IPFragmented, e.msg.TCPReassembled, e.msg.Truncated, e.mal)
}

// decodeFrames decodes frames with d, then flushes it, and returns every row with the index of
// the frame that released it (-1 for Flush).
func decodeFrames(d *Decoder, frames []Frame) []emitted {
	var out []emitted
	cur := 0
	emit := func(m *dnsrow.Message) {
		out = append(out, emitted{frame: cur, msg: *m, iface: string(m.Iface), mal: string(m.Malformed)})
	}
	for i := range frames {
		cur = i
		d.Decode(&frames[i], emit)
	}
	cur = -1
	d.Flush(emit)
	return out
}

// TestTCPOtherDirection: a message released by a segment of the other direction (the client's
// acknowledgement shows the hole before the server's response will not fill) and one released by
// Flush keep their own flow's addresses, ports, timestamp, interface and direction.
func TestTCPOtherDirection(t *testing.T) {
	const c, s = "192.0.2.1", "198.51.100.53"
	q1 := cat(hdr(1, 0x0100, 1, 0, 0, 0), qname("a.example"), qA)
	r1 := cat(hdr(1, 0x8180, 1, 0, 0, 0), qname("a.example"), qA)
	q2 := cat(hdr(2, 0x0100, 1, 0, 0, 0), qname("b.example"), qA)
	r2 := cat(hdr(2, 0x8180, 1, 0, 0, 0), qname("b.example"), qA)
	const cseq, sseq = 1000, 5000
	up := func(ts int64, seq, ack uint32, flags byte, p []byte) Frame {
		return Frame{LinkType: LinkTypeLinuxSLL2, TS: ts, Iface: "eth0", Data: cat(sll2(4, 0x0800), ip4(c, s, 6, 0, 0, tcpSeg(40000, 53, seq, ack, flags, p)))}
	}
	down := func(ts int64, seq, ack uint32, flags byte, p []byte) Frame {
		return Frame{LinkType: LinkTypeLinuxSLL2, TS: ts, Iface: "eth1", Data: cat(sll2(0, 0x0800), ip4(s, c, 6, 0, 0, tcpSeg(53, 40000, seq, ack, flags, p)))}
	}
	p1, p2 := prefixed(q1), prefixed(q2)
	rr1, rr2 := prefixed(r1), prefixed(r2)
	lost := uint32(7) // server bytes the capture missed, before r2
	frames := []Frame{
		up(1, cseq, 0, 0x02, nil),
		down(2, sseq, cseq+1, 0x12, nil),
		up(3, cseq+1, sseq+1, 0x10, p1[:2]), // prefix alone
		up(4, cseq+3, sseq+1, 0x10, p1[2:]),
		down(5, sseq+1, cseq+1+uint32(len(p1)), 0x10, rr1),
		up(6, cseq+1+uint32(len(p1)), sseq+1+uint32(len(rr1)), 0x10, p2),
		// r1 was whole; the server's next 7 bytes are missing, then r2 arrives ahead of the hole
		down(7, sseq+1+uint32(len(rr1))+lost, cseq+1+uint32(len(p1)+len(p2)), 0x10, rr2),
		// the client acknowledges all of it: the hole will not fill, r2 comes out now
		up(8, cseq+1+uint32(len(p1)+len(p2)), sseq+1+uint32(len(rr1)+len(rr2))+lost, 0x10, nil),
		// a third query cut short: out at Flush, incomplete
		up(9, cseq+1+uint32(len(p1)+len(p2)), sseq+1, 0x10, prefixed(q1)[:20]),
	}
	got := decodeFrames(NewDecoder(Config{}), frames)
	type want struct {
		frame      int
		ts         int64
		iface      string
		dir        uint8
		src        string
		id         uint16
		qr         uint8
		reassembly uint8
		mal        string
	}
	wants := []want{
		{frame: 3, ts: 3, iface: "eth0", dir: dnsrow.DirOut, src: c + ":40000", id: 1, qr: 0, reassembly: 1},
		{frame: 4, ts: 5, iface: "eth1", dir: dnsrow.DirIn, src: s + ":53", id: 1, qr: 1},
		{frame: 5, ts: 6, iface: "eth0", dir: dnsrow.DirOut, src: c + ":40000", id: 2, qr: 0},
		{frame: 7, ts: 7, iface: "eth1", dir: dnsrow.DirIn, src: s + ":53", id: 2, qr: 1},
		{frame: -1, ts: 9, iface: "eth0", dir: dnsrow.DirOut, src: c + ":40000", id: 1, qr: 0, mal: dnsrow.ReasonIncomplete},
	}
	if len(got) != len(wants) {
		t.Fatalf("got %d rows, want %d: %v", len(got), len(wants), got)
	}
	for i, g := range got {
		m := g.msg
		src := netip.AddrPortFrom(netip.AddrFrom16(m.SrcIP).Unmap(), m.SrcPort).String()
		gw := want{frame: g.frame, ts: m.TS, iface: g.iface, dir: m.Direction, src: src, id: m.ID, qr: m.QR, reassembly: m.TCPReassembled, mal: g.mal}
		if gw != wants[i] {
			t.Errorf("row %d: got  %+v\nwant %+v", i, gw, wants[i])
		}
		if m.Transport != dnsrow.TransportTCP || m.IPVersion != 4 {
			t.Errorf("row %d: got transport %d, IP version %d, want TCP over IPv4", i, m.Transport, m.IPVersion)
		}
	}
}

// TestTCPCaptures checks rows of TCP captures against tshark's reading of the same frames
// (frame.time_epoch, ip.src, tcp.srcport, tcp.len, dns.id).
func TestTCPCaptures(t *testing.T) {
	type want struct {
		ts       int64
		src      string
		id       uint16
		qr       uint8
		size     uint32
		reasm    uint8
		released int // frame (0-based) during which the row comes out
	}
	tests := []struct {
		file string
		want []want
	}{
		{"testdata/arkime_arkime__dns-tcp.pcap", []want{
			// frames 4 and 6 carry a whole prefixed message each (tcp.len 30 and 342)
			{ts: 1385482078892909000, src: "10.180.156.141:49342", id: 0x5e63, qr: 0, size: 28, released: 3},
			{ts: 1385482078893841000, src: "10.2.95.39:53", id: 0x5e63, qr: 1, size: 340, released: 5},
			{ts: 1385482080084792000, src: "10.180.156.141:49343", id: 0xe2ec, qr: 0, size: 25, released: 13},
			{ts: 1385482080085781000, src: "10.2.95.39:53", id: 0xe2ec, qr: 1, size: 256, released: 15},
		}},
		{"testdata/DNS-OARC_dnscap__dnso1tcp-midmiss.pcap", []want{
			// frame 4: prefix 001c alone, frame 6 the 28-byte query: the row takes frame 4's time
			{ts: 1515583361548947000, src: "172.17.0.8:51388", id: 0xe7af, qr: 0, size: 28, reasm: 1, released: 5},
			{ts: 1515583361555912000, src: "8.8.8.8:53", id: 0xe7af, qr: 1, size: 44, released: 7},
			{ts: 1515583361556032000, src: "172.17.0.8:51388", id: 0x8b51, qr: 0, size: 45, reasm: 1, released: 11},
			// frame 14 (server, seq 1528701041) lies past a hole; frame 15 (client) acknowledges
			// 1528701087, so the hole is lost and the response comes out while frame 15 is decoded
			{ts: 1515583361663576000, src: "8.8.8.8:53", id: 0x14d9, qr: 1, size: 44, released: 14},
			{ts: 1515583361663734000, src: "172.17.0.8:51388", id: 0x59c6, qr: 0, size: 28, reasm: 1, released: 16},
			{ts: 1515583361709680000, src: "8.8.8.8:53", id: 0x59c6, qr: 1, size: 44, released: 18},
		}},
		{"testdata/DNS-OARC_dnscap__do1t-nosyn-1nolen.pcap", []want{
			// frame 1: a whole query whose prefix was never captured (see TestCaptureCounts)
			{ts: 1515583361552406000, src: "172.17.0.8:51388", id: 0xe7af, qr: 0, size: 28},
		}},
	}
	for _, tc := range tests {
		t.Run(tc.file, func(t *testing.T) {
			got := decodeFrames(NewDecoder(Config{}), loadFrames(t, tc.file))
			if len(got) < len(tc.want) {
				t.Fatalf("got %d rows, want at least %d: %v", len(got), len(tc.want), got)
			}
			for i, w := range tc.want {
				g := got[i]
				m := g.msg
				gw := want{ts: m.TS, src: netip.AddrPortFrom(netip.AddrFrom16(m.SrcIP).Unmap(), m.SrcPort).String(),
					id: m.ID, qr: m.QR, size: m.Size, reasm: m.TCPReassembled, released: g.frame}
				if i == 0 && tc.file == "testdata/DNS-OARC_dnscap__do1t-nosyn-1nolen.pcap" {
					gw.released = 0 // not checked: framed once the next message shows where it ends
				}
				if gw != w {
					t.Errorf("row %d: got  %+v\nwant %+v", i, gw, w)
				}
				if g.mal != "" {
					t.Errorf("row %d: got malformed %q, want none", i, g.mal)
				}
			}
		})
	}
}

// frag4 cuts an IPv4 datagram's payload into fragments of at most n bytes (a multiple of 8).
func frag4(src, dst string, id uint16, payload []byte, n int) [][]byte {
	var out [][]byte
	for off := 0; off < len(payload); off += n {
		end := min(off+n, len(payload))
		fo := uint16(off / 8)
		if end < len(payload) {
			fo |= 0x2000
		}
		out = append(out, ip4(src, dst, 17, id, fo, payload[off:end]))
	}
	return out
}

// ip6frag builds IPv6 fragments (2001:db8::1 -> 2001:db8::2) of a UDP payload, each at most n
// bytes of it (a multiple of 8).
func ip6frag(id uint32, payload []byte, n int) [][]byte {
	var out [][]byte
	for off := 0; off < len(payload); off += n {
		end := min(off+n, len(payload))
		fo := uint16(off)
		if end < len(payload) {
			fo |= 1
		}
		fh := []byte{17, 0, byte(fo >> 8), byte(fo), byte(id >> 24), byte(id >> 16), byte(id >> 8), byte(id)}
		out = append(out, ipv6(44, fh, payload[off:end]))
	}
	return out
}

func TestFragments(t *testing.T) {
	big := cat(hdr(7, 0x8180, 1, 3, 0, 0), qname("frag.example"), qA)
	for range 3 {
		big = cat(big, []byte{0xc0, 12, 0, 16, 0, 1, 0, 0, 0, 60, 0, 200}, make([]byte, 200)) // TXT, 200 bytes
	}
	u := udp(53, 40000, big)
	f4 := frag4("198.51.100.53", "192.0.2.1", 99, u, 256)
	f6 := ip6frag(0xabcdef, u, 256)
	other := frag4("198.51.100.53", "192.0.2.1", 100, udp(53, 9999, make([]byte, 300)), 256) // port 9999 on both sides: no
	other[0][20+0], other[0][20+1] = 0x27, 0x0f

	type want struct {
		rows                  int
		ts                    int64
		size                  uint32
		an                    uint16
		trunc                 uint8
		mal                   string
		fragDatagrams, notDNS uint64
		held                  int
		evictedTimeout, lost  uint64
		fragCut               uint64
		expireAt              int64
	}
	frame := func(ts int64, b []byte) Frame { return Frame{LinkType: LinkTypeRaw, TS: ts, Data: b} }
	tests := []struct {
		name   string
		frames []Frame
		want   want
	}{
		{"ipv4 in order", []Frame{frame(1, f4[0]), frame(2, f4[1]), frame(3, f4[2])},
			want{rows: 1, ts: 1, size: uint32(len(big)), an: 3, fragDatagrams: 1}},
		{"ipv4 reversed", []Frame{frame(1, f4[2]), frame(2, f4[1]), frame(3, f4[0])},
			want{rows: 1, ts: 1, size: uint32(len(big)), an: 3, fragDatagrams: 1}},
		{"ipv6", []Frame{frame(1, f6[0]), frame(2, f6[1]), frame(3, f6[2])},
			want{rows: 1, ts: 1, size: uint32(len(big)), an: 3, fragDatagrams: 1}},
		{"ipv4 last fragment lost: incomplete at Flush", []Frame{frame(1, f4[0]), frame(2, f4[1])},
			want{rows: 1, ts: 1, size: uint32(len(big)), an: 3, mal: dnsrow.ReasonIncomplete, fragDatagrams: 1, lost: 2}},
		{"ipv6 last fragment lost: incomplete at Flush", []Frame{frame(1, f6[0]), frame(2, f6[1])},
			want{rows: 1, ts: 1, size: uint32(len(big)), an: 3, mal: dnsrow.ReasonIncomplete, fragDatagrams: 1, lost: 2}},
		{"first fragment lost: no row, counted", []Frame{frame(1, f4[1]), frame(2, f4[2])},
			want{fragDatagrams: 1, notDNS: 1, lost: 2}},
		{"timeout by Expire", []Frame{frame(1, f4[0])},
			want{rows: 1, ts: 1, size: uint32(len(big)), an: 3, mal: dnsrow.ReasonIncomplete, fragDatagrams: 1, evictedTimeout: 1, lost: 1, expireAt: 1 + int64(ipfrag.DefaultTimeout)}},
		{"held until Expire", []Frame{frame(1, f4[0])},
			want{held: 1, expireAt: int64(ipfrag.DefaultTimeout)}},
		// Decoded alone: the header and question are whole (no reason; as kbandla truncated_dns);
		// the two later fragments are held and given up at Flush without a first part.
		{"first fragment cut by the snaplen", []Frame{frame(1, f4[0][:20+8+40]), frame(2, f4[1]), frame(3, f4[2])},
			want{rows: 1, ts: 1, size: uint32(len(big)), an: 3, trunc: 1, fragDatagrams: 2, notDNS: 1, fragCut: 1, lost: 2}},
		{"not a DNS port", []Frame{frame(1, other[0]), frame(2, other[1])},
			want{fragDatagrams: 1, notDNS: 1}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			d := NewDecoder(Config{})
			var rows []emitted
			emit := func(m *dnsrow.Message) { rows = append(rows, emitted{msg: *m, mal: string(m.Malformed)}) }
			for i := range tc.frames {
				d.Decode(&tc.frames[i], emit)
			}
			if tc.want.expireAt > 0 {
				d.Expire(tc.want.expireAt, emit)
			}
			st := d.Stats()
			held := st.IPFrag.Held
			if tc.want.held == 0 {
				d.Flush(emit)
				st = d.Stats()
				held = st.IPFrag.Held
			}
			var g want
			g.rows = len(rows)
			if len(rows) > 0 {
				m := rows[0].msg
				g.ts, g.size, g.an, g.trunc, g.mal = m.TS, m.Size, m.ANCount, m.Truncated, rows[0].mal
				if m.IPFragmented != 1 || m.ID != 7 || m.SrcPort != 53 {
					t.Errorf("got %v, want id 7 from port 53, IPFragmented", rows[0])
				}
			}
			g.fragDatagrams, g.notDNS, g.held = st.FragDatagrams, st.FragNotDNS, held
			g.evictedTimeout, g.lost, g.fragCut, g.expireAt = st.IPFrag.EvictedTimeout, st.FragsLost, st.FragCut, tc.want.expireAt
			if g != tc.want {
				t.Errorf("got  %+v\nwant %+v", g, tc.want)
			}
			for _, e := range ledgerErrors(st) {
				t.Errorf("%s (%+v)", e, st)
			}
		})
	}
}

// TestCaps: the reassemblers' bounds come from Config.
func TestCaps(t *testing.T) {
	d := NewDecoder(Config{IPFrag: ipfrag.Config{MaxDatagrams: 2}, TCP: tcpdns.Config{MaxFlows: 3, IdleTimeout: time.Hour}})
	emit := func(*dnsrow.Message) {}
	for i := range 10 {
		d.Decode(&Frame{LinkType: LinkTypeRaw, Data: ip4("192.0.2.1", "192.0.2.2", 17, uint16(i), 0x2000, udp(40000, 53, make([]byte, 32)))}, emit)
		d.Decode(&Frame{LinkType: LinkTypeRaw, Data: ip4("192.0.2.1", "192.0.2.2", 6, 0, 0, tcpSeg(uint16(1000+i), 53, 1, 0, 0x02, nil))}, emit)
	}
	st := d.Stats()
	if st.IPFrag.PeakHeld != 2 || st.IPFrag.EvictedCap != 8 || st.TCP.PeakFlows != 3 || st.TCP.FlowsEvicted != 7 {
		t.Errorf("got peak %d datagrams (%d evicted), %d flows (%d evicted), want 2 (8), 3 (7)",
			st.IPFrag.PeakHeld, st.IPFrag.EvictedCap, st.TCP.PeakFlows, st.TCP.FlowsEvicted)
	}
}
