package dnswire

import (
	"encoding/binary"

	"github.com/dnsloss/dnsloss/internal/dnsrow"
)

const (
	headerLen   = 12
	maxNameWire = 255 // RFC 1035 2.3.4: a name is at most 255 octets on the wire
	typeOPT     = 41
	// visitedMax pointer targets are remembered for loop detection; past that, a name that has
	// jumped more times than the message has bytes must be looping (each jump leaves from a
	// distinct pointer position unless there is a loop).
	visitedMax = 32
)

// ParseMessage decodes the DNS message msg into m: header, flags, counts, the first question,
// and the EDNS OPT record if the additional section has one. It walks the answer and authority
// sections only to reach the additional section, and only when ARCOUNT > 0.
//
// It returns the reason decoding stopped early (one of the dnsrow.Reason constants; ReasonNone
// when the message decoded fully), and sets m.Malformed to it. What was decoded before the
// problem stays in m. A message shorter than the 12-byte header gives ReasonShortHeader and fills
// nothing. Bytes after a complete message are ignored. m.QName is rebuilt in place (its capacity
// is reused), so ParseMessage allocates nothing once m's buffers have grown. It sets every DNS
// field of m (header to EDNS); the packet fields (addresses, ports, Size, ...) are the caller's.
func ParseMessage(msg []byte, m *dnsrow.Message) string {
	m.QName = m.QName[:0]
	m.EDNSOptions = m.EDNSOptions[:0]
	m.QType, m.QClass = 0, 0
	m.EDNS, m.EDNSUDPSize, m.EDNSDO, m.EDNSVersion = 0, 0, 0, 0
	if len(msg) < headerLen {
		return setReason(m, dnsrow.ReasonShortHeader)
	}
	m.ID = binary.BigEndian.Uint16(msg[0:])
	f1, f2 := msg[2], msg[3]
	m.QR = f1 >> 7
	m.Opcode = (f1 >> 3) & 0xf
	m.AA = (f1 >> 2) & 1
	m.TC = (f1 >> 1) & 1
	m.RD = f1 & 1
	m.RA = f2 >> 7
	m.AD = (f2 >> 5) & 1
	m.CD = (f2 >> 4) & 1
	m.Rcode = uint16(f2 & 0xf)
	m.QDCount = binary.BigEndian.Uint16(msg[4:])
	m.ANCount = binary.BigEndian.Uint16(msg[6:])
	m.NSCount = binary.BigEndian.Uint16(msg[8:])
	m.ARCount = binary.BigEndian.Uint16(msg[10:])

	off := headerLen
	if m.QDCount > 0 {
		var reason string
		m.QName, off, reason = appendName(m.QName, msg, off)
		if reason != "" {
			return setReason(m, reason)
		}
		if off+4 > len(msg) {
			return setReason(m, dnsrow.ReasonShortQuestion)
		}
		m.QType = binary.BigEndian.Uint16(msg[off:])
		m.QClass = binary.BigEndian.Uint16(msg[off+2:])
		off += 4
	}
	if m.ARCount == 0 {
		return setReason(m, dnsrow.ReasonNone)
	}
	// Skip the other questions, the answers and the authority records.
	for i := 1; i < int(m.QDCount); i++ {
		var reason string
		if off, reason = skipName(msg, off); reason != "" {
			return setReason(m, reason)
		}
		if off += 4; off > len(msg) {
			return setReason(m, dnsrow.ReasonShortQuestion)
		}
	}
	for i := 0; i < int(m.ANCount)+int(m.NSCount); i++ {
		var reason string
		if off, _, reason = skipRR(msg, off); reason != "" {
			return setReason(m, reason)
		}
	}
	for i := 0; i < int(m.ARCount); i++ {
		start := off
		var reason string
		var rtype uint16
		if off, rtype, reason = skipRR(msg, off); reason != "" {
			return setReason(m, reason)
		}
		if rtype == typeOPT {
			return setReason(m, parseOPT(msg, start, off, m))
		}
	}
	return setReason(m, dnsrow.ReasonNone)
}

func setReason(m *dnsrow.Message, reason string) string {
	m.Malformed = append(m.Malformed[:0], reason...)
	return reason
}

// parseOPT reads the OPT record that spans msg[start:end] (already checked to fit).
func parseOPT(msg []byte, start, end int, m *dnsrow.Message) string {
	off, _ := skipName(msg, start) // known to succeed
	class := binary.BigEndian.Uint16(msg[off+2:])
	ttl := binary.BigEndian.Uint32(msg[off+4:])
	rdlen := int(binary.BigEndian.Uint16(msg[off+8:]))
	rdata := msg[off+10 : off+10+rdlen]
	_ = end
	m.EDNS = 1
	m.EDNSUDPSize = class
	m.Rcode |= uint16(ttl>>24) << 4
	m.EDNSVersion = uint8(ttl >> 16)
	m.EDNSDO = uint8(ttl>>15) & 1
	for len(rdata) > 0 {
		if len(rdata) < 4 {
			return dnsrow.ReasonShortRData
		}
		m.EDNSOptions = append(m.EDNSOptions, binary.BigEndian.Uint16(rdata))
		n := int(binary.BigEndian.Uint16(rdata[2:]))
		if 4+n > len(rdata) {
			return dnsrow.ReasonShortRData
		}
		rdata = rdata[4+n:]
	}
	return dnsrow.ReasonNone
}

// skipRR skips one resource record at off and returns the offset after it and its type.
func skipRR(msg []byte, off int) (int, uint16, string) {
	off, reason := skipName(msg, off)
	if reason != "" {
		return off, 0, reason
	}
	if off+10 > len(msg) {
		return off, 0, dnsrow.ReasonShortRR
	}
	rtype := binary.BigEndian.Uint16(msg[off:])
	rdlen := int(binary.BigEndian.Uint16(msg[off+8:]))
	off += 10
	if off+rdlen > len(msg) {
		return off, rtype, dnsrow.ReasonShortRData
	}
	return off + rdlen, rtype, ""
}

// skipName returns the offset after the name at off, without following pointers.
func skipName(msg []byte, off int) (int, string) {
	wire := 0
	for {
		if off >= len(msg) {
			return off, dnsrow.ReasonShortName
		}
		c := int(msg[off])
		switch c & 0xc0 {
		case 0x00:
			if c == 0 {
				return off + 1, ""
			}
			wire += c + 1
			if wire+1 > maxNameWire {
				return off, dnsrow.ReasonNameTooLong
			}
			off += c + 1
		case 0xc0:
			if off+2 > len(msg) {
				return off, dnsrow.ReasonShortName
			}
			return off + 2, ""
		default:
			return off, dnsrow.ReasonBadLabel
		}
	}
}

// appendName appends the name at off to dst in presentation form (RFC 1035 5.1, escaped as dig
// does: \DDD for bytes outside 0x21-0x7e, a backslash before . \ " ( ) ; @ $), without the final
// dot; the root is "". It follows compression pointers and returns the offset after the name as
// it appears at off.
func appendName(dst, msg []byte, off int) ([]byte, int, string) {
	var visited [visitedMax]uint16
	nvisited := 0
	visited[nvisited] = uint16(off)
	nvisited++
	jumps := 0
	end := -1 // offset after the name at its original place, once a pointer was taken
	wire := 0
	first := true
	for {
		if off >= len(msg) {
			return dst, end, dnsrow.ReasonShortName
		}
		c := int(msg[off])
		switch c & 0xc0 {
		case 0x00:
			if c == 0 {
				if end < 0 {
					end = off + 1
				}
				return dst, end, ""
			}
			wire += c + 1
			if wire+1 > maxNameWire {
				return dst, end, dnsrow.ReasonNameTooLong
			}
			if off+1+c > len(msg) {
				// Keep what is there of the label: it helps to see what the name was.
				if !first {
					dst = append(dst, '.')
				}
				dst = appendLabel(dst, msg[off+1:])
				return dst, end, dnsrow.ReasonShortName
			}
			if !first {
				dst = append(dst, '.')
			}
			first = false
			dst = appendLabel(dst, msg[off+1:off+1+c])
			off += c + 1
		case 0xc0:
			if off+2 > len(msg) {
				return dst, end, dnsrow.ReasonShortName
			}
			target := int(binary.BigEndian.Uint16(msg[off:]) & 0x3fff)
			if end < 0 {
				end = off + 2
			}
			if target >= len(msg) {
				return dst, end, dnsrow.ReasonBadPointer
			}
			for _, v := range visited[:nvisited] {
				if int(v) == target {
					return dst, end, dnsrow.ReasonNameLoop
				}
			}
			if nvisited < visitedMax {
				visited[nvisited] = uint16(target)
				nvisited++
			}
			if jumps++; jumps > len(msg) {
				return dst, end, dnsrow.ReasonNameLoop
			}
			off = target
		default:
			return dst, end, dnsrow.ReasonBadLabel
		}
	}
}

// escapes classifies each byte of a label for presentation form: '0' written as it is,
// '1' written after a backslash (. \ " ( ) ; @ $), '2' written as \DDD (outside 0x21-0x7e).
const escapes = "2222222222222222222222222222222220101000110000100000000000010000" +
	"1000000000000000000000000000100000000000000000000000000000000002" +
	"2222222222222222222222222222222222222222222222222222222222222222" +
	"2222222222222222222222222222222222222222222222222222222222222222"

func appendLabel(dst, label []byte) []byte {
	i := 0
	for i < len(label) && escapes[label[i]] == '0' {
		i++
	}
	dst = append(dst, label[:i]...)
	for _, b := range label[i:] {
		switch escapes[b] {
		case '0':
			dst = append(dst, b)
		case '1':
			dst = append(dst, '\\', b)
		default:
			dst = append(dst, '\\', '0'+b/100, '0'+b/10%10, '0'+b%10)
		}
	}
	return dst
}
