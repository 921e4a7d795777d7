package dnswire

import (
	"encoding/binary"
	"net/netip"

	"github.com/dnsloss/dnsloss/internal/dnsrow"
	"github.com/dnsloss/dnsloss/internal/ipfrag"
	"github.com/dnsloss/dnsloss/internal/tcpdns"
)

// Flush emits what the reassemblers still hold, as at the end of a capture: datagrams whose
// fragments never all arrived (a row marked "incomplete" where the first fragment shows a DNS
// header), TCP messages cut short (likewise), and messages held behind a hole that will now never
// fill. The Decoder is then empty and may go on with another capture.
func (d *Decoder) Flush(emit func(*dnsrow.Message)) {
	d.emit = emit
	d.frag.Flush()
	d.tcpt.Flush(d.tcpEmit)
	d.emit = nil
}

// Expire gives up, at capture time now (nanoseconds), datagrams and TCP holes older than their
// timeouts and connections idle for longer than theirs, emitting what that releases as Flush
// does. Decode does this on its own whenever a fragment or a segment arrives; a live capture calls
// Expire from time to time so that a quiet link does not hold messages back.
func (d *Decoder) Expire(now int64, emit func(*dnsrow.Message)) {
	d.emit = emit
	d.frag.Expire(now)
	d.tcpt.Expire(now, d.tcpEmit)
	d.emit = nil
}

// fragmentCut handles an IPv4 fragment cut short by the capture: it cannot be reassembled, but a
// first fragment is decoded alone (a row marked truncated).
func (d *Decoder) fragmentCut(f *Frame, dir uint8, h *ipHeader, proto uint8, first bool, payload []byte, emit func(*dnsrow.Message)) {
	d.stats.FragCut++
	if first {
		d.stats.FragDatagrams++
		d.transport(f, dir, h, proto, payload, maxWire, fromFirstCut, emit)
	}
}

// fragment6 handles an IPv6 fragment: b starts at its Fragment header, and plen is what is left
// of the payload length there.
func (d *Decoder) fragment6(f *Frame, dir uint8, h *ipHeader, b []byte, plen int, emit func(*dnsrow.Message)) {
	d.stats.Fragments++
	if len(b) < plen {
		d.stats.FragCut++
		if len(b) >= 8 && binary.BigEndian.Uint16(b[2:])&0xfff8 == 0 {
			d.stats.FragDatagrams++
			d.ipv6Next(f, dir, h, b[0], b[8:], maxWire, fromFirstCut, emit)
		}
		return
	}
	d.emit = emit
	dg, complete, err := d.frag.AddIPv6Fragment(f.TS, h.src, h.dst, b)
	d.emit = nil
	if err == nil && complete {
		d.reassembled(f, dir, h, &dg, emit)
	}
}

// reassembled decodes a datagram completed by the fragment in f. Its row takes the timestamp of
// the datagram's first fragment, as a TCP message takes that of the segment with its first byte.
func (d *Decoder) reassembled(f *Frame, dir uint8, h *ipHeader, dg *ipfrag.Datagram, emit func(*dnsrow.Message)) {
	d.stats.FragDatagrams++
	g := *f
	g.TS = dg.FirstTS
	if dg.Version == 6 {
		d.ipv6Next(&g, dir, h, dg.Proto, dg.Payload, len(dg.Payload), fromDatagram, emit)
		return
	}
	d.transport(&g, dir, h, dg.Proto, dg.Payload, len(dg.Payload), fromDatagram, emit)
}

// incomplete receives the datagrams the IP reassembler gives up. What arrived from offset 0
// becomes a row marked "incomplete" when it holds a UDP header on a DNS port and a DNS header.
// Interface and direction are not known there (the frames are gone).
func (d *Decoder) incomplete(inc ipfrag.Incomplete) {
	d.stats.FragDatagrams++
	d.stats.FragsLost += uint64(inc.Fragments)
	if len(inc.Prefix) == 0 || d.emit == nil {
		d.stats.FragNotDNS++
		return
	}
	h := ipHeader{version: inc.Version, src: inc.Src.As16(), dst: inc.Dst.As16()}
	f := Frame{TS: inc.FirstTS}
	if inc.Version == 6 {
		d.ipv6Next(&f, dnsrow.DirUnknown, &h, inc.Proto, inc.Prefix, maxWire, fromIncomplete, d.emit)
		return
	}
	d.transport(&f, dnsrow.DirUnknown, &h, inc.Proto, inc.Prefix, maxWire, fromIncomplete, d.emit)
}

// addr returns the netip form of an address as ipHeader holds it.
func (h *ipHeader) addr(a *[16]byte) netip.Addr {
	if h.version == 4 {
		return netip.AddrFrom4([4]byte(a[12:16]))
	}
	return netip.AddrFrom16(*a)
}

// maxIfaces bounds the interface names remembered for TCP segments; past it, rows from further
// interfaces have none.
const maxIfaces = 4096

// tag packs a segment's interface and direction into a tcpdns.Segment.Tag, so that a message
// released later (by a segment of the other direction, a timeout or Flush) gets its own.
func (d *Decoder) tag(iface string, dir uint8) uint32 {
	ix, ok := d.ifaceIx[iface]
	if !ok {
		if len(d.ifaces) >= maxIfaces {
			return uint32(dir & 3)
		}
		ix = uint32(len(d.ifaces))
		d.ifaces = append(d.ifaces, iface)
		d.ifaceIx[iface] = ix
	}
	return ix<<2 | uint32(dir&3)
}

// tcp hands a TCP segment b (header and captured payload) on a DNS port to the TCP reassembler.
func (d *Decoder) tcp(f *Frame, dir uint8, h *ipHeader, b []byte, o origin, emit func(*dnsrow.Message)) {
	doff := int(b[12]>>4) * 4
	if doff < 20 || doff > len(b) {
		d.count(o, &d.stats.DecodeErrors)
		return
	}
	if o == fromPacket {
		d.stats.TCPSegments++
	} else {
		d.stats.FragTCP++
	}
	key := tcpdns.FlowKey{
		Src: netip.AddrPortFrom(h.addr(&h.src), binary.BigEndian.Uint16(b[0:])),
		Dst: netip.AddrPortFrom(h.addr(&h.dst), binary.BigEndian.Uint16(b[2:])),
	}
	seg := tcpdns.Segment{
		Seq:     binary.BigEndian.Uint32(b[4:]),
		Ack:     binary.BigEndian.Uint32(b[8:]),
		Flags:   b[13] & (tcpdns.FlagFIN | tcpdns.FlagSYN | tcpdns.FlagRST | tcpdns.FlagACK),
		Payload: b[doff:],
		Tag:     d.tag(f.Iface, dir),
	}
	d.emit = emit
	d.tcpt.Add(f.TS, key, seg, d.tcpEmit)
	d.emit = nil
}

// tcpMessage turns a message framed by the TCP reassembler into a row. Addresses, ports,
// timestamp, interface and direction come from the message's own flow and first segment, not
// from the segment being decoded, which may be of the other direction.
func (d *Decoder) tcpMessage(key tcpdns.FlowKey, msg []byte, info tcpdns.MsgInfo) {
	if len(msg) < headerLen {
		d.stats.TCPShort++
		return
	}
	m := &d.msg
	m.Reset()
	ix := info.Tag >> 2
	if int(ix) < len(d.ifaces) {
		m.Iface = append(m.Iface[:0], d.ifaces[ix]...)
	}
	m.TS = info.TS
	m.Direction = uint8(info.Tag & 3)
	src, dst := key.Src.Addr(), key.Dst.Addr()
	m.IPVersion = 6
	if src.Is4() {
		m.IPVersion = 4
	}
	m.SrcIP, m.DstIP = src.As16(), dst.As16()
	m.SrcPort, m.DstPort = key.Src.Port(), key.Dst.Port()
	m.Transport = dnsrow.TransportTCP
	m.Size = uint32(info.Length)
	if info.Segments > 1 {
		m.TCPReassembled = 1
	}
	reason := ParseMessage(msg, m)
	if info.Incomplete {
		reason = d.markIncomplete(m, reason)
	}
	if reason != dnsrow.ReasonNone && reason != dnsrow.ReasonTruncated {
		d.stats.Malformed++
	}
	d.stats.TCPMessages++
	d.stats.DNSMessages++
	if d.emit != nil {
		d.emit(m)
	}
}
