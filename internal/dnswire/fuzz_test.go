package dnswire

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/dnsloss/dnsloss/internal/dnsrow"
	"github.com/dnsloss/dnsloss/internal/ipfrag"
	"github.com/dnsloss/dnsloss/internal/tcpdns"
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
	f.Add(LinkTypeRaw, ip4("192.0.2.1", "192.0.2.2", 17, 1, 0x2000, udp(40000, 53, dnsQuery[:24]))) // a first fragment
	f.Add(LinkTypeRaw, ip4("192.0.2.1", "192.0.2.2", 6, 0, 0, tcpSeg(40000, 53, 1, 0, 0x18, prefixed(dnsQuery))))
	f.Fuzz(func(t *testing.T, lt uint16, data []byte) {
		d := NewDecoder(Config{})
		rows := 0
		emit := func(m *dnsrow.Message) {
			rows++
			if m.Size < 12 {
				t.Fatalf("row with Size %d", m.Size)
			}
		}
		d.Decode(&Frame{LinkType: lt, Data: data}, emit)
		d.Flush(emit)
		st := d.Stats()
		if bucketSum(st) != 1 || st.Packets != 1 || uint64(rows) != st.DNSMessages {
			t.Fatalf("stats %+v with %d rows: buckets must hold the one packet", st, rows)
		}
		if errs := ledgerErrors(st); errs != nil {
			t.Fatalf("%v: %+v", errs, st)
		}
	})
}

// streamOf encodes frames as FuzzDecodeStream reads them: per frame a 2-byte link type, a 1-byte
// timestamp step (milliseconds), a 2-byte length and the bytes.
func streamOf(frames []Frame) []byte {
	var b []byte
	var last int64
	for i, f := range frames {
		step := int64(0)
		if i > 0 {
			step = min(max((f.TS-last)/1e6, 0), 255)
		}
		last = f.TS
		n := min(len(f.Data), 0xffff)
		b = append(b, byte(f.LinkType>>8), byte(f.LinkType), byte(step), byte(n>>8), byte(n))
		b = append(b, f.Data[:n]...)
	}
	return b
}

// FuzzDecodeStream decodes a sequence of frames with one Decoder, so that fragments and TCP
// segments meet the reassemblers' state (small caps, so that evictions happen), then flushes it.
// It checks the ledgers of Stats and that nothing is held after Flush.
func FuzzDecodeStream(f *testing.F) {
	for _, name := range []string{
		"testdata/DNS-OARC_dnscap__frags.pcap",
		"testdata/DNS-OARC_dnscap__dnso1tcp-midmiss.pcap",
		"testdata/DNS-OARC_dnscap__dnsotcp-many1pkt.pcap",
		"testdata/DNS-OARC_dnscap__dnsotcp-manyopkts.pcap",
		"testdata/DNS-OARC_dnscap__do1t-nosyn-1nolen.pcap",
		"testdata/DNS-OARC_dnscap__1qtcppadd.pcap",
		"testdata/arkime_arkime__dns-tcp.pcap",
		"testdata/DNS-OARC_dnscap__dns6.pcap",
	} {
		frames := loadFramesLenient(f, name)
		if name == "testdata/DNS-OARC_dnscap__frags.pcap" {
			frames = frames[:60] // the first few queries and responses: enough state, a small seed
		}
		f.Add(streamOf(frames))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		d := NewDecoder(Config{
			IPFrag: ipfrag.Config{MaxDatagrams: 4, MaxBytes: 8192, Timeout: 50 * time.Millisecond, MaxFragments: 8},
			TCP:    tcpdns.Config{MaxFlows: 3, MaxBytesPerFlow: 600, MaxBytesTotal: 1500, IdleTimeout: 100 * time.Millisecond, ReorderTimeout: 20 * time.Millisecond},
		})
		rows := 0
		emit := func(*dnsrow.Message) { rows++ }
		var ts int64
		for len(data) >= 5 {
			lt := uint16(data[0])<<8 | uint16(data[1])
			ts += int64(data[2]) * 1e6
			n := min(int(data[3])<<8|int(data[4]), len(data)-5)
			d.Decode(&Frame{LinkType: lt, TS: ts, Data: data[5 : 5+n]}, emit)
			data = data[5+n:]
			st := d.Stats()
			if st.IPFrag.BytesHeld > 8192 || st.IPFrag.Held > 4 || st.TCP.Flows > 3 || st.TCP.BytesHeld > 1500 {
				t.Fatalf("caps exceeded: %+v", st)
			}
		}
		d.Expire(ts+1e6, emit)
		d.Flush(emit)
		st := d.Stats()
		if uint64(rows) != st.DNSMessages {
			t.Fatalf("got %d rows, Stats.DNSMessages %d", rows, st.DNSMessages)
		}
		if errs := ledgerErrors(st); errs != nil {
			t.Fatalf("%v: %+v", errs, st)
		}
		if st.IPFrag.Held != 0 || st.TCP.Flows != 0 || st.TCP.BytesHeld != 0 {
			t.Fatalf("after Flush: %+v", st)
		}
	})
}

// TestFuzzFindings replays inputs the fuzz targets found, each named for what it showed.
func TestFuzzFindings(t *testing.T) {
	tests := []struct {
		name   string
		stream []byte // FuzzDecodeStream input
	}{
		// A first IPv4 fragment cut by the capture whose message is also malformed: a row may be
		// both Truncated and Malformed (the ledger check had them exclusive).
		{"truncated and malformed first fragment", []byte("\x00\xe4000E00000 \x000\x11000000000000\x0050000000000000000A0")},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			d := NewDecoder(Config{})
			rows := 0
			emit := func(*dnsrow.Message) { rows++ }
			data := tc.stream
			for len(data) >= 5 {
				n := min(int(data[3])<<8|int(data[4]), len(data)-5)
				d.Decode(&Frame{LinkType: uint16(data[0])<<8 | uint16(data[1]), Data: data[5 : 5+n]}, emit)
				data = data[5+n:]
			}
			d.Flush(emit)
			st := d.Stats()
			if uint64(rows) != st.DNSMessages {
				t.Errorf("got %d rows, Stats.DNSMessages %d", rows, st.DNSMessages)
			}
			for _, e := range ledgerErrors(st) {
				t.Errorf("%s (%+v)", e, st)
			}
		})
	}
}
