package dnsrow

import (
	"fmt"
	"strings"

	"github.com/ClickHouse/ch-go/proto"
)

// Table is the ClickHouse table that Messages are stored in.
const Table = "dns_messages"

// Batch accumulates Messages column by column and encodes them as one ClickHouse Native block.
// The zero value is not usable; call NewBatch.
type Batch struct {
	host, iface, source, direction, transport, malformed *lowCardinality
	ts                                                   *proto.ColDateTime64
	ipVersion                                            proto.ColUInt8
	srcIP, dstIP                                         proto.ColIPv6
	srcPort, dstPort                                     proto.ColUInt16
	id                                                   proto.ColUInt16
	qr, opcode, aa, tc, rd, ra, ad, cd                   proto.ColUInt8
	rcode                                                proto.ColUInt16
	qname                                                proto.ColStr
	qtype, qclass                                        proto.ColUInt16
	qdcount, ancount, nscount, arcount                   proto.ColUInt16
	edns                                                 proto.ColUInt8
	ednsUDPSize                                          proto.ColUInt16
	ednsDO, ednsVersion                                  proto.ColUInt8
	ednsOptions                                          *proto.ColArr[uint16]
	size                                                 proto.ColUInt32
	ipFragmented, tcpReassembled, truncated              proto.ColUInt8

	input proto.Input
	rows  int
}

// NewBatch returns an empty batch.
func NewBatch() *Batch {
	b := &Batch{
		host:        newLowCardinality(),
		iface:       newLowCardinality(),
		source:      newLowCardinality(),
		direction:   newLowCardinality(),
		transport:   newLowCardinality(),
		malformed:   newLowCardinality(),
		ts:          new(proto.ColDateTime64).WithPrecision(proto.PrecisionNano),
		ednsOptions: new(proto.ColUInt16).Array(),
	}
	b.input = proto.Input{
		{Name: "host", Data: b.host},
		{Name: "iface", Data: b.iface},
		{Name: "source", Data: b.source},
		{Name: "ts", Data: b.ts},
		{Name: "direction", Data: b.direction},
		{Name: "ip_version", Data: &b.ipVersion},
		{Name: "src_ip", Data: &b.srcIP},
		{Name: "dst_ip", Data: &b.dstIP},
		{Name: "src_port", Data: &b.srcPort},
		{Name: "dst_port", Data: &b.dstPort},
		{Name: "transport", Data: b.transport},
		{Name: "id", Data: &b.id},
		{Name: "qr", Data: &b.qr},
		{Name: "opcode", Data: &b.opcode},
		{Name: "aa", Data: &b.aa},
		{Name: "tc", Data: &b.tc},
		{Name: "rd", Data: &b.rd},
		{Name: "ra", Data: &b.ra},
		{Name: "ad", Data: &b.ad},
		{Name: "cd", Data: &b.cd},
		{Name: "rcode", Data: &b.rcode},
		{Name: "qname", Data: &b.qname},
		{Name: "qtype", Data: &b.qtype},
		{Name: "qclass", Data: &b.qclass},
		{Name: "qdcount", Data: &b.qdcount},
		{Name: "ancount", Data: &b.ancount},
		{Name: "nscount", Data: &b.nscount},
		{Name: "arcount", Data: &b.arcount},
		{Name: "edns", Data: &b.edns},
		{Name: "edns_udp_size", Data: &b.ednsUDPSize},
		{Name: "edns_do", Data: &b.ednsDO},
		{Name: "edns_version", Data: &b.ednsVersion},
		{Name: "edns_options", Data: b.ednsOptions},
		{Name: "size", Data: &b.size},
		{Name: "ip_fragmented", Data: &b.ipFragmented},
		{Name: "tcp_reassembled", Data: &b.tcpReassembled},
		{Name: "truncated", Data: &b.truncated},
		{Name: "malformed", Data: b.malformed},
	}
	return b
}

var directionNames = [...]string{DirUnknown: "", DirIn: "in", DirOut: "out"}

// TransportName returns "udp", "tcp", or the protocol number for anything else.
func TransportName(t uint8) string {
	switch t {
	case TransportUDP:
		return "udp"
	case TransportTCP:
		return "tcp"
	}
	return fmt.Sprint(t)
}

// Append copies m into the batch.
func (b *Batch) Append(m *Message) {
	b.host.AppendBytes(m.Host)
	b.iface.AppendBytes(m.Iface)
	b.source.AppendBytes(m.Source)
	b.ts.AppendRaw(proto.DateTime64(m.TS))
	dir := ""
	if int(m.Direction) < len(directionNames) {
		dir = directionNames[m.Direction]
	}
	b.direction.Append(dir)
	b.ipVersion.Append(m.IPVersion)
	b.srcIP.Append(proto.IPv6(m.SrcIP))
	b.dstIP.Append(proto.IPv6(m.DstIP))
	b.srcPort.Append(m.SrcPort)
	b.dstPort.Append(m.DstPort)
	switch m.Transport {
	case TransportUDP:
		b.transport.Append("udp")
	case TransportTCP:
		b.transport.Append("tcp")
	default:
		b.transport.Append(TransportName(m.Transport))
	}
	b.id.Append(m.ID)
	b.qr.Append(m.QR)
	b.opcode.Append(m.Opcode)
	b.aa.Append(m.AA)
	b.tc.Append(m.TC)
	b.rd.Append(m.RD)
	b.ra.Append(m.RA)
	b.ad.Append(m.AD)
	b.cd.Append(m.CD)
	b.rcode.Append(m.Rcode)
	b.qname.AppendBytes(m.QName)
	b.qtype.Append(m.QType)
	b.qclass.Append(m.QClass)
	b.qdcount.Append(m.QDCount)
	b.ancount.Append(m.ANCount)
	b.nscount.Append(m.NSCount)
	b.arcount.Append(m.ARCount)
	b.edns.Append(m.EDNS)
	b.ednsUDPSize.Append(m.EDNSUDPSize)
	b.ednsDO.Append(m.EDNSDO)
	b.ednsVersion.Append(m.EDNSVersion)
	b.ednsOptions.Append(m.EDNSOptions)
	b.size.Append(m.Size)
	b.ipFragmented.Append(m.IPFragmented)
	b.tcpReassembled.Append(m.TCPReassembled)
	b.truncated.Append(m.Truncated)
	b.malformed.AppendBytes(m.Malformed)
	b.rows++
}

// Rows is the number of messages in the batch.
func (b *Batch) Rows() int { return b.rows }

// Reset empties the batch, keeping its buffers.
func (b *Batch) Reset() {
	b.input.Reset()
	b.rows = 0
}

// Columns returns the column list of the INSERT statement, "(host, iface, ...)".
func (b *Batch) Columns() string {
	names := make([]string, len(b.input))
	for i, c := range b.input {
		names[i] = c.Name
	}
	return "(" + strings.Join(names, ", ") + ")"
}

// Input exposes the batch's columns, e.g. for clickhouse-go or ch-go clients.
func (b *Batch) Input() proto.Input { return b.input }

// EncodeNative appends the batch as one Native-format block (revision 0, the format of
// `INSERT ... FORMAT Native`) to dst and returns it.
func (b *Batch) EncodeNative(dst []byte) ([]byte, error) {
	buf := proto.Buffer{Buf: dst}
	blk := proto.Block{Columns: len(b.input), Rows: b.rows}
	if err := blk.EncodeRawBlock(&buf, 0, b.input); err != nil {
		return dst, fmt.Errorf("cannot encode %d rows as a Native block: %w", b.rows, err)
	}
	return buf.Buf, nil
}
