// Package dnswire decodes captured frames (link layer, IPv4/IPv6, UDP, TCP) into DNS messages,
// one dnsrow.Message per message, and parses DNS messages with a parser of its own that allocates
// nothing per message.
//
// IP fragments go through an internal/ipfrag Reassembler and DNS over TCP through an
// internal/tcpdns Table, both bounded by Config; a datagram whose fragments never all arrived
// and a TCP message cut by a gap still become rows, marked "incomplete", when their first bytes
// hold a DNS header. Call Decoder.Flush at the end of a capture, and Decoder.Expire from time to
// time on a live one, so that what the reassemblers hold comes out.
//
// Header parsing is done by hand on the layer constants rather than with gopacket's
// DecodingLayerParser: it is several times faster (see BenchmarkDecodeUDP and
// BenchmarkGopacketDLP) and handles what the product needs (VLAN stacks of any depth, Ethernet
// trailers, SLL/SLL2 direction, IPv6 extension headers) in one pass.
package dnswire

import (
	"encoding/binary"
	"fmt"

	"github.com/dnsloss/dnsloss/internal/dnsrow"
	"github.com/dnsloss/dnsloss/internal/ipfrag"
	"github.com/dnsloss/dnsloss/internal/tcpdns"
)

// Link types (LINKTYPE_* numbers as written in pcap and pcapng files). They are uint16 because
// gopacket v1.1.19's layers.LinkType is a uint8 and cannot hold LINKTYPE_LINUX_SLL2 (276).
const (
	LinkTypeNull      uint16 = 0   // BSD loopback, address family in host byte order
	LinkTypeEthernet  uint16 = 1   //
	LinkTypeRawDLT12  uint16 = 12  // DLT_RAW on most BSDs and Linux, as written by some tools
	LinkTypeRawDLT14  uint16 = 14  // DLT_RAW on OpenBSD
	LinkTypeRaw       uint16 = 101 // LINKTYPE_RAW: raw IPv4 or IPv6
	LinkTypeLoop      uint16 = 108 // OpenBSD loopback, address family in network byte order
	LinkTypeLinuxSLL  uint16 = 113
	LinkTypeIPv4      uint16 = 228
	LinkTypeIPv6      uint16 = 229
	LinkTypeLinuxSLL2 uint16 = 276
)

// SupportedLinkTypes is the list printed when a capture has a link type that is not decoded.
const SupportedLinkTypes = "EN10MB (1), LINUX_SLL (113), LINUX_SLL2 (276), RAW (12, 14, 101), IPV4 (228), IPV6 (229), NULL (0), LOOP (108)"

// Frame is one captured link-layer frame.
type Frame struct {
	LinkType  uint16 // LINKTYPE_* number, see the LinkType constants
	TS        int64  // nanoseconds since the Unix epoch, UTC
	Data      []byte // captured bytes
	WireLen   int    // length on the wire (informational; DNS sizes come from the IP/UDP headers)
	Iface     string // interface name or index
	Direction uint8  // dnsrow.Dir*, where the capture source knows it; SLL/SLL2 headers override it
}

// Config configures a Decoder.
type Config struct {
	Ports  []uint16      // UDP/TCP ports carrying DNS; default {53}
	Host   string        // capture point, stamped into every Message
	Source string        // capture source (file path or live interface), stamped into every Message
	IPFrag ipfrag.Config // bounds of IP reassembly; zero fields take ipfrag's defaults
	TCP    tcpdns.Config // bounds of DNS-over-TCP reassembly; zero fields take tcpdns's defaults
}

// Stats counts what a Decoder saw. Since a fragment or a TCP segment may complete zero, one or
// several messages, the counters are kept in three ledgers, each of which adds up exactly:
//
//   - Packets: every frame lands in exactly one of UDP, ShortDNS, NonDNS, DecodeErrors,
//     UnsupportedLink, Fragments and TCPSegments.
//   - Rows: DNSMessages = UDP + FragMessages + TCPMessages. Malformed, Truncated and Incomplete
//     count among them.
//   - Reassembly outcomes: every fragmented datagram the decoder is done with (reassembled, given
//     up incomplete, or a first fragment cut by the snaplen and decoded alone; FragDatagrams) is a
//     row or not DNS: FragDatagrams = FragMessages + FragNotDNS + FragTCP. Every message framed
//     from TCP is a row or too short: TCP.Messages = TCPMessages + TCPShort.
//
// IPFrag and TCP are the reassemblers' own counters (fragments accepted, duplicates, overlaps,
// evictions, gaps, bytes lost and dropped, flows evicted and expired, current and peak state).
type Stats struct {
	Packets         uint64
	UDP             uint64 // unfragmented UDP datagrams on a DNS port with a DNS header: one row each
	ShortDNS        uint64 // UDP on a DNS port with fewer than 12 bytes of DNS header: no row
	NonDNS          uint64 // not UDP/TCP on a DNS port (ICMP, ARP, other ports, ...)
	DecodeErrors    uint64 // broken link, IP, UDP or TCP header
	UnsupportedLink uint64
	Fragments       uint64 // IP fragments (any protocol), handed to IP reassembly
	TCPSegments     uint64 // TCP segments on a DNS port, handed to TCP reassembly

	DNSMessages  uint64 // rows emitted
	FragMessages uint64 // rows from fragmented datagrams (marked IPFragmented)
	TCPMessages  uint64 // rows from TCP streams
	Malformed    uint64 // rows with a malformed reason other than "truncated" ("incomplete" included)
	Truncated    uint64 // rows cut short by the capture's snaplen
	Incomplete   uint64 // rows marked "incomplete": fragments or TCP bytes of them never arrived

	FragDatagrams uint64 // fragmented datagrams done with: reassembled, given up incomplete, or first fragment cut by the capture
	FragNotDNS    uint64 // of those, not UDP on a DNS port with a DNS header in what arrived (no row)
	FragTCP       uint64 // of those, TCP on a DNS port, handed to TCP reassembly
	FragCut       uint64 // fragments cut short by the capture's snaplen (not reassembled; a first one is decoded alone)
	FragsLost     uint64 // fragments held in datagrams given up incomplete
	TCPShort      uint64 // messages framed from TCP with fewer than 12 bytes (no row)

	IPFrag ipfrag.Stats
	TCP    tcpdns.Stats
}

// ReassemblyDrops is what reassembly could not turn into whole messages, as capture_stats'
// reassembly_drops counts it: IP fragments (held in datagrams given up incomplete, rejected as
// malformed or cut by the capture, or belonging to datagrams abandoned for overlaps: those count
// once per datagram) plus TCP bytes (never captured inside a connection's sequence space, or
// captured but not framed into a message: skipped to resynchronise, tails of incomplete
// messages).
func (s Stats) ReassemblyDrops() uint64 {
	return s.FragsLost + s.FragCut + s.IPFrag.Invalid + s.IPFrag.DroppedFragments + s.IPFrag.Overlaps +
		s.TCP.LostBytes + s.TCP.BytesDropped
}

// Decoder turns frames into DNS messages. It is not safe for concurrent use; use one per
// goroutine.
type Decoder struct {
	ports [1024]uint64 // bitmap of DNS ports
	msg   dnsrow.Message
	stats Stats

	frag    *ipfrag.Reassembler
	tcpt    *tcpdns.Table
	tcpEmit tcpdns.Emit           // d.tcpMessage, bound once
	emit    func(*dnsrow.Message) // the caller's emit during a call that may release reassembled messages
	ifaces  []string              // interface names seen on TCP segments, by tag index
	ifaceIx map[string]uint32     // and their indexes
}

// NewDecoder returns a decoder for cfg.
func NewDecoder(cfg Config) *Decoder {
	d := &Decoder{ifaces: []string{""}, ifaceIx: map[string]uint32{"": 0}}
	d.frag = ipfrag.New(cfg.IPFrag, d.incomplete)
	d.tcpt = tcpdns.New(cfg.TCP)
	d.tcpEmit = d.tcpMessage
	ports := cfg.Ports
	if len(ports) == 0 {
		ports = []uint16{53}
	}
	for _, p := range ports {
		d.ports[p>>6] |= 1 << (p & 63)
	}
	d.msg.Host = []byte(cfg.Host)
	d.msg.Source = []byte(cfg.Source)
	return d
}

// Stats returns the counters so far.
func (d *Decoder) Stats() Stats {
	s := d.stats
	s.IPFrag = d.frag.Stats()
	s.TCP = d.tcpt.Stats()
	return s
}

func (d *Decoder) isDNSPort(p uint16) bool { return d.ports[p>>6]&(1<<(p&63)) != 0 }

// Supported returns nil if Decode understands frames of link type lt, else an error naming the
// link type and the supported ones. Callers check it once per capture (or per pcapng interface).
func (d *Decoder) Supported(lt uint16) error {
	switch lt {
	case LinkTypeNull, LinkTypeEthernet, LinkTypeRawDLT12, LinkTypeRawDLT14, LinkTypeRaw,
		LinkTypeLoop, LinkTypeLinuxSLL, LinkTypeIPv4, LinkTypeIPv6, LinkTypeLinuxSLL2:
		return nil
	}
	return fmt.Errorf("link type %d, which dnsloss does not decode (supported: %s)", lt, SupportedLinkTypes)
}

// EtherTypes.
const (
	etherIPv4  = 0x0800
	etherIPv6  = 0x86dd
	ether8021Q = 0x8100
	ether8021A = 0x88a8
	etherQinQ  = 0x9100 // pre-standard QinQ
)

// Decode decodes one frame and calls emit for each DNS message it gives: one for a UDP datagram,
// and any number for a fragment that completes a datagram or a TCP segment (the messages it
// completes, in either direction of its connection, and those it forces out of the reassemblers'
// bounds). The Message passed to emit is reused: copy what you keep (dnsrow.Batch.Append does).
// Make emit once and pass the same function to every call: the reassemblers' callbacks hold it
// during the call, so a closure made anew for each call would cost an allocation per packet.
func (d *Decoder) Decode(f *Frame, emit func(*dnsrow.Message)) {
	d.stats.Packets++
	b := f.Data
	dir := f.Direction
	switch f.LinkType {
	case LinkTypeEthernet:
		if len(b) < 14 {
			d.stats.DecodeErrors++
			return
		}
		d.ether(f, dir, binary.BigEndian.Uint16(b[12:]), b[14:], emit)
	case LinkTypeLinuxSLL:
		if len(b) < 16 {
			d.stats.DecodeErrors++
			return
		}
		d.ether(f, sllDirection(binary.BigEndian.Uint16(b[0:]), dir), binary.BigEndian.Uint16(b[14:]), b[16:], emit)
	case LinkTypeLinuxSLL2:
		if len(b) < 20 {
			d.stats.DecodeErrors++
			return
		}
		d.ether(f, sllDirection(uint16(b[10]), dir), binary.BigEndian.Uint16(b[0:]), b[20:], emit)
	case LinkTypeRaw, LinkTypeRawDLT12, LinkTypeRawDLT14:
		if len(b) < 1 {
			d.stats.DecodeErrors++
			return
		}
		switch b[0] >> 4 {
		case 4:
			d.ipv4(f, dir, b, emit)
		case 6:
			d.ipv6(f, dir, b, emit)
		default:
			d.stats.DecodeErrors++
		}
	case LinkTypeIPv4:
		d.ipv4(f, dir, b, emit)
	case LinkTypeIPv6:
		d.ipv6(f, dir, b, emit)
	case LinkTypeNull, LinkTypeLoop:
		if len(b) < 4 {
			d.stats.DecodeErrors++
			return
		}
		af := binary.LittleEndian.Uint32(b)
		if af > 0xffff {
			af = binary.BigEndian.Uint32(b)
		}
		switch af {
		case 2: // AF_INET everywhere
			d.ipv4(f, dir, b[4:], emit)
		case 10, 24, 28, 30: // AF_INET6: Linux, NetBSD/OpenBSD, FreeBSD, Darwin
			d.ipv6(f, dir, b[4:], emit)
		default:
			d.stats.NonDNS++
		}
	default:
		d.stats.UnsupportedLink++
	}
}

// sllDirection maps a Linux packet type (PACKET_HOST ... PACKET_OUTGOING) to a direction.
func sllDirection(pkttype uint16, dflt uint8) uint8 {
	switch pkttype {
	case 0, 1, 2: // host, broadcast, multicast
		return dnsrow.DirIn
	case 4: // outgoing
		return dnsrow.DirOut
	}
	return dflt
}

func (d *Decoder) ether(f *Frame, dir uint8, et uint16, b []byte, emit func(*dnsrow.Message)) {
	for et == ether8021Q || et == ether8021A || et == etherQinQ {
		if len(b) < 4 {
			d.stats.DecodeErrors++
			return
		}
		et = binary.BigEndian.Uint16(b[2:])
		b = b[4:]
	}
	switch et {
	case etherIPv4:
		d.ipv4(f, dir, b, emit)
	case etherIPv6:
		d.ipv6(f, dir, b, emit)
	default:
		d.stats.NonDNS++
	}
}

// ipHeader is what the transport layer needs to know about the IP header.
type ipHeader struct {
	version  uint8
	src, dst [16]byte
}

func (d *Decoder) ipv4(f *Frame, dir uint8, b []byte, emit func(*dnsrow.Message)) {
	if len(b) < 20 || b[0]>>4 != 4 {
		d.stats.DecodeErrors++
		return
	}
	ihl := int(b[0]&0xf) * 4
	total := int(binary.BigEndian.Uint16(b[2:]))
	if ihl < 20 || len(b) < ihl {
		d.stats.DecodeErrors++
		return
	}
	if total == 0 {
		total = len(b) // TCP segmentation offload leaves it 0
	}
	if total < ihl {
		d.stats.DecodeErrors++
		return
	}
	cut := len(b) < total // the capture's snaplen
	if !cut {
		b = b[:total] // Ethernet padding or trailer
	}
	var h ipHeader
	h.version = 4
	h.src[10], h.src[11] = 0xff, 0xff
	copy(h.src[12:], b[12:16])
	h.dst[10], h.dst[11] = 0xff, 0xff
	copy(h.dst[12:], b[16:20])
	if fo := binary.BigEndian.Uint16(b[6:]); fo&0x3fff != 0 { // MF set or fragment offset != 0
		d.stats.Fragments++
		if cut {
			d.fragmentCut(f, dir, &h, b[9], fo&0x1fff == 0, b[ihl:], emit)
			return
		}
		d.emit = emit
		dg, complete, err := d.frag.AddIPv4(f.TS, b)
		d.emit = nil
		if err == nil && complete {
			d.reassembled(f, dir, &h, &dg, emit)
		}
		return
	}
	d.transport(f, dir, &h, b[9], b[ihl:], total-ihl, fromPacket, emit)
}

func (d *Decoder) ipv6(f *Frame, dir uint8, b []byte, emit func(*dnsrow.Message)) {
	if len(b) < 40 || b[0]>>4 != 6 {
		d.stats.DecodeErrors++
		return
	}
	plen := int(binary.BigEndian.Uint16(b[4:]))
	if plen == 0 {
		plen = len(b) - 40 // jumbogram or offload
	}
	var h ipHeader
	h.version = 6
	copy(h.src[:], b[8:24])
	copy(h.dst[:], b[24:40])
	d.ipv6Next(f, dir, &h, b[6], b[40:], plen, fromPacket, emit)
}

// ipv6Next walks the IPv6 extension headers from next, over the payload b (captured bytes) whose
// length on the wire is plen, to the transport layer.
func (d *Decoder) ipv6Next(f *Frame, dir uint8, h *ipHeader, next uint8, b []byte, plen int, o origin, emit func(*dnsrow.Message)) {
	if len(b) > plen {
		b = b[:plen]
	}
	for {
		switch next {
		case 0, 43, 60: // hop-by-hop, routing, destination options
			if len(b) < 8 {
				d.count(o, &d.stats.DecodeErrors)
				return
			}
			n := (int(b[1]) + 1) * 8
			if n > len(b) || n > plen {
				d.count(o, &d.stats.DecodeErrors)
				return
			}
			next, b, plen = b[0], b[n:], plen-n
		case 51: // authentication header
			if len(b) < 8 {
				d.count(o, &d.stats.DecodeErrors)
				return
			}
			n := (int(b[1]) + 2) * 4
			if n > len(b) || n > plen {
				d.count(o, &d.stats.DecodeErrors)
				return
			}
			next, b, plen = b[0], b[n:], plen-n
		case 44: // fragment
			if o != fromPacket { // a fragment inside a reassembled datagram
				d.count(o, &d.stats.DecodeErrors)
				return
			}
			d.fragment6(f, dir, h, b, plen, emit)
			return
		default:
			d.transport(f, dir, h, next, b, plen, o, emit)
			return
		}
	}
}

// origin says where an IP payload handed to transport came from.
type origin uint8

const (
	fromPacket     origin = iota // an unfragmented packet
	fromDatagram                 // a datagram reassembled from fragments
	fromFirstCut                 // a first fragment cut short by the capture, decoded alone
	fromIncomplete               // the first part of a datagram whose fragments never all arrived
)

// count adds one to the packet bucket c for a packet, and to FragNotDNS for a datagram.
func (d *Decoder) count(o origin, c *uint64) {
	if o == fromPacket {
		*c++
	} else {
		d.stats.FragNotDNS++
	}
}

// maxWire is the wire length given for a datagram whose length is unknown (cut or incomplete):
// the UDP length field then says how long it was.
const maxWire = 1 << 20

// transport handles the IP payload b (captured bytes) whose length on the wire is wireLen.
func (d *Decoder) transport(f *Frame, dir uint8, h *ipHeader, proto uint8, b []byte, wireLen int, o origin, emit func(*dnsrow.Message)) {
	switch proto {
	case 17:
		if len(b) < 8 {
			d.count(o, &d.stats.DecodeErrors)
			return
		}
		sport, dport := binary.BigEndian.Uint16(b[0:]), binary.BigEndian.Uint16(b[2:])
		if !d.isDNSPort(sport) && !d.isDNSPort(dport) {
			d.count(o, &d.stats.NonDNS)
			return
		}
		ulen := int(binary.BigEndian.Uint16(b[4:]))
		if ulen == 0 && wireLen > 0xffff && o == fromPacket {
			ulen = wireLen // IPv6 jumbogram
		}
		if ulen < 8 || ulen > wireLen {
			d.count(o, &d.stats.DecodeErrors)
			return
		}
		payload := b[8:]
		size := ulen - 8
		cut := false
		if len(payload) > size {
			payload = payload[:size]
		} else if len(payload) < size {
			cut = true
		}
		if len(payload) < headerLen {
			d.count(o, &d.stats.ShortDNS)
			return
		}
		m := &d.msg
		m.Reset()
		m.Iface = append(m.Iface[:0], f.Iface...)
		m.TS = f.TS
		m.Direction = dir
		m.IPVersion = h.version
		m.SrcIP, m.DstIP = h.src, h.dst
		m.SrcPort, m.DstPort = sport, dport
		m.Transport = dnsrow.TransportUDP
		m.Size = uint32(size)
		reason := ParseMessage(payload, m)
		if cut {
			if o == fromIncomplete {
				reason = d.markIncomplete(m, reason)
			} else {
				m.Truncated = 1
				d.stats.Truncated++
				if cutReason(reason) {
					reason = setReason(m, dnsrow.ReasonTruncated)
				}
			}
		}
		if reason != dnsrow.ReasonNone && reason != dnsrow.ReasonTruncated {
			d.stats.Malformed++
		}
		if o == fromPacket {
			d.stats.UDP++
		} else {
			m.IPFragmented = 1
			d.stats.FragMessages++
		}
		d.stats.DNSMessages++
		emit(m)
	case 6:
		if len(b) < 20 {
			d.count(o, &d.stats.DecodeErrors)
			return
		}
		if !d.isDNSPort(binary.BigEndian.Uint16(b[0:])) && !d.isDNSPort(binary.BigEndian.Uint16(b[2:])) {
			d.count(o, &d.stats.NonDNS)
			return
		}
		if o == fromFirstCut || o == fromIncomplete {
			d.stats.FragNotDNS++ // the rest of the segment is missing: no sequence space to follow
			return
		}
		d.tcp(f, dir, h, b, o, emit)
	default:
		d.count(o, &d.stats.NonDNS)
	}
}

// cutReason says whether reason is what a message cut short gives (rather than a fault in the
// bytes that did arrive).
func cutReason(reason string) bool {
	switch reason {
	case dnsrow.ReasonShortName, dnsrow.ReasonShortQuestion, dnsrow.ReasonShortRR,
		dnsrow.ReasonShortRData, dnsrow.ReasonBadPointer:
		return true
	}
	return false
}

// markIncomplete marks m as a message some of whose bytes never arrived, and returns its reason:
// "incomplete", unless the bytes that did arrive show a fault of their own.
func (d *Decoder) markIncomplete(m *dnsrow.Message, reason string) string {
	d.stats.Incomplete++
	if reason == dnsrow.ReasonNone || cutReason(reason) {
		return setReason(m, dnsrow.ReasonIncomplete)
	}
	return reason
}
