package tcpdns

import "encoding/binary"

// verdict is the answer of a plausibility check on bytes that may still grow.
type verdict uint8

const (
	no   verdict = iota // these bytes cannot start a DNS message
	yes                 // they can
	more                // not enough bytes yet to tell
)

// minMessage is the smallest DNS message with one question: a 12-byte header and a question for
// the root name (1 byte) with its type and class (4 bytes).
const minMessage = 12 + 5

// minRR is the smallest resource record: a 1- or 2-byte name (root or compression pointer; 1 is
// the floor) and 10 bytes of type, class, TTL and rdlength.
const minRR = 11

// headerPlausible checks a DNS header (at least 12 bytes) for a message of length n. It is the
// heart of resynchronisation, so every rule is one no real query or response breaks:
//   - QDCOUNT is 1. Queries and responses over TCP carry exactly one question (RFC 9619 makes
//     that a rule for QUERY); only zone-transfer continuation messages have 0, and those are not
//     what loss analysis needs, so a stream resynchronises on the next message with a question.
//   - OPCODE is QUERY (0), IQUERY (1), STATUS (2), NOTIFY (4), UPDATE (5) or DSO (6); 3 and 7-15
//     are unassigned.
//   - The Z bit (0x0040) is 0 (it must be zero, RFC 1035; AD and CD are allowed).
//   - RCODE is 0-11 (the 4-bit codes assigned by IANA), and 0 in a query (QR=0).
//   - The message is long enough for its counts: 12 + 5*QDCOUNT + 11*(ANCOUNT+NSCOUNT+ARCOUNT)
//     <= n, the smallest question being 5 bytes and the smallest record 11.
func headerPlausible(h []byte, n int) bool {
	flags := binary.BigEndian.Uint16(h[2:4])
	qr := flags >> 15
	opcode := (flags >> 11) & 0xf
	rcode := flags & 0xf
	if opcode == 3 || opcode > 6 || flags&0x0040 != 0 || rcode > 11 || (qr == 0 && rcode != 0) {
		return false
	}
	if binary.BigEndian.Uint16(h[4:6]) != 1 {
		return false
	}
	rrs := int(binary.BigEndian.Uint16(h[6:8])) + int(binary.BigEndian.Uint16(h[8:10])) + int(binary.BigEndian.Uint16(h[10:12]))
	return minMessage+minRR*rrs <= n
}

// questionPlausible checks the question that starts at m[12] of a message of declared length n
// (m may hold fewer than n bytes yet): the name is uncompressed labels of 1-63 bytes ending in
// the root label, at most 255 bytes long, within n; QTYPE is not 0; QCLASS is IN (1), CH (3),
// HS (4), NONE (254) or ANY (255).
func questionPlausible(m []byte, n int) verdict {
	p, nameLen := 12, 0
	for {
		if p >= n {
			return no
		}
		if p >= len(m) {
			return more
		}
		c := int(m[p])
		if c == 0 {
			p++
			break
		}
		if c > 63 { // a compression pointer (nothing before the question to point at) or a reserved label type
			return no
		}
		nameLen += c + 1
		if nameLen > 254 { // 255 with the root label
			return no
		}
		p += 1 + c
	}
	if p+4 > n {
		return no
	}
	if p+4 > len(m) {
		return more
	}
	if binary.BigEndian.Uint16(m[p:]) == 0 {
		return no
	}
	switch binary.BigEndian.Uint16(m[p+2:]) {
	case 1, 3, 4, 254, 255:
		return yes
	}
	return no
}

// plausibleFramed says whether b starts with a plausible 2-byte length prefix and DNS message:
// a length of at least 17 (header and the smallest question), a plausible header and a plausible
// question. It needs the prefix, the header and the question, not the whole message.
func plausibleFramed(b []byte) verdict {
	if len(b) >= 2 && int(binary.BigEndian.Uint16(b)) < minMessage {
		return no
	}
	if len(b) < 2+12 {
		return more
	}
	n := int(binary.BigEndian.Uint16(b))
	m := b[2:]
	if !headerPlausible(m, n) {
		return no
	}
	if len(m) > n {
		m = m[:n]
	}
	return questionPlausible(m, n)
}

// walkMessage measures a DNS message that starts at m[0] without a length prefix, by walking its
// header, question and records. It returns the message length when m holds a whole plausible
// message, more when m ends inside one, and no when m cannot start one.
func walkMessage(m []byte) (int, verdict) {
	if len(m) < 12 {
		return 0, more
	}
	if !headerPlausible(m, 65535) {
		return 0, no
	}
	if v := questionPlausible(m, 65535); v != yes {
		return 0, v
	}
	p := 12
	for p < len(m) && m[p] != 0 {
		p += 1 + int(m[p])
	}
	p += 1 + 4
	rrs := int(binary.BigEndian.Uint16(m[6:8])) + int(binary.BigEndian.Uint16(m[8:10])) + int(binary.BigEndian.Uint16(m[10:12]))
	for range rrs {
		// Owner name: labels, ending in the root label or a compression pointer to an earlier offset.
		for {
			if p >= len(m) {
				return 0, grow(m)
			}
			c := int(m[p])
			if c == 0 {
				p++
				break
			}
			if c&0xc0 == 0xc0 {
				if p+2 > len(m) {
					return 0, grow(m)
				}
				if int(binary.BigEndian.Uint16(m[p:])&0x3fff) >= p {
					return 0, no
				}
				p += 2
				break
			}
			if c > 63 {
				return 0, no
			}
			p += 1 + c
		}
		if p+10 > len(m) {
			return 0, grow(m)
		}
		p += 10 + int(binary.BigEndian.Uint16(m[p+8:]))
		if p > len(m) {
			return 0, grow(m)
		}
	}
	if p > 65535 {
		return 0, no
	}
	return p, yes
}

// grow is the verdict on a message walk that ran past the end of m: wait for more bytes, unless m
// already holds the largest message there can be.
func grow(m []byte) verdict {
	if len(m) >= 65535 {
		return no
	}
	return more
}
