// Package dnsrow holds the row that dnsloss stores for every DNS message it sees, and the
// columnar batch (ClickHouse Native blocks) that carries many such rows to a store.
//
// A Message is filled by a decoder and is only valid during the callback that receives it: its
// byte slices point into the decoder's scratch buffers. Append it to a Batch to keep it.
package dnsrow

// Direction of a packet relative to the capturing host, where the capture tells it.
const (
	DirUnknown uint8 = 0
	DirIn      uint8 = 1
	DirOut     uint8 = 2
)

// Transport protocol numbers, as in the IP header.
const (
	TransportUDP uint8 = 17
	TransportTCP uint8 = 6
)

// Malformed reasons: why decoding of a message stopped early. Empty means fully decoded.
const (
	ReasonNone          = ""
	ReasonShortHeader   = "short-header" // fewer than 12 bytes of DNS header: no row is written
	ReasonNameLoop      = "name-loop"    // a compression pointer loop in a name
	ReasonBadPointer    = "bad-pointer"  // a compression pointer past the end of the message
	ReasonBadLabel      = "bad-label"    // a label type that is not defined (0x40, 0x80)
	ReasonNameTooLong   = "name-too-long"
	ReasonShortName     = "short-name" // the message ends inside a name
	ReasonShortQuestion = "short-question"
	ReasonShortRR       = "short-rr"    // the message ends inside a resource record header
	ReasonShortRData    = "short-rdata" // rdlength runs past the end of the message
	ReasonTruncated     = "truncated"   // the capture (snaplen) cut the packet
	ReasonIncomplete    = "incomplete"  // IP fragments or TCP segments of it never all arrived
)

// Message is one DNS message as seen on the wire, flattened to the dns_messages columns.
type Message struct {
	Host      []byte // capture point (host name)
	Iface     []byte // interface name or pcapng interface index
	Source    []byte // capture source: file path or live interface
	TS        int64  // nanoseconds since the Unix epoch, UTC
	Direction uint8  // DirUnknown, DirIn, DirOut

	IPVersion uint8    // 4 or 6
	SrcIP     [16]byte // IPv6, or IPv4-mapped IPv6 (::ffff:a.b.c.d)
	DstIP     [16]byte
	SrcPort   uint16
	DstPort   uint16
	Transport uint8 // TransportUDP or TransportTCP

	ID                     uint16
	QR                     uint8
	Opcode                 uint8
	AA, TC, RD, RA, AD, CD uint8
	Rcode                  uint16 // 4-bit header rcode, plus EDNS extended rcode bits (<< 4) when OPT is present

	QName  []byte // first question's name as seen (0x20 case kept), RFC 1035 presentation form without the final dot; "" for the root
	QType  uint16
	QClass uint16

	QDCount, ANCount, NSCount, ARCount uint16

	EDNS        uint8  // 1 when an OPT record is present
	EDNSUDPSize uint16 // OPT class
	EDNSDO      uint8
	EDNSVersion uint8
	EDNSOptions []uint16 // option codes present in the OPT rdata, in order

	Size uint32 // DNS message size in bytes (as on the wire, before any snaplen cut)

	IPFragmented   uint8  // 1 when the message came from reassembled IP fragments
	TCPReassembled uint8  // 1 when the message spanned several TCP segments
	Truncated      uint8  // 1 when the capture cut the message short (snaplen)
	Malformed      []byte // reason decoding stopped early, one of the Reason constants; empty if none
}

// Reset clears m for reuse, keeping the capacity of its slices.
func (m *Message) Reset() {
	host, iface, src := m.Host, m.Iface, m.Source
	qn, opts, mal := m.QName[:0], m.EDNSOptions[:0], m.Malformed[:0]
	*m = Message{}
	m.Host, m.Iface, m.Source = host, iface, src
	m.QName, m.EDNSOptions, m.Malformed = qn, opts, mal
}
