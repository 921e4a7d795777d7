package dnswire

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"strings"
	"testing"

	"github.com/dnsloss/dnsloss/internal/dnsrow"
)

// hdr builds a 12-byte DNS header.
func hdr(id uint16, flags uint16, qd, an, ns, ar uint16) []byte {
	b := make([]byte, 12)
	binary.BigEndian.PutUint16(b[0:], id)
	binary.BigEndian.PutUint16(b[2:], flags)
	binary.BigEndian.PutUint16(b[4:], qd)
	binary.BigEndian.PutUint16(b[6:], an)
	binary.BigEndian.PutUint16(b[8:], ns)
	binary.BigEndian.PutUint16(b[10:], ar)
	return b
}

func cat(parts ...[]byte) []byte { return bytes.Join(parts, nil) }

// qname encodes dotted labels (no escapes) in wire form.
func qname(s string) []byte {
	var b []byte
	if s != "" {
		for _, l := range bytes.Split([]byte(s), []byte(".")) {
			b = append(b, byte(len(l)))
			b = append(b, l...)
		}
	}
	return append(b, 0)
}

var qA = []byte{0, 1, 0, 1} // type A, class IN

// opt is an OPT RR with the given class and ttl and rdata.
func opt(class uint16, ttl uint32, rdata []byte) []byte {
	b := []byte{0, 0, 41, byte(class >> 8), byte(class), byte(ttl >> 24), byte(ttl >> 16), byte(ttl >> 8), byte(ttl), byte(len(rdata) >> 8), byte(len(rdata))}
	return append(b, rdata...)
}

func TestParseMessage(t *testing.T) {
	// a chain of 200 pointers, each to the one before, ending at the label "a": legal, decodes.
	chain := cat(hdr(1, 0, 1, 0, 0, 0), []byte{0xc0, 0}, qA, []byte{1, 'a', 0})
	prev := 18
	for range 200 {
		at := len(chain)
		chain = append(chain, 0xc0|byte(prev>>8), byte(prev))
		prev = at
	}
	binary.BigEndian.PutUint16(chain[12:], 0xc000|uint16(prev))

	long255 := cat(bytes.Repeat(append([]byte{63}, bytes.Repeat([]byte{'x'}, 63)...), 3), append([]byte{61}, bytes.Repeat([]byte{'y'}, 61)...), []byte{0})
	long257 := cat(bytes.Repeat([]byte{1, 'a'}, 128), []byte{0})

	tests := []struct {
		name   string
		msg    []byte
		qname  string
		reason string
		check  func(t *testing.T, m *dnsrow.Message)
	}{
		{name: "short header", msg: make([]byte, 11), reason: dnsrow.ReasonShortHeader},
		{name: "plain query", msg: cat(hdr(0x1234, 0x0100, 1, 0, 0, 0), qname("www.Example.COM"), qA), qname: "www.Example.COM",
			check: func(t *testing.T, m *dnsrow.Message) {
				if m.ID != 0x1234 || m.RD != 1 || m.QType != 1 || m.QClass != 1 || m.QDCount != 1 {
					t.Errorf("got id %#x rd %d qtype %d qclass %d qdcount %d, want 0x1234 1 1 1 1", m.ID, m.RD, m.QType, m.QClass, m.QDCount)
				}
			}},
		{name: "all flags", msg: cat(hdr(7, 0xafb3, 1, 2, 3, 0), qname("a"), qA), qname: "a",
			check: func(t *testing.T, m *dnsrow.Message) {
				// 0xaf = QR 1, opcode 5, AA 1, TC 1, RD 1; 0xb3 = RA 1, Z 0, AD 1, CD 1, rcode 3
				got := []any{m.QR, m.Opcode, m.AA, m.TC, m.RD, m.RA, m.AD, m.CD, m.Rcode, m.ANCount, m.NSCount}
				want := []any{uint8(1), uint8(5), uint8(1), uint8(1), uint8(1), uint8(1), uint8(1), uint8(1), uint16(3), uint16(2), uint16(3)}
				if fmt.Sprint(got) != fmt.Sprint(want) {
					t.Errorf("got %v, want %v", got, want)
				}
			}},
		{name: "root", msg: cat(hdr(1, 0, 1, 0, 0, 0), []byte{0}, []byte{0, 2, 0, 1}), qname: ""},
		{name: "no question", msg: hdr(1, 0x8000, 0, 0, 0, 0), qname: ""},
		{name: "trailing bytes", msg: cat(hdr(1, 0, 1, 0, 0, 0), qname("a"), qA, []byte{1, 2, 3}), qname: "a"},
		{name: "escaping", msg: cat(hdr(1, 0, 1, 0, 0, 0), []byte{3, 'a', '.', 'b', 3, 'c', '\\', 'd', 3, ' ', 0, 0xff, 4, '@', '(', ')', ';', 2, '"', '$'}, []byte{0}, qA),
			qname: `a\.b.c\\d.\032\000\255.\@\(\)\;.\"\$`},
		{name: "0x20 case kept", msg: cat(hdr(1, 0, 1, 0, 0, 0), qname("Us.V27.DiStRiBuTeD.NET"), qA), qname: "Us.V27.DiStRiBuTeD.NET"},
		{name: "pointer to earlier name", msg: cat(hdr(1, 0, 1, 0, 0, 0), []byte{1, 'x', 0xc0, 20}, qA, qname("example.org")), qname: "x.example.org"},
		{name: "deep pointer chain", msg: chain, qname: "a"},
		{name: "name of 255 octets", msg: cat(hdr(1, 0, 1, 0, 0, 0), long255, qA), qname: fmt.Sprintf("%s.%s.%s.%s", bytes.Repeat([]byte{'x'}, 63), bytes.Repeat([]byte{'x'}, 63), bytes.Repeat([]byte{'x'}, 63), bytes.Repeat([]byte{'y'}, 61))},
		{name: "name-too-long", msg: cat(hdr(1, 0, 1, 0, 0, 0), long257, qA), qname: strings.Repeat("a.", 126) + "a", reason: dnsrow.ReasonNameTooLong},
		{name: "name-loop self", msg: cat(hdr(1, 0, 1, 0, 0, 0), []byte{0xc0, 12}, qA), reason: dnsrow.ReasonNameLoop},
		{name: "name-loop two pointers", msg: cat(hdr(1, 0, 1, 0, 0, 0), []byte{1, 'a', 0xc0, 20}, qA, []byte{1, 'b', 0xc0, 12}), qname: "a.b", reason: dnsrow.ReasonNameLoop},
		{name: "bad-pointer", msg: cat(hdr(1, 0, 1, 0, 0, 0), []byte{1, 'a', 0xc0, 0xff}, qA), qname: "a", reason: dnsrow.ReasonBadPointer},
		{name: "bad-label 0x40", msg: cat(hdr(1, 0, 1, 0, 0, 0), []byte{0x41, 'a', 0}, qA), reason: dnsrow.ReasonBadLabel},
		{name: "bad-label 0x80", msg: cat(hdr(1, 0, 1, 0, 0, 0), []byte{1, 'a', 0x81, 'b', 0}, qA), qname: "a", reason: dnsrow.ReasonBadLabel},
		{name: "short-name in label", msg: cat(hdr(1, 0, 1, 0, 0, 0), []byte{3, 'a', 'b'}), qname: "ab", reason: dnsrow.ReasonShortName},
		{name: "short-name no root", msg: cat(hdr(1, 0, 1, 0, 0, 0), []byte{1, 'a'}), qname: "a", reason: dnsrow.ReasonShortName},
		{name: "short-name half pointer", msg: cat(hdr(1, 0, 1, 0, 0, 0), []byte{1, 'a', 0xc0}), qname: "a", reason: dnsrow.ReasonShortName},
		{name: "short-question", msg: cat(hdr(1, 0, 1, 0, 0, 0), qname("a"), []byte{0, 1}), qname: "a", reason: dnsrow.ReasonShortQuestion},
		{name: "short-rr", msg: cat(hdr(1, 0, 1, 0, 0, 1), qname("a"), qA, []byte{0, 0, 41, 2, 0}), qname: "a", reason: dnsrow.ReasonShortRR},
		{name: "short-rr bad name in answer", msg: cat(hdr(1, 0x8000, 1, 1, 0, 1), qname("a"), qA, []byte{0x80}), qname: "a", reason: dnsrow.ReasonBadLabel},
		{name: "short-rdata", msg: cat(hdr(1, 0, 1, 1, 0, 1), qname("a"), qA, []byte{0xc0, 12, 0, 1, 0, 1, 0, 0, 0, 60, 0, 4, 1, 2}), qname: "a", reason: dnsrow.ReasonShortRData},
		{name: "short-rdata in OPT option", msg: cat(hdr(1, 0, 1, 0, 0, 1), qname("a"), qA, opt(1232, 0, []byte{0, 10, 0, 8, 1, 2})), qname: "a", reason: dnsrow.ReasonShortRData,
			check: func(t *testing.T, m *dnsrow.Message) {
				if m.EDNS != 1 || m.EDNSUDPSize != 1232 || fmt.Sprint(m.EDNSOptions) != "[10]" {
					t.Errorf("got edns %d size %d options %v, want 1 1232 [10]", m.EDNS, m.EDNSUDPSize, m.EDNSOptions)
				}
			}},
		{name: "EDNS after answer and authority", msg: cat(hdr(9, 0x8183, 1, 1, 1, 2), qname("a.example"), qA,
			[]byte{0xc0, 12, 0, 1, 0, 1, 0, 0, 0, 60, 0, 4, 10, 0, 0, 1},         // answer A
			[]byte{0xc0, 14, 0, 2, 0, 1, 0, 0, 0, 60, 0, 2, 0xc0, 12},            // authority NS
			[]byte{1, 'b', 0xc0, 14, 0, 1, 0, 1, 0, 0, 0, 60, 0, 4, 10, 0, 0, 2}, // additional A
			opt(4096, 0x01028000, []byte{0, 10, 0, 8, 1, 2, 3, 4, 5, 6, 7, 8, 0, 12, 0, 0})),
			qname: "a.example",
			check: func(t *testing.T, m *dnsrow.Message) {
				// ttl 0x01028000: extended rcode 1, version 2, DO; header rcode 3 -> (1<<4)|3 = 19
				got := []any{m.EDNS, m.EDNSUDPSize, m.Rcode, m.EDNSVersion, m.EDNSDO, m.EDNSOptions}
				want := []any{uint8(1), uint16(4096), uint16(19), uint8(2), uint8(1), []uint16{10, 12}}
				if fmt.Sprint(got) != fmt.Sprint(want) {
					t.Errorf("got %v, want %v", got, want)
				}
			}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var m dnsrow.Message
			reason := ParseMessage(tc.msg, &m)
			if reason != tc.reason || string(m.Malformed) != tc.reason {
				t.Errorf("reason: got %q (Malformed %q), want %q", reason, m.Malformed, tc.reason)
			}
			if tc.reason != dnsrow.ReasonShortHeader && string(m.QName) != tc.qname {
				t.Errorf("qname: got %q, want %q", m.QName, tc.qname)
			}
			if tc.check != nil {
				tc.check(t, &m)
			}
		})
	}
}

func TestParseMessageReuse(t *testing.T) {
	// A reused Message must not keep EDNS options or the name of the previous message.
	var m dnsrow.Message
	ParseMessage(cat(hdr(1, 0, 1, 0, 0, 1), qname("long.example.net"), qA, opt(1232, 0, []byte{0, 10, 0, 0})), &m)
	m.Reset()
	ParseMessage(cat(hdr(2, 0, 1, 0, 0, 0), qname("b"), qA), &m)
	if string(m.QName) != "b" || len(m.EDNSOptions) != 0 || m.EDNS != 0 {
		t.Errorf("got qname %q options %v edns %d, want \"b\" [] 0", m.QName, m.EDNSOptions, m.EDNS)
	}
}
