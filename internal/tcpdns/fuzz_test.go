package tcpdns

import (
	"encoding/binary"
	"net/netip"
	"testing"
)

// FuzzTCPStream feeds a script of segments to a small Table. Each record is: a control byte
// (bit 0 direction, bit 1 SYN, bit 2 FIN, bit 3 RST, bit 4 ACK, bit 5 second connection, bits 6-7
// time step), a 2-byte sequence offset from the direction's base, a 2-byte acknowledgement offset
// from the other direction's base, a 2-byte payload length, and the payload. It checks that
// nothing panics, that the caps hold after every segment, and that what is emitted is consistent.
func FuzzTCPStream(f *testing.F) {
	for _, name := range []string{
		"DNS-OARC_dnscap__dnso1tcp-midmiss.pcap",
		"DNS-OARC_dnscap__dnsotcp-many1pkt.pcap",
		"DNS-OARC_dnscap__dnsotcp-manyopkts.pcap",
		"DNS-OARC_dnscap__do1t-nosyn-1nolen.pcap",
		"DNS-OARC_dnscap__1qtcppadd.pcap",
		"arkime_arkime__dns-tcp.pcap",
	} {
		segs, _ := readSegments(f, name)
		f.Add(script(segs))
	}
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, data []byte) {
		cfg := Config{MaxFlows: 2, MaxBytesPerFlow: 200, MaxBytesTotal: 600, IdleTimeout: 50, ReorderTimeout: 5}
		tab := New(cfg)
		emit := func(k FlowKey, msg []byte, info MsgInfo) {
			switch {
			case len(msg) > 65535:
				t.Fatalf("got a %d-byte message", len(msg))
			case info.Incomplete && len(msg) >= info.Length:
				t.Fatalf("got an Incomplete message of %d bytes with length %d", len(msg), info.Length)
			case !info.Incomplete && len(msg) != info.Length:
				t.Fatalf("got a whole message of %d bytes with length %d", len(msg), info.Length)
			case info.Segments < 1:
				t.Fatalf("got %d segments", info.Segments)
			}
		}
		hosts := [2][2]netip.AddrPort{
			{netip.MustParseAddrPort("192.0.2.1:1000"), netip.MustParseAddrPort("192.0.2.53:53")},
			{netip.MustParseAddrPort("192.0.2.2:1000"), netip.MustParseAddrPort("192.0.2.53:53")},
		}
		base := [2]uint32{0xfffff000, 1000} // one near the wrap
		var ts int64
		for len(data) >= 7 {
			ctl := data[0]
			seqOff := uint32(binary.BigEndian.Uint16(data[1:]))
			ackOff := uint32(binary.BigEndian.Uint16(data[3:]))
			n := min(int(binary.BigEndian.Uint16(data[5:])), len(data)-7)
			payload := data[7 : 7+n]
			data = data[7+n:]
			d := int(ctl & 1)
			conn := hosts[(ctl>>5)&1]
			key := FlowKey{Src: conn[d], Dst: conn[1-d]}
			flags := (ctl >> 1 & 1 * FlagSYN) | (ctl >> 2 & 1 * FlagFIN) | (ctl >> 3 & 1 * FlagRST) | (ctl >> 4 & 1 * FlagACK)
			ts += int64(ctl >> 6)
			tab.Add(ts, key, Segment{Seq: base[d] + seqOff, Ack: base[1-d] + ackOff, Flags: flags, Payload: payload}, emit)
			if st := tab.Stats(); st.Flows > cfg.MaxFlows || st.BytesHeld > cfg.MaxBytesTotal || st.BytesHeld < 0 {
				t.Fatalf("got %d flows, %d bytes held; caps %d, %d", st.Flows, st.BytesHeld, cfg.MaxFlows, cfg.MaxBytesTotal)
			}
		}
		tab.Expire(ts+3, emit)
		tab.Flush(emit)
		if st := tab.Stats(); st.Flows != 0 || st.BytesHeld != 0 {
			t.Fatalf("after Flush: got %d flows, %d bytes held", st.Flows, st.BytesHeld)
		}
	})
}

// script encodes captured segments in FuzzTCPStream's format, with each direction's first
// sequence number as its base.
func script(segs []capturedSegment) []byte {
	var out []byte
	var first FlowKey
	base := map[FlowKey]uint32{}
	for i, s := range segs {
		if i == 0 {
			first = s.key
		}
		if _, ok := base[s.key]; !ok {
			base[s.key] = s.seg.Seq
		}
	}
	rev := func(k FlowKey) FlowKey { return FlowKey{Src: k.Dst, Dst: k.Src} }
	for _, s := range segs {
		var ctl byte
		if s.key != first {
			ctl |= 1
		}
		ctl |= (s.seg.Flags & FlagSYN) | (s.seg.Flags&FlagFIN)<<2 | (s.seg.Flags&FlagRST)<<1 | (s.seg.Flags & FlagACK)
		ctl |= 1 << 6
		out = append(out, ctl)
		out = binary.BigEndian.AppendUint16(out, uint16(s.seg.Seq-base[s.key]))
		out = binary.BigEndian.AppendUint16(out, uint16(s.seg.Ack-base[rev(s.key)]))
		out = binary.BigEndian.AppendUint16(out, uint16(len(s.seg.Payload)))
		out = append(out, s.seg.Payload...)
	}
	return out
}
