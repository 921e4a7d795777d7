package tcpdns

import (
	"bytes"
	"encoding/binary"
	"net/netip"
	"strings"
	"testing"
	"time"
)

var (
	client = netip.MustParseAddrPort("192.0.2.1:40000")
	server = netip.MustParseAddrPort("198.51.100.53:53")
	up     = FlowKey{Src: client, Dst: server}
	down   = FlowKey{Src: server, Dst: client}
)

// query builds a DNS query for name, type A class IN, with the given id and RD set: a 12-byte
// header and a question, written out by hand.
func query(id uint16, name string) []byte {
	b := []byte{byte(id >> 8), byte(id), 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0}
	for _, l := range strings.Split(name, ".") {
		b = append(b, byte(len(l)))
		b = append(b, l...)
	}
	return append(b, 0, 0, 1, 0, 1)
}

// response builds the answer to query(id, name): QR RD RA, one A record 192.0.2.53 via a
// compression pointer to the question name.
func response(id uint16, name string) []byte {
	b := query(id, name)
	b[2], b[3] = 0x81, 0x80
	b[7] = 1
	return append(b, 0xc0, 12, 0, 1, 0, 1, 0, 0, 0, 60, 0, 4, 192, 0, 2, 53)
}

// framed prefixes each message with its 2-byte length and concatenates them.
func framed(msgs ...[]byte) []byte {
	var b []byte
	for _, m := range msgs {
		b = binary.BigEndian.AppendUint16(b, uint16(len(m)))
		b = append(b, m...)
	}
	return b
}

type step struct {
	ts    int64
	key   FlowKey
	seq   uint32
	ack   uint32
	flags uint8
	data  []byte
}

const (
	cisn = 1000   // client initial sequence number
	sisn = 500000 // server initial sequence number
)

// handshake is a SYN, SYN-ACK, ACK at ts 1-3.
var handshake = []step{
	{ts: 1, key: up, seq: cisn, flags: FlagSYN},
	{ts: 2, key: down, seq: sisn, ack: cisn + 1, flags: FlagSYN | FlagACK},
	{ts: 3, key: up, seq: cisn + 1, ack: sisn + 1, flags: FlagACK},
}

func feed(cfg Config, steps []step, expireAt int64) ([]emitted, Stats) {
	tab := New(cfg)
	var out []emitted
	emit := func(k FlowKey, msg []byte, info MsgInfo) {
		out = append(out, emitted{key: k, msg: append([]byte(nil), msg...), info: info})
	}
	for _, s := range steps {
		// The tag is 1000 + the step's timestamp, so that a message's Tag must follow its TS.
		tab.Add(s.ts, s.key, Segment{Seq: s.seq, Ack: s.ack, Flags: s.flags, Payload: s.data, Tag: uint32(1000 + s.ts)}, emit)
	}
	if expireAt > 0 {
		tab.Expire(expireAt, emit)
	}
	tab.Flush(emit)
	return out, tab.Stats()
}

type want struct {
	id         uint16
	size       int
	ts         int64
	segments   int
	gap        bool
	noPrefix   bool
	incomplete bool
}

func TestStreams(t *testing.T) {
	q1, q2, q3 := query(1, "www.example.com"), query(2, "example.org"), query(3, "a.b.c.example.net")
	r1 := response(1, "www.example.com")
	big := response(7, strings.Repeat("x", 60)+".example")
	three := framed(q1, q2, q3)
	f1 := framed(q1)
	c := uint32(cisn + 1)
	s := uint32(sisn + 1)
	tests := []struct {
		name      string
		cfg       Config
		steps     []step
		expireAt  int64
		want      []want
		wantStats func(Stats) string // "" when fine
	}{
		{
			name:  "three messages in one segment",
			steps: append(handshake[:3:3], step{ts: 10, key: up, seq: c, flags: FlagACK, data: three}),
			want: []want{
				{id: 1, size: len(q1), ts: 10, segments: 1},
				{id: 2, size: len(q2), ts: 10, segments: 1},
				{id: 3, size: len(q3), ts: 10, segments: 1},
			},
		},
		{
			name: "one message over three segments",
			steps: append(handshake[:3:3],
				step{ts: 10, key: up, seq: c, data: f1[:5]},
				step{ts: 11, key: up, seq: c + 5, data: f1[5:9]},
				step{ts: 12, key: up, seq: c + 9, data: f1[9:]},
			),
			want: []want{{id: 1, size: len(q1), ts: 10, segments: 3}},
		},
		{
			name: "prefix alone, then the message and the start of the next",
			steps: append(handshake[:3:3],
				step{ts: 10, key: up, seq: c, data: three[:2]},
				step{ts: 11, key: up, seq: c + 2, data: three[2 : 2+len(q1)+1]},
				step{ts: 12, key: up, seq: c + 2 + uint32(len(q1)) + 1, data: three[2+len(q1)+1:]},
			),
			want: []want{
				{id: 1, size: len(q1), ts: 10, segments: 2},
				{id: 2, size: len(q2), ts: 11, segments: 2},
				{id: 3, size: len(q3), ts: 12, segments: 1},
			},
		},
		{
			name: "retransmitted segment and a retransmission overlapping new bytes",
			steps: append(handshake[:3:3],
				step{ts: 10, key: up, seq: c, data: three[:20]},
				step{ts: 11, key: up, seq: c, data: three[:20]},
				step{ts: 12, key: up, seq: c + 10, data: three[10:]},
			),
			want: []want{
				{id: 1, size: len(q1), ts: 10, segments: 2},
				{id: 2, size: len(q2), ts: 12, segments: 1},
				{id: 3, size: len(q3), ts: 12, segments: 1},
			},
			wantStats: func(st Stats) string {
				if st.Retransmits != 1 || st.Gaps != 0 {
					return "want 1 retransmit, 0 gaps"
				}
				return ""
			},
		},
		{
			name: "out of order: second half first",
			steps: append(handshake[:3:3],
				step{ts: 10, key: up, seq: c + 20, data: three[20:]},
				step{ts: 11, key: up, seq: c, data: three[:20]},
			),
			want: []want{
				{id: 1, size: len(q1), ts: 11, segments: 2},
				{id: 2, size: len(q2), ts: 10, segments: 1},
				{id: 3, size: len(q3), ts: 10, segments: 1},
			},
			wantStats: func(st Stats) string {
				if st.Gaps != 0 || st.LostBytes != 0 {
					return "want no gap"
				}
				return ""
			},
		},
		{
			name: "mid-connection start at a message boundary",
			steps: []step{
				{ts: 10, key: up, seq: 777, flags: FlagACK, data: framed(q1, q2)},
				{ts: 11, key: down, seq: 9000, flags: FlagACK, data: framed(r1)},
			},
			want: []want{
				{id: 1, size: len(q1), ts: 10, segments: 1},
				{id: 2, size: len(q2), ts: 10, segments: 1},
				{id: 1, size: len(r1), ts: 11, segments: 1},
			},
			wantStats: func(st Stats) string {
				if st.Resyncs != 2 || st.BytesDropped != 0 {
					return "want 2 resyncs, 0 bytes dropped"
				}
				return ""
			},
		},
		{
			name: "mid-connection start inside a message: its tail is skipped",
			steps: []step{
				{ts: 10, key: up, seq: 777, flags: FlagACK, data: append(append([]byte(nil), f1[7:]...), framed(q2, q3)...)},
			},
			want: []want{
				{id: 2, size: len(q2), ts: 10, segments: 1, gap: true},
				{id: 3, size: len(q3), ts: 10, segments: 1},
			},
			wantStats: func(st Stats) string {
				if st.BytesDropped != uint64(len(f1)-7) {
					return "want the tail of the first message dropped"
				}
				return ""
			},
		},
		{
			name: "mid-connection start after a lost prefix: framed by walking the message",
			steps: []step{
				{ts: 10, key: up, seq: 777, flags: FlagACK, data: q1},
				{ts: 11, key: up, seq: 777 + uint32(len(q1)), flags: FlagACK, data: framed(q2)},
			},
			want: []want{
				{id: 1, size: len(q1), ts: 10, segments: 1, noPrefix: true},
				{id: 2, size: len(q2), ts: 11, segments: 1},
			},
		},
		{
			name: "hole inside a message, found by the ACK: message incomplete, framing kept",
			steps: append(handshake[:3:3],
				step{ts: 10, key: up, seq: c, data: three[:20]},
				// bytes 20-29 never captured
				step{ts: 12, key: up, seq: c + 30, data: three[30:]},
				step{ts: 13, key: down, seq: s, ack: c + uint32(len(three)), flags: FlagACK},
			),
			want: []want{
				{id: 1, size: 18, ts: 10, segments: 1, incomplete: true},
				{id: 2, size: len(q2), ts: 12, segments: 1},
				{id: 3, size: len(q3), ts: 12, segments: 1},
			},
			wantStats: func(st Stats) string {
				if st.Gaps != 1 || st.LostBytes != 10 || st.Resyncs != 0 {
					return "want 1 gap of 10 bytes and no resync"
				}
				return ""
			},
		},
		{
			name: "hole over a whole message, found by the reorder timeout: resync",
			steps: append(handshake[:3:3],
				step{ts: 10, key: up, seq: c, data: framed(q1)},
				// query 2 never captured
				step{ts: 12, key: up, seq: c + uint32(len(framed(q1, q2))), data: framed(q3)},
			),
			expireAt: 12 + int64(DefaultReorderTimeout),
			want: []want{
				{id: 1, size: len(q1), ts: 10, segments: 1},
				{id: 3, size: len(q3), ts: 12, segments: 1, gap: true},
			},
			wantStats: func(st Stats) string {
				if st.Gaps != 1 || st.LostBytes != uint64(2+len(q2)) || st.Resyncs != 1 {
					return "want 1 gap of query 2 and 1 resync"
				}
				return ""
			},
		},
		{
			name: "FIN both ways closes the connection",
			steps: append(handshake[:3:3],
				step{ts: 10, key: up, seq: c, flags: FlagACK, data: f1},
				step{ts: 11, key: down, seq: s, ack: c + uint32(len(f1)), flags: FlagACK, data: framed(r1)},
				step{ts: 12, key: up, seq: c + uint32(len(f1)), ack: s + uint32(2+len(r1)), flags: FlagFIN | FlagACK},
				step{ts: 13, key: down, seq: s + uint32(2+len(r1)), ack: c + uint32(len(f1)) + 1, flags: FlagFIN | FlagACK},
			),
			want: []want{
				{id: 1, size: len(q1), ts: 10, segments: 1},
				{id: 1, size: len(r1), ts: 11, segments: 1},
			},
			wantStats: func(st Stats) string {
				if st.FlowsClosed != 1 || st.FlowsExpired != 0 || st.Gaps != 0 {
					return "want closed by FIN, no gap"
				}
				return ""
			},
		},
		{
			name: "RST in the middle of a message: emitted incomplete",
			steps: append(handshake[:3:3],
				step{ts: 10, key: up, seq: c, data: f1[:20]},
				step{ts: 11, key: down, seq: s, flags: FlagRST},
			),
			want: []want{{id: 1, size: 18, ts: 10, segments: 1, incomplete: true}},
			wantStats: func(st Stats) string {
				if st.FlowsClosed != 1 || st.Flows != 0 {
					return "want closed by RST"
				}
				return ""
			},
		},
		{
			name: "a new SYN on the same ports starts a new stream",
			steps: append(handshake[:3:3],
				step{ts: 10, key: up, seq: c, data: f1[:10]},
				step{ts: 20, key: up, seq: 90000, flags: FlagSYN},
				step{ts: 21, key: up, seq: 90001, data: framed(q2)},
			),
			want: []want{{id: 2, size: len(q2), ts: 21, segments: 1}},
			wantStats: func(st Stats) string {
				if st.BytesDropped != 10 {
					return "want the 10 bytes of the abandoned message dropped"
				}
				return ""
			},
		},
		{
			name: "message longer than MaxBytesPerFlow: incomplete, then framing goes on",
			cfg:  Config{MaxBytesPerFlow: 40},
			steps: append(handshake[:3:3],
				step{ts: 10, key: down, seq: sisn, flags: FlagSYN},
				step{ts: 11, key: down, seq: s, data: framed(big)[:30]},
				step{ts: 12, key: down, seq: s + 30, data: framed(big)[30:60]},
				step{ts: 12, key: down, seq: s + 60, data: framed(big)[60:]},
				step{ts: 13, key: down, seq: s + uint32(2+len(big)), data: framed(r1)},
			),
			want: []want{
				{id: 7, size: 38, ts: 11, segments: 2, incomplete: true},
				{id: 1, size: len(r1), ts: 13, segments: 1},
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ms, st := feed(tt.cfg, tt.steps, tt.expireAt)
			if len(ms) != len(tt.want) {
				t.Fatalf("got %d messages, want %d: %v", len(ms), len(tt.want), ms)
			}
			for i, m := range ms {
				got := want{id: m.id(), size: len(m.msg), ts: m.info.TS, segments: m.info.Segments,
					gap: m.info.Gap, noPrefix: m.info.NoPrefix, incomplete: m.info.Incomplete}
				if got != tt.want[i] {
					t.Errorf("message %d: got %+v, want %+v", i, got, tt.want[i])
				}
				if wantTag := uint32(1000 + m.info.TS); m.info.Tag != wantTag {
					t.Errorf("message %d: got Tag %d, want %d (that of the segment with its first byte)", i, m.info.Tag, wantTag)
				}
			}
			if tt.wantStats != nil {
				if msg := tt.wantStats(st); msg != "" {
					t.Errorf("stats %+v: %s", st, msg)
				}
			}
			if st.Flows != 0 || st.BytesHeld != 0 {
				t.Errorf("after Flush: got %d flows, %d bytes held, want 0, 0", st.Flows, st.BytesHeld)
			}
		})
	}
}

func TestPlausibleFramed(t *testing.T) {
	q := query(0x1234, "example.com")
	tests := []struct {
		name string
		b    []byte
		want verdict
	}{
		{"query", framed(q), yes},
		{"response", framed(response(1, "example.com")), yes},
		{"prefix and header only", framed(q)[:14], more},
		{"short length", []byte{0, 16}, no},
		{"prefix misread from a bare query (flags 0x0001: a query with rcode 1)", q, no},
		{"two questions", func() []byte { b := framed(q); b[2+5] = 2; return b }(), no},
		{"opcode 3", func() []byte { b := framed(q); b[2+2] |= 3 << 3; return b }(), no},
		{"Z bit", func() []byte { b := framed(q); b[2+3] |= 0x40; return b }(), no},
		{"rcode 12", func() []byte { b := framed(response(1, "example.com")); b[2+3] |= 12; return b }(), no},
		{"counts too big for the length", func() []byte { b := framed(q); b[2+11] = 9; return b }(), no},
		{"pointer in the question", framed([]byte{0, 1, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0xc0, 12, 0, 1, 0, 1}), no},
		{"qclass 2", func() []byte { b := framed(q); b[len(b)-1] = 2; return b }(), no},
		{"qtype 0", func() []byte { b := framed(q); b[len(b)-3] = 0; return b }(), no},
		{"name past the length", func() []byte { b := framed(q); b[1] = 17; return b }(), no},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := plausibleFramed(tt.b); got != tt.want {
				t.Errorf("got %d, want %d", got, tt.want)
			}
		})
	}
}

func TestWalkMessage(t *testing.T) {
	r := response(9, "www.example.com")
	tests := []struct {
		name  string
		b     []byte
		wantN int
		want  verdict
	}{
		{"query", query(1, "example.com"), 12 + 13 + 4, yes},
		{"response with a compressed answer", r, len(r), yes},
		{"response followed by more bytes", append(append([]byte(nil), r...), 0, 20), len(r), yes},
		{"response cut short", r[:len(r)-3], 0, more},
		{"forward pointer", func() []byte { b := bytes.Clone(r); b[len(r)-16+1] = 200; return b }(), 0, no},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			n, v := walkMessage(tt.b)
			if n != tt.wantN || v != tt.want {
				t.Errorf("got (%d, %d), want (%d, %d)", n, v, tt.wantN, tt.want)
			}
		})
	}
}

// TestBounds feeds 100,000 half-open connections, each a SYN and part of a message, and checks
// after every segment that the Table holds no more than its caps.
func TestBounds(t *testing.T) {
	cfg := Config{MaxFlows: 5000, MaxBytesTotal: 256 << 10, MaxBytesPerFlow: 70000, IdleTimeout: time.Second}
	tab := New(cfg)
	partial := framed(query(1, "half.open.example"))[:20]
	for i := range 100_000 {
		k := FlowKey{
			Src: netip.AddrPortFrom(netip.AddrFrom4([4]byte{10, byte(i >> 16), byte(i >> 8), byte(i)}), uint16(1024+i%60000)),
			Dst: server,
		}
		ts := int64(i) * int64(time.Microsecond)
		tab.Add(ts, k, Segment{Seq: 1, Flags: FlagSYN}, nil)
		tab.Add(ts, k, Segment{Seq: 2, Flags: FlagACK, Payload: partial}, nil)
		if st := tab.Stats(); st.Flows > cfg.MaxFlows || st.BytesHeld > cfg.MaxBytesTotal {
			t.Fatalf("after flow %d: got %d flows, %d bytes held, want at most %d, %d", i, st.Flows, st.BytesHeld, cfg.MaxFlows, cfg.MaxBytesTotal)
		}
	}
	st := tab.Stats()
	if st.PeakFlows > cfg.MaxFlows || st.PeakBytesHeld > cfg.MaxBytesTotal {
		t.Errorf("got peaks %d flows, %d bytes, want at most %d, %d", st.PeakFlows, st.PeakBytesHeld, cfg.MaxFlows, cfg.MaxBytesTotal)
	}
	if st.FlowsEvicted+st.FlowsExpired+uint64(st.Flows) != 100_000 {
		t.Errorf("got %d evicted + %d expired + %d held, want 100000 in all", st.FlowsEvicted, st.FlowsExpired, st.Flows)
	}
}
