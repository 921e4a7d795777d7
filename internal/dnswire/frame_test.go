package dnswire

import (
	"encoding/binary"
	"fmt"
	"testing"

	"github.com/dnsloss/dnsloss/internal/dnsrow"
)

var dnsQuery = cat(hdr(0xabcd, 0x0100, 1, 0, 0, 0), qname("www.example.com"), qA)

func udp(sport, dport uint16, payload []byte) []byte {
	b := make([]byte, 8, 8+len(payload))
	binary.BigEndian.PutUint16(b[0:], sport)
	binary.BigEndian.PutUint16(b[2:], dport)
	binary.BigEndian.PutUint16(b[4:], uint16(8+len(payload)))
	return append(b, payload...)
}

// ipv4 builds an IPv4 header 10.0.0.1 -> 10.0.0.2 around payload (checksum left 0).
func ipv4(proto byte, fragField uint16, payload []byte) []byte {
	b := make([]byte, 20, 20+len(payload))
	b[0] = 0x45
	binary.BigEndian.PutUint16(b[2:], uint16(20+len(payload)))
	binary.BigEndian.PutUint16(b[6:], fragField)
	b[8] = 64
	b[9] = proto
	copy(b[12:], []byte{10, 0, 0, 1})
	copy(b[16:], []byte{10, 0, 0, 2})
	return append(b, payload...)
}

// ipv6 builds an IPv6 header 2001:db8::1 -> 2001:db8::2 with extension headers ext (already
// chained: next is the first header's type) around payload.
func ipv6(next byte, ext, payload []byte) []byte {
	b := make([]byte, 40, 40+len(ext)+len(payload))
	b[0] = 0x60
	binary.BigEndian.PutUint16(b[4:], uint16(len(ext)+len(payload)))
	b[6] = next
	b[7] = 64
	copy(b[8:], []byte{0x20, 0x01, 0x0d, 0xb8, 15: 1})
	copy(b[24:], []byte{0x20, 0x01, 0x0d, 0xb8, 15: 2})
	b = append(b, ext...)
	return append(b, payload...)
}

var (
	mac2   = []byte{2, 0, 0, 0, 0, 1, 2, 0, 0, 0, 0, 2}
	v4dns  = ipv4(17, 0, udp(40000, 53, dnsQuery))
	v6dns  = ipv6(17, nil, udp(40000, 53, dnsQuery))
	src4   = [16]byte{10: 0xff, 11: 0xff, 12: 10, 15: 1}
	src6   = [16]byte{0x20, 0x01, 0x0d, 0xb8, 15: 1}
	ethV4  = cat(mac2, []byte{0x08, 0x00})
	ethV6  = cat(mac2, []byte{0x86, 0xdd})
	ethARP = cat(mac2, []byte{0x08, 0x06}, make([]byte, 28))
)

func sll(pkttype uint16, proto uint16) []byte {
	b := make([]byte, 16)
	binary.BigEndian.PutUint16(b[0:], pkttype)
	binary.BigEndian.PutUint16(b[2:], 1)
	binary.BigEndian.PutUint16(b[4:], 6)
	binary.BigEndian.PutUint16(b[14:], proto)
	return b
}

func sll2(pkttype byte, proto uint16) []byte {
	b := make([]byte, 20)
	binary.BigEndian.PutUint16(b[0:], proto)
	binary.BigEndian.PutUint32(b[4:], 2)
	binary.BigEndian.PutUint16(b[8:], 1)
	b[10] = pkttype
	b[11] = 6
	return b
}

func TestDecodeFrame(t *testing.T) {
	type result struct {
		bucket  string
		dir     uint8
		version uint8
		src     [16]byte
		size    uint32
		trunc   uint8
		mal     string
	}
	v4 := result{bucket: "dns", version: 4, src: src4, size: uint32(len(dnsQuery))}
	v6 := result{bucket: "dns", version: 6, src: src6, size: uint32(len(dnsQuery))}
	with := func(r result, f func(*result)) result { f(&r); return r }
	dirIn := func(r *result) { r.dir = dnsrow.DirIn }
	dirOut := func(r *result) { r.dir = dnsrow.DirOut }
	hopByHop := []byte{60, 0, 1, 4, 0, 0, 0, 0}         // next: destination options; PadN
	destOpts := []byte{17, 1, 1, 12, 15: 0}             // next: UDP; 16 bytes
	routing := []byte{17, 0, 0, 0, 0, 0, 0, 0}          // next: UDP
	fragHdr := []byte{17, 0, 0, 1, 0, 0, 0, 1}          // next: UDP, offset 0, MF
	cut := v4dns[:len(v4dns)-10]                        // snaplen cut inside the question
	short := ipv4(17, 0, udp(40000, 53, dnsQuery[:11])) // 11 bytes of DNS

	tests := []struct {
		name string
		link uint16
		data []byte
		want result
	}{
		{"ethernet ipv4", LinkTypeEthernet, cat(ethV4, v4dns), v4},
		{"ethernet ipv6", LinkTypeEthernet, cat(ethV6, v6dns), v6},
		{"ethernet trailer", LinkTypeEthernet, cat(ethV4, v4dns, []byte{'p', 'a', 'd'}), v4},
		{"802.1Q", LinkTypeEthernet, cat(mac2, []byte{0x81, 0, 0, 11, 0x08, 0}, v4dns), v4},
		{"QinQ 802.1ad+802.1Q", LinkTypeEthernet, cat(mac2, []byte{0x88, 0xa8, 0, 100, 0x81, 0, 0, 11, 0x86, 0xdd}, v6dns), v6},
		{"three tags", LinkTypeEthernet, cat(mac2, []byte{0x91, 0, 0, 1, 0x88, 0xa8, 0, 2, 0x81, 0, 0, 3, 0x08, 0}, v4dns), v4},
		{"arp", LinkTypeEthernet, ethARP, result{bucket: "nondns"}},
		{"icmp", LinkTypeEthernet, cat(ethV4, ipv4(1, 0, make([]byte, 8))), result{bucket: "nondns"}},
		{"udp other port", LinkTypeEthernet, cat(ethV4, ipv4(17, 0, udp(1000, 2000, dnsQuery))), result{bucket: "nondns"}},
		{"udp from port 53", LinkTypeEthernet, cat(ethV4, ipv4(17, 0, udp(53, 40000, dnsQuery))), v4},
		{"tcp port 53", LinkTypeEthernet, cat(ethV4, ipv4(6, 0, cat([]byte{0x9c, 0x40, 0, 53}, make([]byte, 8), []byte{0x50, 0x02}, make([]byte, 6)))), result{bucket: "tcp"}},
		{"tcp data offset below 20", LinkTypeEthernet, cat(ethV4, ipv4(6, 0, cat([]byte{0x9c, 0x40, 0, 53}, make([]byte, 16)))), result{bucket: "error"}},
		{"tcp data offset past the end", LinkTypeEthernet, cat(ethV4, ipv4(6, 0, cat([]byte{0x9c, 0x40, 0, 53}, make([]byte, 8), []byte{0x60, 0x02}, make([]byte, 6)))), result{bucket: "error"}},
		{"tcp other port", LinkTypeEthernet, cat(ethV4, ipv4(6, 0, cat([]byte{0x9c, 0x40, 0, 80}, make([]byte, 16)))), result{bucket: "nondns"}},
		{"ipv4 first fragment", LinkTypeEthernet, cat(ethV4, ipv4(17, 0x2000, udp(40000, 53, dnsQuery))), result{bucket: "fragment"}},
		{"ipv4 later fragment", LinkTypeEthernet, cat(ethV4, ipv4(17, 0x0003, dnsQuery)), result{bucket: "fragment"}},
		{"ipv4 DF is not a fragment", LinkTypeEthernet, cat(ethV4, ipv4(17, 0x4000, udp(40000, 53, dnsQuery))), v4},
		{"ipv6 fragment header", LinkTypeEthernet, cat(ethV6, ipv6(44, fragHdr, udp(40000, 53, dnsQuery))), result{bucket: "fragment"}},
		{"ipv6 hop-by-hop and destination options", LinkTypeEthernet, cat(ethV6, ipv6(0, cat(hopByHop, destOpts), udp(40000, 53, dnsQuery))), v6},
		{"ipv6 routing", LinkTypeRaw, ipv6(43, routing, udp(40000, 53, dnsQuery)), v6},
		{"ipv6 extension header past the end", LinkTypeRaw, ipv6(0, []byte{17, 9, 0, 0, 0, 0, 0, 0}, nil), result{bucket: "error"}},
		{"snaplen cut", LinkTypeEthernet, cat(ethV4, cut), with(v4, func(r *result) { r.trunc = 1; r.mal = dnsrow.ReasonTruncated })},
		{"short dns", LinkTypeEthernet, cat(ethV4, short), result{bucket: "short"}},
		{"short ethernet", LinkTypeEthernet, mac2, result{bucket: "error"}},
		{"bad ipv4 ihl", LinkTypeIPv4, append([]byte{0x44}, v4dns[1:]...), result{bucket: "error"}},
		{"ipv4 total length below header", LinkTypeIPv4, append(append([]byte{}, v4dns[:2]...), append([]byte{0, 10}, v4dns[4:]...)...), result{bucket: "error"}},
		{"udp length too big", LinkTypeIPv4, ipv4(17, 0, append([]byte{0x9c, 0x40, 0, 53, 0xff, 0xff, 0, 0}, dnsQuery...)), result{bucket: "error"}},
		{"udp length too small", LinkTypeIPv4, ipv4(17, 0, append([]byte{0x9c, 0x40, 0, 53, 0, 7, 0, 0}, dnsQuery...)), result{bucket: "error"}},
		{"sll outgoing", LinkTypeLinuxSLL, cat(sll(4, 0x0800), v4dns), with(v4, dirOut)},
		{"sll host", LinkTypeLinuxSLL, cat(sll(0, 0x86dd), v6dns), with(v6, dirIn)},
		{"sll broadcast", LinkTypeLinuxSLL, cat(sll(1, 0x0800), v4dns), with(v4, dirIn)},
		{"sll multicast", LinkTypeLinuxSLL, cat(sll(2, 0x0800), v4dns), with(v4, dirIn)},
		{"sll otherhost", LinkTypeLinuxSLL, cat(sll(3, 0x0800), v4dns), v4},
		{"sll2 outgoing", LinkTypeLinuxSLL2, cat(sll2(4, 0x0800), v4dns), with(v4, dirOut)},
		{"sll2 host", LinkTypeLinuxSLL2, cat(sll2(0, 0x86dd), v6dns), with(v6, dirIn)},
		{"raw 101 ipv4", LinkTypeRaw, v4dns, v4},
		{"raw 101 ipv6", LinkTypeRaw, v6dns, v6},
		{"raw 12", LinkTypeRawDLT12, v4dns, v4},
		{"raw 14", LinkTypeRawDLT14, v6dns, v6},
		{"raw not ip", LinkTypeRaw, []byte{0x50, 0, 0, 0}, result{bucket: "error"}},
		{"ipv4 228", LinkTypeIPv4, v4dns, v4},
		{"ipv6 229", LinkTypeIPv6, v6dns, v6},
		{"null little-endian AF_INET", LinkTypeNull, cat([]byte{2, 0, 0, 0}, v4dns), v4},
		{"null big-endian AF_INET", LinkTypeNull, cat([]byte{0, 0, 0, 2}, v4dns), v4},
		{"null AF_INET6 darwin", LinkTypeNull, cat([]byte{30, 0, 0, 0}, v6dns), v6},
		{"null AF_INET6 freebsd", LinkTypeNull, cat([]byte{28, 0, 0, 0}, v6dns), v6},
		{"null AF_INET6 openbsd", LinkTypeNull, cat([]byte{24, 0, 0, 0}, v6dns), v6},
		{"null other family", LinkTypeNull, cat([]byte{7, 0, 0, 0}, v4dns), result{bucket: "nondns"}},
		{"loop AF_INET", LinkTypeLoop, cat([]byte{0, 0, 0, 2}, v4dns), v4},
		{"loop AF_INET6", LinkTypeLoop, cat([]byte{0, 0, 0, 24}, v6dns), v6},
		{"unsupported link", 147, v4dns, result{bucket: "unsupported"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			d := NewDecoder(Config{Host: "host1", Source: "test"})
			var got result
			var rows int
			var m dnsrow.Message
			d.Decode(&Frame{LinkType: tc.link, TS: 42, Data: tc.data, Iface: "eth0"}, func(mm *dnsrow.Message) {
				rows++
				m = *mm
				got = result{bucket: "dns", dir: m.Direction, version: m.IPVersion, src: m.SrcIP, size: m.Size, trunc: m.Truncated, mal: string(m.Malformed)}
			})
			st := d.Stats()
			buckets := map[string]uint64{"dns": st.UDP, "short": st.ShortDNS, "nondns": st.NonDNS, "error": st.DecodeErrors,
				"unsupported": st.UnsupportedLink, "fragment": st.Fragments, "tcp": st.TCPSegments}
			if got.bucket == "" {
				for k, v := range buckets {
					if v == 1 {
						got.bucket = k
					}
				}
			}
			if fmt.Sprint(got) != fmt.Sprint(tc.want) {
				t.Errorf("got  %+v\nwant %+v", got, tc.want)
			}
			if bucketSum(st) != 1 || st.Packets != 1 {
				t.Errorf("stats: got %+v, want exactly one bucket of one packet", st)
			}
			if rows == 1 {
				if m.TS != 42 || string(m.Iface) != "eth0" || string(m.Host) != "host1" || string(m.Source) != "test" ||
					m.SrcPort != 40000 && m.SrcPort != 53 || m.Transport != dnsrow.TransportUDP || m.ID != 0xabcd || string(m.QName) != "www.example.com" && m.Truncated == 0 {
					t.Errorf("row: got ts %d iface %q host %q source %q sport %d transport %d id %#x qname %q", m.TS, m.Iface, m.Host, m.Source, m.SrcPort, m.Transport, m.ID, m.QName)
				}
			}
		})
	}
}

func TestSupported(t *testing.T) {
	d := NewDecoder(Config{})
	for _, lt := range []uint16{0, 1, 12, 14, 101, 108, 113, 228, 229, 276} {
		if err := d.Supported(lt); err != nil {
			t.Errorf("Supported(%d): got %v, want nil", lt, err)
		}
	}
	err := d.Supported(147)
	want := "link type 147, which dnsloss does not decode (supported: " + SupportedLinkTypes + ")"
	if err == nil || err.Error() != want {
		t.Errorf("Supported(147): got %v, want %q", err, want)
	}
}

func TestPorts(t *testing.T) {
	d := NewDecoder(Config{Ports: []uint16{5353}})
	var rows int
	emit := func(*dnsrow.Message) { rows++ }
	d.Decode(&Frame{LinkType: LinkTypeIPv4, Data: v4dns}, emit) // port 53: not configured
	d.Decode(&Frame{LinkType: LinkTypeIPv4, Data: ipv4(17, 0, udp(5353, 5353, dnsQuery))}, emit)
	if st := d.Stats(); rows != 1 || st.NonDNS != 1 {
		t.Errorf("got %d rows and %d non-DNS, want 1 and 1", rows, st.NonDNS)
	}
}

func TestDecodeAllocs(t *testing.T) {
	d := NewDecoder(Config{Host: "h", Source: "s"})
	withOPT := cat(ethV4, ipv4(17, 0, udp(40000, 53, cat(hdr(1, 0, 1, 0, 0, 1), qname("www.example.com"), qA, opt(1232, 0, []byte{0, 10, 0, 0})))))
	frames := []*Frame{{LinkType: LinkTypeEthernet, Data: cat(ethV4, v4dns), Iface: "eth0"}, {LinkType: LinkTypeEthernet, Data: withOPT, Iface: "eth0"}}
	emit := func(*dnsrow.Message) {}
	for _, f := range frames {
		d.Decode(f, emit) // grow the reused buffers
	}
	if n := testing.AllocsPerRun(100, func() {
		for _, f := range frames {
			d.Decode(f, emit)
		}
	}); n != 0 {
		t.Errorf("allocations per Decode: got %v, want 0", n)
	}
}
