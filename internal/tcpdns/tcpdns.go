// Package tcpdns reassembles DNS messages from captured TCP segments (DNS over TCP, RFC 7766:
// each message preceded by a 2-byte length), per connection and direction, with bounded state.
//
// A Table follows each direction of each connection by sequence number. It frames messages out
// of the in-order byte stream however the sender cut it: several messages in one segment, one
// message over several segments, the length prefix alone in its own segment. Retransmitted bytes
// are dropped (the first copy wins), segments that arrive ahead of a hole are held (a bounded
// amount) until the hole fills.
//
// A hole that will not fill is a gap. It is declared when the other direction acknowledges bytes
// the capture never saw (the receiver got them, so they will not be sent again), when the bytes
// held after it exceed Config.MaxBytesPerFlow, when Config.ReorderTimeout of capture time passes,
// or when the connection closes or is evicted. The lost bytes are counted. If the hole falls
// inside a message whose length is known, that message is emitted as Incomplete and framing
// continues after it; if a length prefix was lost, framing is lost and the stream resynchronises
// (see below). A capture that starts mid-connection (no SYN) is resynchronised the same way.
//
// # Resynchronisation
//
// Where framing is lost, the Table looks, from the first byte after the loss onward, for the
// first offset at which a plausible length prefix is followed by a plausible DNS message
// (plausibleFramed): a length of at least 17, a header with QDCOUNT 1, an assigned OPCODE (0-2,
// 4-6), the Z bit clear, an assigned RCODE (0-11, and 0 in a query), section counts that fit the
// length (12 + 5 + 11 per record), and a question whose name is plain labels (1-63 bytes, at most
// 255 in all, no compression pointer) ending within the length, with a QTYPE other than 0 and a
// QCLASS of IN, CH, HS, NONE or ANY. The bytes skipped to get there are counted as dropped.
// Before that scan, at the very first byte after the loss, it also tries a message whose prefix
// was lost: if the bytes there walk as a whole DNS message (header as above, then the question and
// every record by their lengths) that ends exactly at the end of the bytes captured so far or
// where a plausible prefixed message begins, that message is emitted with NoPrefix set.
//
// Bounds: at most Config.MaxFlows connections, Config.MaxBytesPerFlow bytes held per direction
// and Config.MaxBytesTotal in all (buffer capacity). A connection is dropped when both directions
// have closed (FIN) or on RST, when idle for Config.IdleTimeout of capture time, or, least
// recently active first, when a cap is reached. What it held is framed as far as it can be and
// emitted (a message cut short as Incomplete) before it goes; every eviction is counted.
//
// A Table is not safe for concurrent use. The message bytes handed to an Emit function are valid
// only during that call, and the function must not call back into the Table.
package tcpdns

import (
	"encoding/binary"
	"net/netip"
	"time"
)

// Defaults used for zero Config fields.
const (
	DefaultMaxFlows        = 65536
	DefaultMaxBytesPerFlow = 2 + 65535 + 64<<10 // one largest message and 64 KiB ahead of a hole
	DefaultMaxBytesTotal   = 64 << 20
	DefaultIdleTimeout     = 60 * time.Second
	DefaultReorderTimeout  = 3 * time.Second
)

// TCP flag bits, as in the TCP header's flags byte.
const (
	FlagFIN uint8 = 0x01
	FlagSYN uint8 = 0x02
	FlagRST uint8 = 0x04
	FlagACK uint8 = 0x10
)

// Config bounds a Table. Zero fields take the Default* values.
type Config struct {
	MaxFlows        int           // connections held (each has two directions)
	MaxBytesPerFlow int           // bytes held for one direction: a partial message and segments ahead of a hole
	MaxBytesTotal   int           // bytes held by all connections
	IdleTimeout     time.Duration // capture time without a segment after which a connection is dropped
	ReorderTimeout  time.Duration // capture time a hole may stay open before it is declared a gap
}

func (c Config) withDefaults() Config {
	if c.MaxFlows <= 0 {
		c.MaxFlows = DefaultMaxFlows
	}
	if c.MaxBytesPerFlow <= 0 {
		c.MaxBytesPerFlow = DefaultMaxBytesPerFlow
	}
	if c.MaxBytesTotal <= 0 {
		c.MaxBytesTotal = DefaultMaxBytesTotal
	}
	if c.IdleTimeout <= 0 {
		c.IdleTimeout = DefaultIdleTimeout
	}
	if c.ReorderTimeout <= 0 {
		c.ReorderTimeout = DefaultReorderTimeout
	}
	return c
}

// FlowKey is one direction of a TCP connection.
type FlowKey struct {
	Src, Dst netip.AddrPort
}

// Segment is what the Table needs of one TCP segment.
type Segment struct {
	Seq, Ack uint32
	Flags    uint8  // FlagSYN, FlagFIN, FlagRST, FlagACK bits
	Payload  []byte // TCP payload; copied if the Table must keep it
	Tag      uint32 // the caller's own value (e.g. interface and direction), handed back in MsgInfo
}

// MsgInfo describes one emitted message.
type MsgInfo struct {
	TS         int64  // timestamp of the segment that carried the message's first byte
	Tag        uint32 // Segment.Tag of that segment
	Segments   int    // segments the message spanned; more than 1 means TCP reassembly
	Gap        bool   // bytes of this direction were lost (or skipped to resynchronise) between the previous message emitted and this one
	NoPrefix   bool   // its length prefix was not captured; it was framed by walking its records
	Incomplete bool   // some of its bytes never arrived: the message holds those that came before the loss
	Length     int    // length from its prefix (equals len(msg) unless Incomplete)
}

// Emit receives each message framed from a direction's stream: the DNS message without its
// length prefix. msg is valid only during the call.
type Emit func(key FlowKey, msg []byte, info MsgInfo)

// Stats are a Table's counters. Flows and BytesHeld are current values, the Peak fields their
// maximum so far; the rest count since New.
type Stats struct {
	Segments      uint64 // segments given to Add
	Messages      uint64 // messages emitted, Incomplete ones included
	Reassembled   uint64 // messages that spanned several segments
	Incomplete    uint64 // messages emitted with Incomplete set
	NoPrefix      uint64 // messages emitted with NoPrefix set
	Gaps          uint64 // holes declared lost
	LostBytes     uint64 // sequence space in those holes: bytes the capture never saw
	BytesDropped  uint64 // captured bytes not emitted: skipped to resynchronise, parts of messages too short to carry a header, tails of messages already emitted Incomplete
	Resyncs       uint64 // times framing was found again after a loss or a mid-connection start
	Retransmits   uint64 // segments whose bytes had all been seen already
	FlowsEvicted  uint64 // connections dropped to stay within MaxFlows / MaxBytesTotal
	FlowsExpired  uint64 // connections dropped after IdleTimeout
	FlowsClosed   uint64 // connections finished by FIN both ways or RST
	Flows         int    // connections held now
	BytesHeld     int    // bytes held now
	PeakFlows     int
	PeakBytesHeld int
}

type connKey struct{ a, b netip.AddrPort } // a sorts before b

// stamp is what a message takes from the segment that carried its first byte.
type stamp struct {
	ts  int64
	tag uint32
}

type oseg struct {
	seq  uint32
	at   stamp
	data []byte
}

// half is one direction of a connection.
type half struct {
	active      bool   // next is known
	isn         uint32 // sequence number of the SYN, when seen
	sawSYN      bool
	next        uint32 // next sequence number expected
	synced      bool   // buf starts at a message boundary
	tryNoPrefix bool   // the unsynced bytes start right after a loss: try a prefixless message there
	gapPending  bool   // bytes were lost before the next message
	buf         []byte // in-order bytes not yet framed
	bufAt       stamp  // the segment that carried buf[0]
	bufSegs     int    // segments that contributed to buf
	skip        int    // bytes of a message already emitted Incomplete still to discard
	ooo         []oseg // segments ahead of next, sorted by seq
	oooBytes    int
	oooSince    int64 // timestamp when the oldest hole was first seen
	fin         bool
	finSeq      uint32
	closed      bool
}

type conn struct {
	k          connKey
	prev, next *conn // activity list, least recent first
	lastTS     int64
	h          [2]half
	held       int // bytes charged to Stats.BytesHeld
}

// Table reassembles DNS messages from TCP segments. Create it with New.
type Table struct {
	cfg           Config
	idle, reorder int64
	conns         map[connKey]*conn
	head, tail    *conn
	waiting       map[*conn]struct{} // connections with segments held ahead of a hole
	stats         Stats
}

// New returns a Table bounded by cfg.
func New(cfg Config) *Table {
	cfg = cfg.withDefaults()
	return &Table{
		cfg:     cfg,
		idle:    int64(cfg.IdleTimeout),
		reorder: int64(cfg.ReorderTimeout),
		conns:   make(map[connKey]*conn),
		waiting: make(map[*conn]struct{}),
	}
}

// Stats returns the counters.
func (t *Table) Stats() Stats { return t.stats }

func seqLT(a, b uint32) bool { return int32(a-b) < 0 }

func keyOf(k FlowKey) (connKey, int) {
	if k.Src.Compare(k.Dst) <= 0 {
		return connKey{k.Src, k.Dst}, 0
	}
	return connKey{k.Dst, k.Src}, 1
}

func (c *conn) flow(d int) FlowKey {
	if d == 0 {
		return FlowKey{Src: c.k.a, Dst: c.k.b}
	}
	return FlowKey{Src: c.k.b, Dst: c.k.a}
}

// Add takes one captured TCP segment of the direction key, seen at ts (nanoseconds, capture
// time), and emits every message it completes, in this direction or, when its acknowledgement
// reveals lost bytes, in the other. It also expires idle connections.
func (t *Table) Add(ts int64, key FlowKey, seg Segment, emit Emit) {
	t.stats.Segments++
	t.expireIdle(ts, emit)
	ck, d := keyOf(key)
	c := t.conns[ck]
	if c == nil {
		if seg.Flags&FlagRST != 0 || (seg.Flags&FlagSYN == 0 && len(seg.Payload) == 0) {
			return // nothing to frame, and no state spent on it
		}
		for len(t.conns) >= t.cfg.MaxFlows {
			t.stats.FlowsEvicted++
			t.drop(t.head, emit)
		}
		c = &conn{k: ck}
		t.conns[ck] = c
		t.stats.Flows = len(t.conns)
		t.stats.PeakFlows = max(t.stats.PeakFlows, t.stats.Flows)
	} else {
		t.unlink(c)
	}
	t.link(c)
	c.lastTS = ts
	h := &c.h[d]

	if seg.Flags&FlagRST != 0 {
		t.stats.FlowsClosed++
		t.drop(c, emit)
		return
	}
	if seg.Flags&FlagSYN != 0 {
		if h.active && !(h.sawSYN && seg.Seq == h.isn) {
			// A new connection on the same ports: finish the old one first.
			t.finish(c, 0, emit)
			t.finish(c, 1, emit)
			c.h = [2]half{}
		}
		if !h.active {
			*h = half{active: true, next: seg.Seq + 1, synced: true, isn: seg.Seq, sawSYN: true}
		}
		seg.Seq++ // data on a SYN (TCP Fast Open) follows it
	} else if !h.active && len(seg.Payload) > 0 {
		// Mid-connection start: framing unknown.
		*h = half{active: true, next: seg.Seq, tryNoPrefix: true}
	}
	if h.active && len(seg.Payload) > 0 {
		t.push(c, d, stamp{ts, seg.Tag}, seg.Seq, seg.Payload, emit)
	}
	if h.active && seg.Flags&FlagFIN != 0 {
		h.fin = true
		h.finSeq = seg.Seq + uint32(len(seg.Payload))
	}
	if seg.Flags&FlagACK != 0 {
		t.acked(c, 1-d, ts, seg.Ack, emit)
	}
	if len(c.h[d].ooo) > 0 && ts-c.h[d].oooSince >= t.reorder {
		t.gapAhead(c, d, emit)
	}
	for i := range 2 {
		if hh := &c.h[i]; hh.fin && !hh.closed && !seqLT(hh.next, hh.finSeq) {
			hh.closed = true
		}
	}
	if c.h[0].closed && c.h[1].closed {
		t.stats.FlowsClosed++
		t.drop(c, emit)
		return
	}
	t.charge(c)
	for t.stats.BytesHeld > t.cfg.MaxBytesTotal && t.head != nil {
		t.stats.FlowsEvicted++
		t.drop(t.head, emit)
	}
}

// push files payload at seq in direction d.
func (t *Table) push(c *conn, d int, at stamp, seq uint32, payload []byte, emit Emit) {
	h := &c.h[d]
	if diff := int32(seq - h.next); diff < 0 {
		if int(-diff) >= len(payload) || diff < -(1<<30) {
			t.stats.Retransmits++
			return
		}
		payload = payload[-diff:]
		seq = h.next
	}
	if seq == h.next {
		t.deliver(c, d, at, payload, emit)
		t.drainAhead(c, d, emit)
		return
	}
	// Ahead of a hole.
	ahead := int(seq - h.next)
	if ahead > t.cfg.MaxBytesPerFlow || ahead < 0 {
		// The hole alone is more than could ever be held: it will not fill in time.
		t.gapTo(c, d, seq, emit)
		t.deliver(c, d, at, payload, emit)
		t.drainAhead(c, d, emit)
		return
	}
	i := len(h.ooo)
	for i > 0 && !seqLT(h.ooo[i-1].seq, seq) {
		if h.ooo[i-1].seq == seq && len(h.ooo[i-1].data) >= len(payload) {
			t.stats.Retransmits++
			return
		}
		i--
	}
	if len(h.ooo) == 0 {
		h.oooSince = at.ts
		t.waiting[c] = struct{}{}
	}
	h.ooo = append(h.ooo, oseg{})
	copy(h.ooo[i+1:], h.ooo[i:])
	h.ooo[i] = oseg{seq: seq, at: at, data: append([]byte(nil), payload...)}
	h.oooBytes += len(payload)
	for len(h.ooo) > 0 && len(h.buf)+h.oooBytes > t.cfg.MaxBytesPerFlow {
		t.gapAhead(c, d, emit)
	}
}

// drainAhead delivers held segments that the stream has reached.
func (t *Table) drainAhead(c *conn, d int, emit Emit) {
	h := &c.h[d]
	for len(h.ooo) > 0 && !seqLT(h.next, h.ooo[0].seq) {
		s := h.ooo[0]
		h.ooo[0] = oseg{}
		h.ooo = h.ooo[1:]
		h.oooBytes -= len(s.data)
		if skip := int(h.next - s.seq); skip < len(s.data) {
			t.deliver(c, d, s.at, s.data[skip:], emit)
		} else {
			t.stats.Retransmits++
		}
		if len(h.ooo) > 0 {
			h.oooSince = h.ooo[0].at.ts
		}
	}
	if len(h.ooo) == 0 {
		h.ooo = nil
		h.oooBytes = 0
		if len(c.h[1-d].ooo) == 0 {
			delete(t.waiting, c)
		}
	}
}

// gapAhead declares the hole before the first held segment lost and delivers what follows it.
func (t *Table) gapAhead(c *conn, d int, emit Emit) {
	h := &c.h[d]
	if len(h.ooo) == 0 {
		return
	}
	t.gapTo(c, d, h.ooo[0].seq, emit)
	t.drainAhead(c, d, emit)
}

// acked handles an acknowledgement for direction d: bytes it acknowledges that the capture did
// not see are lost to the capture.
func (t *Table) acked(c *conn, d int, ts int64, ack uint32, emit Emit) {
	h := &c.h[d]
	if h.fin && seqLT(h.finSeq, ack) {
		ack = h.finSeq // the FIN takes a sequence number but carries no byte
	}
	if !h.active || !seqLT(h.next, ack) || int32(ack-h.next) > 1<<30 {
		return
	}
	for seqLT(h.next, ack) {
		from := h.next
		end := ack
		if len(h.ooo) > 0 && seqLT(h.ooo[0].seq, end) {
			end = h.ooo[0].seq
		}
		t.gapTo(c, d, end, emit)
		t.drainAhead(c, d, emit)
		if end == ack || h.next == from {
			break
		}
	}
}

// gapTo declares the bytes from h.next up to seq lost, ending or cutting short whatever message
// was in progress, and moves h.next to seq.
func (t *Table) gapTo(c *conn, d int, seq uint32, emit Emit) {
	h := &c.h[d]
	lost := int(seq - h.next)
	if lost <= 0 {
		return
	}
	t.stats.Gaps++
	t.stats.LostBytes += uint64(lost)
	h.next = seq
	// A loss that lies wholly inside one message (emitted Incomplete) keeps the framing, and the
	// next message has no Gap: nothing but that message's bytes went missing.
	if h.skip > 0 {
		if lost <= h.skip {
			h.skip -= lost // the loss is inside a message already emitted Incomplete
			return
		}
		h.skip = 0
		t.unsync(h)
		return
	}
	if h.synced && len(h.buf) >= 2 {
		want := 2 + int(binary.BigEndian.Uint16(h.buf))
		remain := want - len(h.buf)
		t.emitPartial(c, d, emit)
		switch {
		case lost < remain: // the message goes on after the hole: framing is kept
			h.skip = remain - lost
		case lost == remain: // the hole ends where the next message starts
		default:
			t.unsync(h)
		}
		return
	}
	t.stats.BytesDropped += uint64(len(h.buf))
	h.buf = h.buf[:0]
	t.unsync(h)
}

// unsync records that framing was lost: the next message comes after a Gap.
func (t *Table) unsync(h *half) {
	h.synced = false
	h.tryNoPrefix = true
	h.gapPending = true
}

// emitPartial emits the message at the start of h.buf, cut short, and empties h.buf.
func (t *Table) emitPartial(c *conn, d int, emit Emit) {
	h := &c.h[d]
	if len(h.buf) >= 2+12 {
		t.emit(c, d, h.buf[2:], MsgInfo{
			TS: h.bufAt.ts, Tag: h.bufAt.tag, Segments: h.bufSegs, Gap: h.gapPending, Incomplete: true,
			Length: int(binary.BigEndian.Uint16(h.buf)),
		}, emit)
	} else {
		t.stats.BytesDropped += uint64(len(h.buf))
	}
	h.buf = h.buf[:0]
}

func (t *Table) emit(c *conn, d int, msg []byte, info MsgInfo, emit Emit) {
	t.stats.Messages++
	if info.Segments > 1 {
		t.stats.Reassembled++
	}
	if info.Incomplete {
		t.stats.Incomplete++
	}
	if info.NoPrefix {
		t.stats.NoPrefix++
	}
	if emit != nil {
		emit(c.flow(d), msg, info)
	}
}

// deliver appends in-order bytes to direction d's stream and frames what it can.
func (t *Table) deliver(c *conn, d int, at stamp, data []byte, emit Emit) {
	h := &c.h[d]
	h.next += uint32(len(data))
	if h.skip > 0 {
		n := min(h.skip, len(data))
		h.skip -= n
		t.stats.BytesDropped += uint64(n)
		data = data[n:]
	}
	if len(data) == 0 {
		return
	}
	if len(h.buf) == 0 {
		// Common case: frame straight from the segment, keep only a partial tail.
		n := t.frame(c, d, data, 0, stamp{}, 0, at, emit)
		if n < len(data) {
			h.buf = append(h.buf[:0], data[n:]...)
			h.bufAt, h.bufSegs = at, 1
		}
	} else {
		old := len(h.buf)
		h.buf = append(h.buf, data...)
		n := t.frame(c, d, h.buf, old, h.bufAt, h.bufSegs, at, emit)
		if n >= old {
			h.bufAt, h.bufSegs = at, 1
		} else {
			h.bufSegs++
		}
		h.buf = h.buf[:copy(h.buf, h.buf[n:])]
	}
	t.boundBuf(c, d, emit)
	if len(h.buf) == 0 && cap(h.buf) > 4096 {
		h.buf = nil // do not keep a large buffer for an idle direction
	}
}

// boundBuf keeps direction d's partial message within MaxBytesPerFlow: a message too long to hold
// is emitted Incomplete with its first bytes, and the rest of it is skipped.
func (t *Table) boundBuf(c *conn, d int, emit Emit) {
	h := &c.h[d]
	limit := t.cfg.MaxBytesPerFlow
	if len(h.buf) <= limit {
		return
	}
	if h.synced && len(h.buf) >= 2 {
		want := 2 + int(binary.BigEndian.Uint16(h.buf))
		skip := want - len(h.buf)
		t.stats.BytesDropped += uint64(len(h.buf) - limit)
		h.buf = h.buf[:limit]
		t.emitPartial(c, d, emit)
		h.skip = skip
		h.buf = nil
		return
	}
	t.stats.BytesDropped += uint64(len(h.buf))
	h.buf = nil
}

// frame emits the messages in b and returns how many bytes it consumed. Bytes before old came
// from earlier segments (the first of them at oldAt, oldSegs of them); the rest from one segment
// at at.
func (t *Table) frame(c *conn, d int, b []byte, old int, oldAt stamp, oldSegs int, at stamp, emit Emit) int {
	h := &c.h[d]
	off := 0
	for off < len(b) {
		if !h.synced {
			n, ok := t.resync(c, d, b[off:], emit, off < old, oldAt, oldSegs, at)
			off += n
			if !ok {
				return off
			}
			continue
		}
		if len(b)-off < 2 {
			return off
		}
		l := int(binary.BigEndian.Uint16(b[off:]))
		end := off + 2 + l
		if end > len(b) {
			return off
		}
		info := MsgInfo{TS: at.ts, Tag: at.tag, Segments: 1, Gap: h.gapPending, Length: l}
		if off < old {
			info.TS, info.Tag, info.Segments = oldAt.ts, oldAt.tag, oldSegs
			if end > old {
				info.Segments++
			}
		}
		h.gapPending = false
		t.emit(c, d, b[off+2:end], info, emit)
		off = end
	}
	return off
}

// resync looks for framing at the start of b (unsynced bytes). It returns the bytes consumed
// (skipped, or a prefixless message emitted) and whether framing was found (h.synced is then set
// and framing resumes at the returned offset).
func (t *Table) resync(c *conn, d int, b []byte, emit Emit, inOld bool, oldAt stamp, oldSegs int, at stamp) (int, bool) {
	h := &c.h[d]
	switch plausibleFramed(b) {
	case yes:
		t.found(h)
		return 0, true
	case more:
		return 0, false
	}
	if h.tryNoPrefix {
		n, v := walkMessage(b)
		if v == yes && n < len(b) {
			if plausibleFramed(b[n:]) == more {
				return 0, false
			}
			if plausibleFramed(b[n:]) != yes {
				v = no
			}
		}
		switch v {
		case more:
			return 0, false
		case yes:
			info := MsgInfo{TS: at.ts, Tag: at.tag, Segments: 1, Gap: h.gapPending, NoPrefix: true, Length: n}
			if inOld {
				info.TS, info.Tag, info.Segments = oldAt.ts, oldAt.tag, oldSegs+1
			}
			h.gapPending = false
			h.synced, h.tryNoPrefix = true, false
			t.stats.Resyncs++
			t.emit(c, d, b[:n], info, emit)
			return n, true
		}
	}
	h.tryNoPrefix = false
	for i := 1; i < len(b); i++ {
		switch plausibleFramed(b[i:]) {
		case yes:
			t.stats.BytesDropped += uint64(i)
			h.gapPending = true
			t.found(h)
			return i, true
		case more:
			t.stats.BytesDropped += uint64(i)
			h.gapPending = true
			return i, false
		}
	}
	t.stats.BytesDropped += uint64(len(b))
	h.gapPending = true
	return len(b), false
}

func (t *Table) found(h *half) {
	h.synced, h.tryNoPrefix = true, false
	t.stats.Resyncs++
}

// finish frames everything direction d holds, declaring holes lost, and emits a message in
// progress as Incomplete.
func (t *Table) finish(c *conn, d int, emit Emit) {
	h := &c.h[d]
	for len(h.ooo) > 0 {
		t.gapAhead(c, d, emit)
	}
	if h.synced && len(h.buf) >= 2 {
		t.emitPartial(c, d, emit)
	} else {
		t.stats.BytesDropped += uint64(len(h.buf))
		h.buf = h.buf[:0]
	}
}

// drop finishes both directions of c and forgets it.
func (t *Table) drop(c *conn, emit Emit) {
	t.finish(c, 0, emit)
	t.finish(c, 1, emit)
	t.unlink(c)
	delete(t.conns, c.k)
	delete(t.waiting, c)
	t.stats.BytesHeld -= c.held
	c.held = 0
	t.stats.Flows = len(t.conns)
}

func (t *Table) charge(c *conn) {
	n := cap(c.h[0].buf) + cap(c.h[1].buf) + c.h[0].oooBytes + c.h[1].oooBytes
	t.stats.BytesHeld += n - c.held
	c.held = n
	t.stats.PeakBytesHeld = max(t.stats.PeakBytesHeld, t.stats.BytesHeld)
}

func (t *Table) link(c *conn) {
	c.prev, c.next = t.tail, nil
	if t.tail != nil {
		t.tail.next = c
	} else {
		t.head = c
	}
	t.tail = c
}

func (t *Table) unlink(c *conn) {
	if c.prev != nil {
		c.prev.next = c.next
	} else if t.head == c {
		t.head = c.next
	}
	if c.next != nil {
		c.next.prev = c.prev
	} else if t.tail == c {
		t.tail = c.prev
	}
	c.prev, c.next = nil, nil
}

func (t *Table) expireIdle(now int64, emit Emit) {
	for t.head != nil && now-t.head.lastTS >= t.idle {
		t.stats.FlowsExpired++
		t.drop(t.head, emit)
	}
}

// Expire drops connections idle for IdleTimeout at capture time now, and declares lost the holes
// open for ReorderTimeout, emitting what that frees. Add does both for the connection it is given
// and expires idle ones; call Expire when the capture goes quiet.
func (t *Table) Expire(now int64, emit Emit) {
	t.expireIdle(now, emit)
	for c := range t.waiting {
		for d := range 2 {
			if len(c.h[d].ooo) > 0 && now-c.h[d].oooSince >= t.reorder {
				t.gapAhead(c, d, emit)
			}
		}
		t.charge(c)
	}
}

// Flush emits everything held, as at the end of a capture, and empties the Table. Connections
// still open are counted as expired.
func (t *Table) Flush(emit Emit) {
	for t.head != nil {
		t.stats.FlowsExpired++
		t.drop(t.head, emit)
	}
}
