package dnswire

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/dnsloss/dnsloss/internal/dnsrow"
)

// seedFrames returns the frames of every capture in testdata and the lab captures.
func seedFrames(tb testing.TB) []Frame {
	paths, _ := filepath.Glob("testdata/*.pcap*")
	paths = append(paths, "../../testdata/lab/drop-name.pcap")
	var frames []Frame
	for _, p := range paths {
		if st, err := os.Stat(p); err != nil || st.Size() > 64<<10 {
			continue
		}
		frames = append(frames, loadFramesLenient(tb, p)...)
	}
	return frames
}

func FuzzParseMessage(f *testing.F) {
	for _, fr := range seedFrames(f) {
		if len(fr.Data) > 42 {
			f.Add(fr.Data[42:]) // Ethernet/IPv4/UDP payload for most seeds
		}
	}
	f.Add(cat(hdr(1, 0, 1, 0, 0, 1), qname("a"), qA, opt(1232, 0x01028000, []byte{0, 10, 0, 0})))
	f.Fuzz(func(t *testing.T, msg []byte) {
		var m dnsrow.Message
		reason := ParseMessage(msg, &m)
		if string(m.Malformed) != reason {
			t.Fatalf("Malformed %q, returned reason %q", m.Malformed, reason)
		}
		if len(msg) < 12 && reason != dnsrow.ReasonShortHeader {
			t.Fatalf("%d bytes: got reason %q, want %q", len(msg), reason, dnsrow.ReasonShortHeader)
		}
	})
}

func FuzzDecodeFrame(f *testing.F) {
	for _, fr := range seedFrames(f) {
		f.Add(fr.LinkType, fr.Data)
	}
	for _, lt := range []uint16{LinkTypeNull, LinkTypeLoop, LinkTypeRaw, LinkTypeRawDLT12, LinkTypeRawDLT14, LinkTypeIPv4, LinkTypeIPv6, LinkTypeLinuxSLL, LinkTypeLinuxSLL2} {
		f.Add(lt, v4dns)
		f.Add(lt, v6dns)
	}
	f.Add(LinkTypeLinuxSLL, cat(sll(4, 0x0800), v4dns))
	f.Add(LinkTypeLinuxSLL2, cat(sll2(0, 0x86dd), v6dns))
	f.Add(LinkTypeNull, cat([]byte{2, 0, 0, 0}, v4dns))
	f.Add(LinkTypeLoop, cat([]byte{0, 0, 0, 24}, v6dns))
	f.Fuzz(func(t *testing.T, lt uint16, data []byte) {
		d := NewDecoder(Config{})
		rows := 0
		d.Decode(&Frame{LinkType: lt, Data: data}, func(m *dnsrow.Message) {
			rows++
			if m.Size < 12 {
				t.Fatalf("row with Size %d", m.Size)
			}
		})
		st := d.Stats()
		if bucketSum(st) != 1 || st.Packets != 1 || uint64(rows) != st.DNSMessages {
			t.Fatalf("stats %+v with %d rows: buckets must hold the one packet", st, rows)
		}
	})
}
