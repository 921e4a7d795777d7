package dnswire

import (
	"errors"
	"io"
	"testing"

	"github.com/google/gopacket"
	"github.com/google/gopacket/layers"

	"github.com/dnsloss/dnsloss/internal/dnsrow"
	"github.com/dnsloss/dnsloss/internal/pcapread"
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
