package ipfrag

import (
	"bytes"
	"encoding/binary"
	"errors"
	"github.com/dnsloss/dnsloss/internal/pcapread"
	"io"
	"net/netip"
	"path/filepath"
	"testing"
	"time"
)

// v4 builds an IPv4 packet by hand: 20-byte header (no options, checksum left 0), protocol 17.
func v4(src, dst [4]byte, id uint16, off int, more bool, payload []byte) []byte {
	b := make([]byte, 20, 20+len(payload))
	b[0] = 0x45
	binary.BigEndian.PutUint16(b[2:], uint16(20+len(payload)))
	binary.BigEndian.PutUint16(b[4:], id)
	fo := uint16(off / 8)
	if more {
		fo |= 0x2000
	}
	binary.BigEndian.PutUint16(b[6:], fo)
	b[8], b[9] = 64, 17
	copy(b[12:], src[:])
	copy(b[16:], dst[:])
	return append(b, payload...)
}

// v6 builds an IPv6 packet with a Destination Options header (8 bytes of padding) and then a
// Fragment header, next header 17.
func v6(src, dst [16]byte, id uint32, off int, more bool, payload []byte) []byte {
	b := make([]byte, 40, 56+len(payload))
	b[0] = 0x60
	binary.BigEndian.PutUint16(b[4:], uint16(16+len(payload)))
	b[6], b[7] = 60, 64
	copy(b[8:], src[:])
	copy(b[24:], dst[:])
	b = append(b, 44, 0, 1, 4, 0, 0, 0, 0) // Destination Options: next Fragment, PadN
	fo := uint16(off/8) << 3
	if more {
		fo |= 1
	}
	b = append(b, 17, 0, byte(fo>>8), byte(fo))
	b = binary.BigEndian.AppendUint32(b, id)
	return append(b, payload...)
}

var (
	srcA = [4]byte{192, 0, 2, 1}
	dstA = [4]byte{198, 51, 100, 53}
	src6 = netip.MustParseAddr("2001:db8::1").As16()
	dst6 = netip.MustParseAddr("2001:db8::53").As16()
)

func seqBytes(n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(i*7 + 3)
	}
	return b
}

type pkt struct {
	ts int64
	b  []byte
	v6 bool
}

type result struct {
	payloads   [][]byte
	errs       []error
	incomplete []Incomplete
	stats      Stats
}

func feed(cfg Config, pkts []pkt, expireAt int64) result {
	var res result
	r := New(cfg, func(in Incomplete) {
		in.Prefix = bytes.Clone(in.Prefix)
		res.incomplete = append(res.incomplete, in)
	})
	for _, p := range pkts {
		var d Datagram
		var ok bool
		var err error
		if p.v6 {
			d, ok, err = r.AddIPv6(p.ts, p.b)
		} else {
			d, ok, err = r.AddIPv4(p.ts, p.b)
		}
		if err != nil {
			res.errs = append(res.errs, err)
		}
		if ok {
			res.payloads = append(res.payloads, bytes.Clone(d.Payload))
		}
	}
	if expireAt > 0 {
		r.Expire(expireAt)
	}
	res.stats = r.Stats()
	r.Flush()
	return res
}

func TestReassembly(t *testing.T) {
	data := seqBytes(100)
	sec := int64(time.Second)
	tests := []struct {
		name     string
		cfg      Config
		pkts     []pkt
		expireAt int64
		want     [][]byte // reassembled payloads
		wantErrs []error
		check    func(result) string
	}{
		{
			name: "not fragmented: passed through",
			pkts: []pkt{{ts: 1, b: v4(srcA, dstA, 1, 0, false, data)}},
			want: [][]byte{data},
		},
		{
			name: "Ethernet padding after the total length is ignored",
			pkts: []pkt{{ts: 1, b: append(v4(srcA, dstA, 1, 0, false, data[:10]), 0, 0, 0)}},
			want: [][]byte{data[:10]},
		},
		{
			name: "two fragments in order",
			pkts: []pkt{{ts: 1, b: v4(srcA, dstA, 7, 0, true, data[:48])}, {ts: 2, b: v4(srcA, dstA, 7, 48, false, data[48:])}},
			want: [][]byte{data},
		},
		{
			name: "three fragments, last first",
			pkts: []pkt{
				{ts: 1, b: v4(srcA, dstA, 7, 64, false, data[64:])},
				{ts: 2, b: v4(srcA, dstA, 7, 0, true, data[:32])},
				{ts: 3, b: v4(srcA, dstA, 7, 32, true, data[32:64])},
			},
			want: [][]byte{data},
		},
		{
			name: "same id from another source is another datagram",
			pkts: []pkt{
				{ts: 1, b: v4(srcA, dstA, 7, 0, true, data[:48])},
				{ts: 2, b: v4([4]byte{192, 0, 2, 2}, dstA, 7, 48, false, data[48:])},
			},
			check: func(r result) string {
				if r.stats.Held != 2 || len(r.incomplete) != 2 {
					return "want 2 datagrams held, both flushed incomplete"
				}
				return ""
			},
		},
		{
			name: "exact duplicate dropped",
			pkts: []pkt{
				{ts: 1, b: v4(srcA, dstA, 7, 0, true, data[:48])},
				{ts: 2, b: v4(srcA, dstA, 7, 0, true, data[:48])},
				{ts: 3, b: v4(srcA, dstA, 7, 48, false, data[48:])},
			},
			want: [][]byte{data},
			check: func(r result) string {
				if r.stats.Duplicates != 1 {
					return "want 1 duplicate"
				}
				return ""
			},
		},
		{
			name: "overlap abandons the datagram, and its later fragments are dropped",
			pkts: []pkt{
				{ts: 1, b: v4(srcA, dstA, 7, 0, true, data[:48])},
				{ts: 2, b: v4(srcA, dstA, 7, 40, true, data[40:56])},
				{ts: 3, b: v4(srcA, dstA, 7, 56, false, data[56:])},
			},
			wantErrs: []error{ErrOverlap, ErrAbandoned},
			check: func(r result) string {
				if r.stats.Overlaps != 1 || r.stats.DroppedFragments != 1 || len(r.incomplete) != 0 || r.stats.BytesHeld != 0 {
					return "want 1 overlap, 1 dropped fragment, nothing handed out, no bytes held"
				}
				return ""
			},
		},
		{
			// Fuzz crasher (FuzzIPv6Fragments/f30c221130fa8bf9): a final fragment that ends
			// (offset 24, 1 byte: total 25) before a fragment already held (offset 384, 24 bytes)
			// made received == total and "completed" a datagram that does not tile. It is
			// inconsistent, and the datagram is abandoned.
			name: "crasher: final fragment ends before a held fragment",
			pkts: []pkt{
				{ts: 1, b: v6(src6, dst6, 0, 384, true, bytes.Repeat([]byte("0"), 24)), v6: true},
				{ts: 2, b: v6(src6, dst6, 0, 24, false, []byte("0")), v6: true},
			},
			wantErrs: []error{ErrInconsistent},
		},
		{
			name: "IPv4 final fragment ends before a held fragment",
			pkts: []pkt{
				{ts: 1, b: v4(srcA, dstA, 0, 384, true, bytes.Repeat([]byte("0"), 24))},
				{ts: 2, b: v4(srcA, dstA, 0, 24, false, []byte("0"))},
			},
			wantErrs: []error{ErrInconsistent},
		},
		{
			name:     "non-final fragment not a multiple of 8",
			pkts:     []pkt{{ts: 1, b: v4(srcA, dstA, 7, 0, true, data[:50])}},
			wantErrs: []error{ErrBadFragment},
		},
		{
			name:     "fragment past 65535 bytes (ping of death)",
			pkts:     []pkt{{ts: 1, b: v4(srcA, dstA, 7, 65528, false, data[:16])}},
			wantErrs: []error{ErrTooLarge},
		},
		{
			name:     "fragment cut short by the capture",
			pkts:     []pkt{{ts: 1, b: v4(srcA, dstA, 7, 0, true, data[:48])[:40]}},
			wantErrs: []error{ErrTruncated},
		},
		{
			name:     "shorter than a header",
			pkts:     []pkt{{ts: 1, b: []byte{0x45, 0, 0}}},
			wantErrs: []error{ErrShort},
		},
		{
			name: "timeout hands out the first fragment's bytes",
			pkts: []pkt{
				{ts: 1, b: v4(srcA, dstA, 7, 0, true, data[:48])},
				{ts: 2, b: v4(srcA, dstA, 7, 64, false, data[64:])},
			},
			expireAt: 1 + 30*sec,
			check: func(r result) string {
				if len(r.incomplete) != 1 {
					return "want 1 incomplete"
				}
				in := r.incomplete[0]
				if in.Reason != EvictTimeout || !bytes.Equal(in.Prefix, data[:48]) || in.Fragments != 2 || in.Bytes != 48+36 ||
					in.Src != netip.AddrFrom4(srcA) || in.Proto != 17 || in.ID != 7 || in.FirstTS != 1 || in.LastTS != 2 {
					return "want the 48 bytes at offset 0 of datagram 7 from 192.0.2.1, evicted by timeout"
				}
				if r.stats.EvictedTimeout != 1 || r.stats.Held != 0 {
					return "want 1 timeout eviction, nothing held"
				}
				return ""
			},
		},
		{
			name: "MaxDatagrams evicts the oldest",
			cfg:  Config{MaxDatagrams: 2},
			pkts: []pkt{
				{ts: 1, b: v4(srcA, dstA, 1, 0, true, data[:8])},
				{ts: 2, b: v4(srcA, dstA, 2, 0, true, data[:8])},
				{ts: 3, b: v4(srcA, dstA, 3, 0, true, data[:8])},
				{ts: 4, b: v4(srcA, dstA, 3, 8, false, data[8:16])},
			},
			want: [][]byte{data[:16]},
			check: func(r result) string {
				if r.stats.EvictedCap != 1 || len(r.incomplete) < 1 || r.incomplete[0].ID != 1 || r.incomplete[0].Reason != EvictCap {
					return "want datagram 1 evicted for the cap"
				}
				return ""
			},
		},
		{
			name: "IPv6 fragments behind a Destination Options header",
			pkts: []pkt{
				{ts: 1, b: v6(src6, dst6, 0xdeadbeef, 48, false, data[48:]), v6: true},
				{ts: 2, b: v6(src6, dst6, 0xdeadbeef, 0, true, data[:48]), v6: true},
			},
			want: [][]byte{data},
		},
		{
			name: "IPv6 overlap abandons the datagram (RFC 5722)",
			pkts: []pkt{
				{ts: 1, b: v6(src6, dst6, 9, 0, true, data[:48]), v6: true},
				{ts: 2, b: v6(src6, dst6, 9, 8, false, data[8:]), v6: true},
				{ts: 3, b: v6(src6, dst6, 9, 48, false, data[48:]), v6: true},
			},
			wantErrs: []error{ErrOverlap, ErrAbandoned},
		},
		{
			name: "IPv6 atomic fragment (RFC 6946)",
			pkts: []pkt{{ts: 1, b: v6(src6, dst6, 9, 0, false, data), v6: true}},
			want: [][]byte{data},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := feed(tt.cfg, tt.pkts, tt.expireAt)
			if len(r.payloads) != len(tt.want) {
				t.Fatalf("got %d datagrams, want %d (errors %v)", len(r.payloads), len(tt.want), r.errs)
			}
			for i := range tt.want {
				if !bytes.Equal(r.payloads[i], tt.want[i]) {
					t.Errorf("datagram %d: got % x, want % x", i, r.payloads[i], tt.want[i])
				}
			}
			if len(r.errs) != len(tt.wantErrs) {
				t.Fatalf("got errors %v, want %v", r.errs, tt.wantErrs)
			}
			for i := range tt.wantErrs {
				if !errors.Is(r.errs[i], tt.wantErrs[i]) {
					t.Errorf("error %d: got %v, want %v", i, r.errs[i], tt.wantErrs[i])
				}
			}
			if tt.check != nil {
				if msg := tt.check(r); msg != "" {
					t.Errorf("%s; got stats %+v, incomplete %+v", msg, r.stats, r.incomplete)
				}
			}
		})
	}
}

// TestFragsPcap reassembles DNS-OARC frags.pcap (DLT_RAW IPv4, 495 packets): every one of the 41
// queries and 41 responses is IPv4-fragmented, so there must be exactly 82 UDP datagrams, 41 with
// QR=0 and 41 with QR=1, and nothing left over.
func TestFragsPcap(t *testing.T) {
	pkts := readPcap(t, "DNS-OARC_dnscap__frags.pcap")
	if len(pkts) != 495 {
		t.Fatalf("got %d packets, want 495", len(pkts))
	}
	r := New(Config{}, func(in Incomplete) { t.Errorf("incomplete datagram: %+v", in) })
	var queries, responses int
	for i, p := range pkts {
		d, ok, err := r.AddIPv4(p.ts, p.data)
		if err != nil {
			t.Fatalf("packet %d: %v", i, err)
		}
		if !ok {
			continue
		}
		if d.Proto != 17 || d.Fragments < 2 || len(d.Payload) < 8+12 {
			t.Fatalf("packet %d: got proto %d, %d fragments, %d bytes; want a fragmented UDP DNS datagram", i, d.Proto, d.Fragments, len(d.Payload))
		}
		if ulen := int(binary.BigEndian.Uint16(d.Payload[4:])); ulen != len(d.Payload) {
			t.Errorf("packet %d: got UDP length %d, reassembled %d", i, ulen, len(d.Payload))
		}
		if d.Payload[8+2]&0x80 == 0 {
			queries++
		} else {
			responses++
		}
	}
	r.Flush()
	st := r.Stats()
	if queries != 41 || responses != 41 || st.Reassembled != 82 {
		t.Errorf("got %d queries, %d responses, %d reassembled; want 41, 41, 82", queries, responses, st.Reassembled)
	}
	if st.Fragments != 495 || st.Held != 0 || st.BytesHeld != 0 {
		t.Errorf("got %d fragments, %d held, %d bytes held; want 495, 0, 0", st.Fragments, st.Held, st.BytesHeld)
	}
}

// TestBounds feeds 100,000 first fragments that never complete and checks after each one that
// the held state stays within the caps.
func TestBounds(t *testing.T) {
	cfg := Config{MaxDatagrams: 1000, MaxBytes: 256 << 10}
	var evicted int
	r := New(cfg, func(Incomplete) { evicted++ })
	payload := seqBytes(1472)
	p := v4(srcA, dstA, 0, 0, true, payload)
	for i := range 100_000 {
		binary.BigEndian.PutUint16(p[4:], uint16(i))
		p[12] = byte(i >> 16)
		if _, _, err := r.AddIPv4(int64(i), p); err != nil {
			t.Fatal(err)
		}
		if st := r.Stats(); st.Held > cfg.MaxDatagrams || st.BytesHeld > cfg.MaxBytes {
			t.Fatalf("after fragment %d: got %d held, %d bytes, want at most %d, %d", i, st.Held, st.BytesHeld, cfg.MaxDatagrams, cfg.MaxBytes)
		}
	}
	st := r.Stats()
	if uint64(evicted) != st.EvictedCap || int(st.EvictedCap)+st.Held != 100_000 {
		t.Errorf("got %d handed out, %d evicted, %d held; want evicted + held = 100000", evicted, st.EvictedCap, st.Held)
	}
}

type pcapPacket struct {
	ts   int64
	data []byte
}

// readPcap reads a capture from testdata with the project's reader.
func readPcap(t testing.TB, name string) []pcapPacket {
	t.Helper()
	r, err := pcapread.Open(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	var out []pcapPacket
	var p pcapread.Packet
	for {
		err := r.Next(&p)
		if err == io.EOF {
			return out
		}
		if err != nil {
			t.Fatalf("capture %q: %v", name, err)
		}
		out = append(out, pcapPacket{ts: p.TS, data: append([]byte(nil), p.Data...)})
	}
}
