package tcpdns

import (
	"encoding/binary"
	"fmt"
	"github.com/dnsloss/dnsloss/internal/pcapread"
	"io"
	"net/netip"
	"path/filepath"
	"testing"

	"github.com/google/gopacket/layers"
)

// capturedSegment is one TCP segment read from a test capture.
type capturedSegment struct {
	ts  int64
	key FlowKey
	seg Segment
}

// readSegments returns the TCP segments of an Ethernet IPv4 capture in testdata, and how many
// UDP datagrams it holds besides. Test-only: the real frame decoder lives elsewhere.
func readSegments(t testing.TB, name string) (segs []capturedSegment, udp [][]byte) {
	t.Helper()
	pkts := readPcap(t, name)
	for _, p := range pkts {
		data := p.data
		var eth layers.Ethernet
		if err := eth.DecodeFromBytes(data, nopFeedback{}); err != nil || eth.EthernetType != layers.EthernetTypeIPv4 {
			continue
		}
		var ip layers.IPv4
		if err := ip.DecodeFromBytes(eth.Payload, nopFeedback{}); err != nil {
			continue
		}
		src, _ := netip.AddrFromSlice(ip.SrcIP.To4())
		dst, _ := netip.AddrFromSlice(ip.DstIP.To4())
		switch ip.Protocol {
		case layers.IPProtocolUDP:
			var u layers.UDP
			if err := u.DecodeFromBytes(ip.Payload, nopFeedback{}); err == nil {
				udp = append(udp, u.Payload)
			}
		case layers.IPProtocolTCP:
			var tcp layers.TCP
			if err := tcp.DecodeFromBytes(ip.Payload, nopFeedback{}); err != nil {
				t.Fatalf("%s: cannot decode TCP: %v", name, err)
			}
			var flags uint8
			if tcp.FIN {
				flags |= FlagFIN
			}
			if tcp.SYN {
				flags |= FlagSYN
			}
			if tcp.RST {
				flags |= FlagRST
			}
			if tcp.ACK {
				flags |= FlagACK
			}
			segs = append(segs, capturedSegment{
				ts: p.ts,
				key: FlowKey{
					Src: netip.AddrPortFrom(src, uint16(tcp.SrcPort)),
					Dst: netip.AddrPortFrom(dst, uint16(tcp.DstPort)),
				},
				seg: Segment{Seq: tcp.Seq, Ack: tcp.Ack, Flags: flags, Payload: tcp.Payload},
			})
		}
	}
	return segs, udp
}

type pcapPacket struct {
	ts   int64
	data []byte
}

// readPcap reads a capture from testdata with the project's reader.
func readPcap(t testing.TB, name string) []pcapPacket {
	t.Helper()
	r, err := pcapread.Open(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	var out []pcapPacket
	var p pcapread.Packet
	for {
		err := r.Next(&p)
		if err == io.EOF {
			return out
		}
		if err != nil {
			t.Fatalf("capture %q: %v", name, err)
		}
		out = append(out, pcapPacket{ts: p.TS, data: append([]byte(nil), p.Data...)})
	}
}

type nopFeedback struct{}

func (nopFeedback) SetTruncated() {}

// emitted is one message a Table emitted, copied.
type emitted struct {
	key  FlowKey
	msg  []byte
	info MsgInfo
}

func (e emitted) id() uint16 { return binary.BigEndian.Uint16(e.msg) }
func (e emitted) qr() int    { return int(e.msg[2] >> 7) }

func (e emitted) String() string {
	return fmt.Sprintf("%v id=%d qr=%d len=%d %+v", e.key, e.id(), e.qr(), len(e.msg), e.info)
}

// run feeds segments to a new Table and returns what it emitted, Flush included.
func run(cfg Config, segs []capturedSegment) ([]emitted, Stats) {
	tab := New(cfg)
	var out []emitted
	emit := func(k FlowKey, msg []byte, info MsgInfo) {
		out = append(out, emitted{key: k, msg: append([]byte(nil), msg...), info: info})
	}
	for _, s := range segs {
		tab.Add(s.ts, s.key, s.seg, emit)
	}
	tab.Flush(emit)
	return out, tab.Stats()
}

// dnsMessages counts the byte strings that carry a DNS header (12 bytes or more).
func dnsMessages(ms []emitted) int {
	n := 0
	for _, m := range ms {
		if len(m.msg) >= 12 {
			n++
		}
	}
	return n
}

func TestCaptures(t *testing.T) {
	tests := []struct {
		file         string
		want         int // DNS messages over TCP
		wantUDP      int
		wantGaps     uint64
		wantComplete bool // every message whole, none after a gap
	}{
		// 212 packets, one connection: 41 queries and 41 responses (dnscap's test7.gold lists 82
		// decoded messages), length prefixes mostly in their own segments.
		{file: "DNS-OARC_dnscap__dnso1tcp.pcap", want: 82, wantComplete: true},
		// See TestMidMiss for which 6.
		{file: "DNS-OARC_dnscap__dnso1tcp-midmiss.pcap", want: 6, wantGaps: 2},
		// One 90-byte segment = 3 x (2 + 28) copies of a query, and one 55-byte response.
		{file: "DNS-OARC_dnscap__dnsotcp-many1pkt.pcap", want: 4, wantComplete: true},
		{file: "DNS-OARC_dnscap__1qtcppadd.pcap", want: 2, wantComplete: true},
		// Two connections, each one query (28 and 25 bytes) and one response (340 and 256 bytes).
		{file: "arkime_arkime__dns-tcp.pcap", want: 4, wantComplete: true},
		// SOURCES.tsv says "one TCP exchange", but all 38 packets are UDP (protocol 17, port 53 on
		// one side): 38 DNS messages, none over TCP.
		{file: "arkime_arkime__dns-wiresharkrepo.pcap", want: 0, wantUDP: 38, wantComplete: true},
		{file: "DNS-OARC_dnscap__dnsotcp-manyopkts.pcap", want: 3, wantComplete: true},
		{file: "DNS-OARC_dnscap__do1t-nosyn-1nolen.pcap", want: 4},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			segs, udp := readSegments(t, tt.file)
			ms, st := run(Config{}, segs)
			if got := dnsMessages(ms); got != tt.want {
				t.Errorf("got %d DNS messages over TCP, want %d: %v", got, tt.want, ms)
			}
			if got := len(udp); got != tt.wantUDP {
				t.Errorf("got %d UDP datagrams, want %d", got, tt.wantUDP)
			}
			if st.Gaps != tt.wantGaps {
				t.Errorf("got %d gaps, want %d", st.Gaps, tt.wantGaps)
			}
			if tt.wantComplete {
				for _, m := range ms {
					if m.info.Incomplete || m.info.Gap || m.info.NoPrefix || len(m.msg) != m.info.Length {
						t.Errorf("got %v, want a whole message with no loss before it", m)
					}
				}
				if st.BytesDropped != 0 || st.LostBytes != 0 {
					t.Errorf("got %d bytes dropped and %d lost, want 0 and 0", st.BytesDropped, st.LostBytes)
				}
			}
			if st.Flows != 0 || st.BytesHeld != 0 {
				t.Errorf("after Flush: got %d flows and %d bytes held, want 0 and 0", st.Flows, st.BytesHeld)
			}
		})
	}
}

// TestMidMiss checks which messages survive the two holes of dnso1tcp-midmiss, and that the
// holes are found from the acknowledgements. The bytes (client 172.17.0.8:51388, server 8.8.8.8):
//
//	client seq 1599198941 "001c" then 28-byte query id 59311 (0xe7af)
//	server seq 1528700850 46 bytes "002c e7af 8180 ..." response 59311
//	client seq 1599198971 "002d" then 45-byte query id 35665 (0x8b51), ending at 1599199018
//	server: the 145-byte response 35665 at 1528700896 is missing; the next server segment is at
//	        1528701041 "002c 14d9 8180 ..." (response id 5337) and acknowledges client byte
//	        1599199048, 30 bytes past 1599199018: the client's query 5337 (2 + 28) was not captured
//	client seq 1599199048 "001c", acknowledging server byte 1528701087: the server's 145 bytes
//	        at 1528700896 were received, so they are lost to the capture, not in flight
//	client seq 1599199050 28-byte query id 22982 (0x59c6); server "002c 59c6 ..." response 22982
//
// So 6 messages: Q 59311, R 59311, Q 35665, R 5337 (after a gap), Q 22982 (after a gap), R 22982;
// 145 + 30 = 175 bytes lost.
func TestMidMiss(t *testing.T) {
	segs, _ := readSegments(t, "DNS-OARC_dnscap__dnso1tcp-midmiss.pcap")
	ms, st := run(Config{}, segs)
	type row struct {
		id      uint16
		qr      int
		gap     bool
		segs    int
		srcPort uint16
	}
	want := []row{
		{id: 59311, qr: 0, segs: 2, srcPort: 51388},
		{id: 59311, qr: 1, segs: 1, srcPort: 53},
		{id: 35665, qr: 0, segs: 2, srcPort: 51388},
		{id: 5337, qr: 1, gap: true, segs: 1, srcPort: 53},
		{id: 22982, qr: 0, gap: true, segs: 2, srcPort: 51388},
		{id: 22982, qr: 1, segs: 1, srcPort: 53},
	}
	if len(ms) != len(want) {
		t.Fatalf("got %d messages, want %d: %v", len(ms), len(want), ms)
	}
	for i, m := range ms {
		got := row{id: m.id(), qr: m.qr(), gap: m.info.Gap, segs: m.info.Segments, srcPort: m.key.Src.Port()}
		if got != want[i] {
			t.Errorf("message %d: got %+v, want %+v", i, got, want[i])
		}
		if m.info.Incomplete {
			t.Errorf("message %d: got Incomplete, want whole", i)
		}
	}
	if st.LostBytes != 175 || st.Gaps != 2 {
		t.Errorf("got %d bytes lost in %d gaps, want 175 in 2", st.LostBytes, st.Gaps)
	}
	if st.BytesDropped != 0 {
		t.Errorf("got %d bytes dropped, want 0 (both holes end at a message boundary)", st.BytesDropped)
	}
}

// TestManyOPkts documents dnsotcp-manyopkts, whose tshark count is doubtful. The client sends two
// 45-byte segments (seq 1599198941 and 1599198986, contiguous):
//
//	segment 1: 001c e7af0100 0001 0000 0000 0000 06676f6f676c6503636f6d 0000 0001 0001  (30 bytes: query 1)
//	           001c e7af0100 0001 0000 0000 0000 06                                    (15 bytes: start of query 2)
//	segment 2: 676f6f676c6503636f6d 0000 0001 0001                                     (15 bytes: rest of query 2)
//	           001c e7af0100 0001 0000 0000 0000 06676f6f676c6503636f6d 0000 0001 0001  (30 bytes: query 3)
//
// 90 bytes = 3 x (2 + 28): three whole queries for google.com A, id 0xe7af, the second straddling
// the segment boundary. A per-frame count (tshark's "dns" filter counts frames, and frame 2 holds
// two messages) says 2; the right count is 3, and there is no response.
func TestManyOPkts(t *testing.T) {
	segs, _ := readSegments(t, "DNS-OARC_dnscap__dnsotcp-manyopkts.pcap")
	ms, _ := run(Config{}, segs)
	wantSegs := []int{1, 2, 1}
	if len(ms) != len(wantSegs) {
		t.Fatalf("got %d messages, want %d: %v", len(ms), len(wantSegs), ms)
	}
	for i, m := range ms {
		if m.id() != 0xe7af || m.qr() != 0 || len(m.msg) != 28 {
			t.Errorf("message %d: got %v, want a 28-byte query id 0xe7af", i, m)
		}
		if m.info.Segments != wantSegs[i] {
			t.Errorf("message %d: got %d segments, want %d", i, m.info.Segments, wantSegs[i])
		}
	}
	if ms[1].info.TS != segs[3].ts {
		t.Errorf("straddling message: got ts %d, want %d (the segment with its first byte)", ms[1].info.TS, segs[3].ts)
	}
}

// TestNoSynNoLen documents do1t-nosyn-1nolen, whose tshark count is doubtful. The capture starts
// mid-connection (no SYN). The first client segment, seq 1599198943, is 28 bytes:
//
//	e7af 0100 0001 0000 0000 0000 06676f6f676c6503636f6d00 0001 0001
//
// a whole query (id 0xe7af, RD, one question google.com A IN: 12 + 12 + 4 = 28 bytes) whose
// 2-byte length prefix "001c" went in an earlier, uncaptured segment (1599198941-42). Read as a
// prefixed message it would claim length 0xe7af and a header with flags 0x0001 (a query with
// RCODE 1), which is impossible, so it is not framed that way. Then come the response
// "002c e7af 8180 ..." (46 bytes), the prefix "002d" alone, the query id 0x8b51 (45 bytes), and
// the response "008f 8b51 8180 ..." (145 bytes). Four DNS messages were on the wire and all four
// were captured whole, bar one prefix; dnscap (test7.gold) reports the first as a FORMERR query
// with id 256, which is its prefix misreading. The right count is 4, the first marked NoPrefix.
func TestNoSynNoLen(t *testing.T) {
	segs, _ := readSegments(t, "DNS-OARC_dnscap__do1t-nosyn-1nolen.pcap")
	ms, st := run(Config{}, segs)
	type row struct {
		id       uint16
		qr       int
		size     int
		noPrefix bool
	}
	want := []row{
		{id: 0xe7af, qr: 0, size: 28, noPrefix: true},
		{id: 0xe7af, qr: 1, size: 44},
		{id: 0x8b51, qr: 0, size: 45},
		{id: 0x8b51, qr: 1, size: 143},
	}
	if len(ms) != len(want) {
		t.Fatalf("got %d messages, want %d: %v", len(ms), len(want), ms)
	}
	for i, m := range ms {
		got := row{id: m.id(), qr: m.qr(), size: len(m.msg), noPrefix: m.info.NoPrefix}
		if got != want[i] {
			t.Errorf("message %d: got %+v, want %+v", i, got, want[i])
		}
	}
	if st.BytesDropped != 0 {
		t.Errorf("got %d bytes dropped, want 0", st.BytesDropped)
	}
}
