package dnswire

import (
	"errors"
	"io"
	"runtime"
	"testing"

	"github.com/google/gopacket"
	"github.com/google/gopacket/layers"

	"github.com/dnsloss/dnsloss/internal/dnsrow"
	"github.com/dnsloss/dnsloss/internal/ipfrag"
	"github.com/dnsloss/dnsloss/internal/pcapread"
	"github.com/dnsloss/dnsloss/internal/tcpdns"
)

// loadFrames reads every frame of a capture into memory.
func loadFrames(tb testing.TB, path string) []Frame {
	tb.Helper()
	frames, err := readFrames(path)
	if err != nil {
		tb.Fatal(err)
	}
	return frames
}

// loadFramesLenient is loadFrames keeping the frames before a read error.
func loadFramesLenient(tb testing.TB, path string) []Frame {
	frames, _ := readFrames(path)
	return frames
}

func readFrames(path string) ([]Frame, error) {
	r, err := pcapread.Open(path)
	if err != nil {
		return nil, err
	}
	defer r.Close()
	var frames []Frame
	var p pcapread.Packet
	for {
		err := r.Next(&p)
		if errors.Is(err, io.EOF) {
			return frames, nil
		}
		if err != nil {
			return frames, err
		}
		frames = append(frames, Frame{LinkType: p.LinkType, TS: p.TS, Data: append([]byte(nil), p.Data...), WireLen: p.WireLen, Iface: p.Iface})
	}
}

const loss20 = "../../testdata/lab/loss20.pcap"

// BenchmarkDecodeUDP decodes the Ethernet/IPv4/UDP frames of the loss20 lab capture.
func BenchmarkDecodeUDP(b *testing.B) {
	frames := loadFrames(b, loss20)
	d := NewDecoder(Config{Host: "h", Source: "s"})
	var rows int
	emit := func(*dnsrow.Message) { rows++ }
	b.ReportAllocs()
	b.ResetTimer()
	n := 0
	for b.Loop() {
		d.Decode(&frames[n%len(frames)], emit)
		n++
	}
	b.ReportMetric(float64(n)/b.Elapsed().Seconds(), "packets/s")
}

// BenchmarkGopacketDLP is the same work done with gopacket's DecodingLayerParser (Ethernet,
// IPv4, IPv6, UDP, DNS), for comparison with BenchmarkDecodeUDP.
func BenchmarkGopacketDLP(b *testing.B) {
	frames := loadFrames(b, loss20)
	var (
		eth layers.Ethernet
		ip4 layers.IPv4
		ip6 layers.IPv6
		udp layers.UDP
		dns layers.DNS
	)
	parser := gopacket.NewDecodingLayerParser(layers.LayerTypeEthernet, &eth, &ip4, &ip6, &udp, &dns)
	parser.IgnoreUnsupported = true
	decoded := make([]gopacket.LayerType, 0, 8)
	b.ReportAllocs()
	b.ResetTimer()
	n := 0
	for b.Loop() {
		_ = parser.DecodeLayers(frames[n%len(frames)].Data, &decoded)
		n++
	}
	b.ReportMetric(float64(n)/b.Elapsed().Seconds(), "packets/s")
}

// dnsPayloads returns the DNS messages (UDP payloads) of Ethernet/IPv4 captures.
func dnsPayloads(b *testing.B, paths ...string) [][]byte {
	var out [][]byte
	for _, path := range paths {
		for _, f := range loadFrames(b, path) {
			// Ethernet (14) + IPv4 without options (20) + UDP (8) to port 53.
			if len(f.Data) > 42+12 && f.Data[12] == 8 && f.Data[13] == 0 && f.Data[14] == 0x45 && f.Data[23] == 17 &&
				(f.Data[36] == 0 && f.Data[37] == 53 || f.Data[34] == 0 && f.Data[35] == 53) {
				out = append(out, f.Data[42:])
			}
		}
	}
	return out
}

// The lab capture (short messages, no additional section) and DNS-OARC captures (EDNS, large
// referral responses where the OPT record is the last of many additional records).
var parseSets = []struct {
	name  string
	paths []string
}{
	{"lab", []string{loss20}},
	{"edns", []string{"testdata/DNS-OARC_dnscap__edns.pcap", "testdata/DNS-OARC_dnscap__dns.pcap"}},
}

// BenchmarkParseMessage and BenchmarkGopacketDNS compare this package's parser with gopacket's
// layers.DNS on the same messages.
func BenchmarkParseMessage(b *testing.B) {
	for _, set := range parseSets {
		b.Run(set.name, func(b *testing.B) {
			msgs := dnsPayloads(b, set.paths...)
			var m dnsrow.Message
			b.ReportAllocs()
			b.ResetTimer()
			n := 0
			for b.Loop() {
				ParseMessage(msgs[n%len(msgs)], &m)
				n++
			}
		})
	}
}

func BenchmarkGopacketDNS(b *testing.B) {
	for _, set := range parseSets {
		b.Run(set.name, func(b *testing.B) {
			msgs := dnsPayloads(b, set.paths...)
			var dns layers.DNS
			b.ReportAllocs()
			b.ResetTimer()
			n := 0
			for b.Loop() {
				_ = dns.DecodeFromBytes(msgs[n%len(msgs)], gopacket.NilDecodeFeedback)
				n++
			}
		})
	}
}

// BenchmarkDecodeReassembly decodes whole captures that go through reassembly: frags.pcap (every
// message in IPv4 fragments) and dnso1tcp.pcap (41 queries and responses over one TCP
// connection), with a Flush at the end of each pass.
func BenchmarkDecodeReassembly(b *testing.B) {
	for _, name := range []string{"DNS-OARC_dnscap__frags.pcap", "DNS-OARC_dnscap__dnso1tcp.pcap"} {
		b.Run(name, func(b *testing.B) {
			frames := loadFrames(b, "testdata/"+name)
			d := NewDecoder(Config{Host: "h", Source: "s"})
			var rows int
			emit := func(*dnsrow.Message) { rows++ }
			b.ReportAllocs()
			for b.Loop() {
				for i := range frames {
					d.Decode(&frames[i], emit)
				}
				d.Flush(emit)
			}
			b.ReportMetric(float64(len(frames))*float64(b.N)/b.Elapsed().Seconds(), "packets/s")
		})
	}
}

// BenchmarkDecoderBounds feeds the whole Decoder, with its default caps, 1,000,000 half-open TCP
// connections (a SYN then the first 20 bytes of a query, from a new client port and address
// each) and 1,000,000 first fragments (1472 bytes) that are never completed, and reports the
// peak state held and the heap in use at the end, with the Decoder still live.
func BenchmarkDecoderBounds(b *testing.B) {
	q := prefixed(cat(hdr(1, 0x0100, 1, 0, 0, 0), qname("www.example.com"), qA))[:20]
	syn := ip4("10.0.0.1", "192.0.2.53", 6, 0, 0, tcpSeg(1, 53, 100, 0, 0x02, nil))
	data := ip4("10.0.0.1", "192.0.2.53", 6, 0, 0, tcpSeg(1, 53, 101, 0, 0x18, q))
	frag := ip4("10.0.0.1", "192.0.2.53", 17, 0, 0x2000, udp(40000, 53, make([]byte, 1464)))
	var st Stats
	var heap uint64
	for b.Loop() {
		d := NewDecoder(Config{})
		emit := func(*dnsrow.Message) {}
		for i := range 1_000_000 {
			ts := int64(i) * 1000
			for _, p := range [][]byte{syn, data} {
				p[12], p[13], p[14] = byte(i>>16), byte(i>>8), byte(i) // source address
				p[20], p[21] = byte(i>>8), byte(i)                     // source port
				d.Decode(&Frame{LinkType: LinkTypeRaw, TS: ts, Data: p}, emit)
			}
			frag[4], frag[5] = byte(i>>8), byte(i)
			frag[12], frag[13] = byte(i>>24), byte(i>>16)
			d.Decode(&Frame{LinkType: LinkTypeRaw, TS: ts, Data: frag}, emit)
		}
		st = d.Stats()
		runtime.GC()
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		heap = ms.HeapInuse
		runtime.KeepAlive(d)
	}
	if st.IPFrag.PeakHeld > ipfrag.DefaultMaxDatagrams || st.IPFrag.PeakBytesHeld > ipfrag.DefaultMaxBytes ||
		st.TCP.PeakFlows > tcpdns.DefaultMaxFlows || st.TCP.PeakBytesHeld > tcpdns.DefaultMaxBytesTotal {
		b.Fatalf("caps exceeded: %+v", st)
	}
	b.ReportMetric(float64(st.IPFrag.PeakHeld), "peak-datagrams")
	b.ReportMetric(float64(st.IPFrag.PeakBytesHeld), "peak-frag-bytes")
	b.ReportMetric(float64(st.TCP.PeakFlows), "peak-flows")
	b.ReportMetric(float64(st.TCP.PeakBytesHeld), "peak-tcp-bytes")
	b.ReportMetric(float64(heap)/(1<<20), "heap-inuse-MiB")
}
