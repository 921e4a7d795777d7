// Package ipfrag reassembles fragmented IPv4 and IPv6 datagrams from captured packets, with
// bounded state.
//
// A Reassembler keys fragments by (source, destination, protocol, identification) for IPv4 and by
// (source, destination, identification) for IPv6 (RFC 8200, section 4.5). It holds at most
// Config.MaxDatagrams incomplete datagrams and Config.MaxBytes bytes of fragment data; a datagram
// whose fragments have not all arrived within Config.Timeout of its first fragment, measured in
// capture time (the timestamps given to Add*, never the wall clock), is evicted. Every eviction is
// counted and handed to the Incomplete callback with the contiguous bytes from offset 0 that did
// arrive, so that a caller can still write a row marked incomplete when the first fragment carried
// the UDP and DNS headers.
//
// Overlaps are handled as the Linux kernel has since 2018 and as RFC 5722 requires for IPv6: an
// exact duplicate of a fragment already held is dropped and counted, and any other overlap
// abandons the whole datagram, including fragments of it that arrive later (until Timeout). The
// receiving host discards such a datagram too, so no DNS message was delivered from it.
//
// A Reassembler is not safe for concurrent use. Slices it returns or hands to callbacks are valid
// only until the next call on it.
package ipfrag

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"
	"time"
)

// Defaults used for zero Config fields.
const (
	DefaultMaxDatagrams = 4096
	DefaultMaxBytes     = 4 << 20 // as Linux net.ipv4.ipfrag_high_thresh
	DefaultTimeout      = 30 * time.Second
	DefaultMaxFragments = 64 // a 65535-byte datagram over a 1280-byte MTU takes 52
)

// maxPayload is the largest fragmentable payload end offset accepted: the IPv4 total length and
// the IPv6 payload length fields are 16 bits.
const maxPayload = 65535

// Errors returned for fragments that cannot be used. Each is counted in Stats.Invalid (or
// Stats.Overlaps / Stats.DroppedFragments for the overlap errors).
var (
	ErrShort        = errors.New("packet shorter than its IP header")
	ErrBadHeader    = errors.New("malformed IP header")
	ErrTruncated    = errors.New("fragment cut short by the capture")
	ErrBadFragment  = errors.New("non-final fragment length not a multiple of 8")
	ErrTooLarge     = errors.New("fragment ends past 65535 bytes")
	ErrInconsistent = errors.New("fragment disagrees with the datagram's final length")
	ErrOverlap      = errors.New("overlapping fragments: datagram abandoned")
	ErrAbandoned    = errors.New("fragment of an abandoned datagram")
	ErrTooMany      = errors.New("too many fragments for one datagram")
)

// Config bounds a Reassembler. Zero fields take the Default* values.
type Config struct {
	MaxDatagrams int           // incomplete datagrams held at once
	MaxBytes     int           // bytes of fragment data held at once (buffer capacity)
	Timeout      time.Duration // capture time from a datagram's first fragment to its eviction
	MaxFragments int           // fragments held for one datagram
}

func (c Config) withDefaults() Config {
	if c.MaxDatagrams <= 0 {
		c.MaxDatagrams = DefaultMaxDatagrams
	}
	if c.MaxBytes <= 0 {
		c.MaxBytes = DefaultMaxBytes
	}
	if c.Timeout <= 0 {
		c.Timeout = DefaultTimeout
	}
	if c.MaxFragments <= 0 {
		c.MaxFragments = DefaultMaxFragments
	}
	return c
}

// Datagram is a complete IP payload: the transport header and its data.
type Datagram struct {
	Version   uint8 // 4 or 6
	Src, Dst  netip.Addr
	Proto     uint8  // IPv4 protocol, or the IPv6 next header that follows the headers consumed
	ID        uint32 // IPv4 identification or IPv6 fragment identification; 0 if not fragmented
	Payload   []byte // valid until the next call on the Reassembler
	Fragments int    // fragments it was reassembled from; 0 when not a fragment (1 for an IPv6 atomic fragment)
	FirstTS   int64  // timestamp of the first fragment received (the packet's own when not fragmented)
	Truncated bool   // not fragmented, and the capture cut the packet short (Payload is what was captured)
}

// EvictReason says why an incomplete datagram was given up.
type EvictReason uint8

// Eviction reasons.
const (
	EvictTimeout EvictReason = iota + 1 // Timeout passed since the first fragment
	EvictCap                            // MaxDatagrams or MaxBytes reached; the oldest datagram went
	EvictFlush                          // Flush at the end of a capture
)

func (r EvictReason) String() string {
	switch r {
	case EvictTimeout:
		return "timeout"
	case EvictCap:
		return "cap"
	case EvictFlush:
		return "flush"
	}
	return fmt.Sprintf("EvictReason(%d)", uint8(r))
}

// Incomplete describes a datagram evicted before all its fragments arrived.
type Incomplete struct {
	Version   uint8
	Src, Dst  netip.Addr
	Proto     uint8 // IPv4 protocol; for IPv6 the next header of the first fragment (0 if it never came)
	ID        uint32
	FirstTS   int64
	LastTS    int64
	Prefix    []byte // contiguous data from offset 0 (nil if the first fragment never came); valid during the callback
	Fragments int    // fragments held
	Bytes     int    // data bytes held
	Reason    EvictReason
}

// Stats are a Reassembler's counters. Held and BytesHeld are current values, the Peak fields their
// maximum so far; the rest count since New.
type Stats struct {
	Fragments        uint64 // fragments accepted into a datagram
	Reassembled      uint64 // datagrams completed
	Duplicates       uint64 // exact duplicate fragments dropped
	Overlaps         uint64 // datagrams abandoned for overlapping or inconsistent fragments (or too many of them)
	DroppedFragments uint64 // fragments of abandoned datagrams dropped
	Invalid          uint64 // fragments rejected as malformed
	EvictedTimeout   uint64 // datagrams evicted by Timeout
	EvictedCap       uint64 // datagrams evicted to stay within MaxDatagrams / MaxBytes
	Flushed          uint64 // datagrams handed out incomplete by Flush
	Held             int    // datagrams held now (abandoned ones included until Timeout)
	BytesHeld        int    // fragment buffer bytes held now
	PeakHeld         int
	PeakBytesHeld    int
}

type key struct {
	src, dst [16]byte
	id       uint32
	proto    uint8 // IPv4 only; 0 for IPv6
	v6       bool
}

type span struct {
	off, end int // byte range in the datagram payload
	at       int // where its data starts in entry.data
}

type entry struct {
	k          key
	prev, next *entry
	firstTS    int64
	lastTS     int64
	proto      uint8
	total      int // payload length once the last fragment is seen, else -1
	received   int
	maxEnd     int    // largest end offset held
	spans      []span // sorted by off, disjoint
	data       []byte
	abandoned  bool
	heldBytes  int // bytes charged to Stats.BytesHeld
}

// Reassembler reassembles fragmented datagrams. Create it with New.
type Reassembler struct {
	cfg        Config
	timeout    int64
	incomplete func(Incomplete)
	m          map[key]*entry
	head, tail *entry // oldest first
	free       []*entry
	out        []byte
	stats      Stats
}

// New returns a Reassembler bounded by cfg. incomplete, if not nil, receives every datagram
// evicted before completion (timeout, cap, flush); it must not call back into the Reassembler.
func New(cfg Config, incomplete func(Incomplete)) *Reassembler {
	cfg = cfg.withDefaults()
	return &Reassembler{
		cfg:        cfg,
		timeout:    int64(cfg.Timeout),
		incomplete: incomplete,
		m:          make(map[key]*entry),
	}
}

// Stats returns the counters.
func (r *Reassembler) Stats() Stats { return r.stats }

// AddIPv4 takes one whole captured IPv4 packet (header and payload; bytes past the header's
// total length, such as Ethernet padding, are ignored) seen at ts (nanoseconds). A packet that is
// not a fragment is returned at once, complete, without copying. A fragment is held; when it
// completes its datagram, the reassembled payload is returned with complete true.
func (r *Reassembler) AddIPv4(ts int64, pkt []byte) (d Datagram, complete bool, err error) {
	r.Expire(ts)
	if len(pkt) < 20 {
		return d, false, r.invalid(ErrShort)
	}
	if pkt[0]>>4 != 4 {
		return d, false, r.invalid(fmt.Errorf("IP version %d in an IPv4 packet: %w", pkt[0]>>4, ErrBadHeader))
	}
	ihl := int(pkt[0]&0x0f) * 4
	total := int(binary.BigEndian.Uint16(pkt[2:4]))
	if ihl < 20 || total < ihl || len(pkt) < ihl {
		return d, false, r.invalid(fmt.Errorf("IPv4 header length %d, total length %d: %w", ihl, total, ErrBadHeader))
	}
	d.Version = 4
	d.Src = netip.AddrFrom4([4]byte(pkt[12:16]))
	d.Dst = netip.AddrFrom4([4]byte(pkt[16:20]))
	d.Proto = pkt[9]
	d.FirstTS = ts
	fo := binary.BigEndian.Uint16(pkt[6:8])
	more := fo&0x2000 != 0
	off := int(fo&0x1fff) * 8
	truncated := len(pkt) < total
	if !truncated {
		pkt = pkt[:total]
	}
	payload := pkt[ihl:]
	if !more && off == 0 {
		d.Payload = payload
		d.Truncated = truncated
		return d, true, nil
	}
	d.ID = uint32(binary.BigEndian.Uint16(pkt[4:6]))
	if truncated {
		return d, false, r.invalid(ErrTruncated)
	}
	if off+len(payload) > maxPayload-ihl {
		return d, false, r.invalid(ErrTooLarge)
	}
	k := key{id: d.ID, proto: d.Proto}
	copy(k.src[:4], pkt[12:16])
	copy(k.dst[:4], pkt[16:20])
	return r.add(ts, k, d, off, more, payload)
}

// AddIPv6 takes one whole captured IPv6 packet seen at ts. It walks the extension headers that may
// precede a Fragment header (Hop-by-Hop, Routing, Destination Options); a packet without a Fragment
// header is returned at once, complete, with Payload after those headers and Proto the next header.
// Otherwise it behaves as AddIPv6Fragment.
func (r *Reassembler) AddIPv6(ts int64, pkt []byte) (d Datagram, complete bool, err error) {
	r.Expire(ts)
	if len(pkt) < 40 {
		return d, false, r.invalid(ErrShort)
	}
	if pkt[0]>>4 != 6 {
		return d, false, r.invalid(fmt.Errorf("IP version %d in an IPv6 packet: %w", pkt[0]>>4, ErrBadHeader))
	}
	plen := int(binary.BigEndian.Uint16(pkt[4:6]))
	truncated := len(pkt) < 40+plen
	if !truncated {
		pkt = pkt[:40+plen] // a jumbogram (plen 0) is not DNS; it shows as an empty payload
	}
	src, dst := [16]byte(pkt[8:24]), [16]byte(pkt[24:40])
	next := pkt[6]
	rest := pkt[40:]
	for {
		switch next {
		case 0, 43, 60: // Hop-by-Hop, Routing, Destination Options
			if len(rest) < 8 {
				return d, false, r.invalid(fmt.Errorf("IPv6 extension header %d cut short: %w", next, ErrBadHeader))
			}
			n := (int(rest[1]) + 1) * 8
			if len(rest) < n {
				return d, false, r.invalid(fmt.Errorf("IPv6 extension header %d cut short: %w", next, ErrBadHeader))
			}
			next, rest = rest[0], rest[n:]
			continue
		case 44: // Fragment
			if truncated {
				d.Version, d.Src, d.Dst, d.FirstTS = 6, netip.AddrFrom16(src), netip.AddrFrom16(dst), ts
				return d, false, r.invalid(ErrTruncated)
			}
			return r.AddIPv6Fragment(ts, src, dst, rest)
		}
		break
	}
	d.Version = 6
	d.Src, d.Dst = netip.AddrFrom16(src), netip.AddrFrom16(dst)
	d.Proto = next
	d.Payload = rest
	d.FirstTS = ts
	d.Truncated = truncated
	return d, true, nil
}

// AddIPv6Fragment takes the part of an IPv6 packet that starts at its Fragment extension header
// (8 bytes) and runs to the end of the packet, with the packet's source and destination
// addresses, as a decoder that has already walked the extension headers has them.
// The reassembled Payload is the fragmentable part, and Proto is the Fragment header's next
// header (which may itself be an extension header such as Destination Options).
func (r *Reassembler) AddIPv6Fragment(ts int64, src, dst [16]byte, frag []byte) (d Datagram, complete bool, err error) {
	r.Expire(ts)
	d.Version = 6
	d.Src, d.Dst = netip.AddrFrom16(src), netip.AddrFrom16(dst)
	d.FirstTS = ts
	if len(frag) < 8 {
		return d, false, r.invalid(fmt.Errorf("IPv6 fragment header cut short: %w", ErrBadHeader))
	}
	d.Proto = frag[0]
	fo := binary.BigEndian.Uint16(frag[2:4])
	more := fo&1 != 0
	off := int(fo>>3) * 8
	d.ID = binary.BigEndian.Uint32(frag[4:8])
	payload := frag[8:]
	if !more && off == 0 {
		// An atomic fragment (RFC 6946): processed in isolation.
		d.Payload = payload
		d.Fragments = 1
		return d, true, nil
	}
	if off+len(payload) > maxPayload {
		return d, false, r.invalid(ErrTooLarge)
	}
	k := key{src: src, dst: dst, id: d.ID, v6: true}
	return r.add(ts, k, d, off, more, payload)
}

func (r *Reassembler) invalid(err error) error {
	r.stats.Invalid++
	return err
}

// add files one fragment; d carries the header fields to return.
func (r *Reassembler) add(ts int64, k key, d Datagram, off int, more bool, payload []byte) (Datagram, bool, error) {
	end := off + len(payload)
	if more && len(payload)%8 != 0 {
		return d, false, r.invalid(ErrBadFragment)
	}
	if len(payload) == 0 {
		return d, false, r.invalid(fmt.Errorf("empty fragment: %w", ErrBadFragment))
	}
	e := r.m[k]
	if e == nil {
		// Make room before creating: one datagram slot and the bytes this fragment needs.
		for r.stats.Held >= r.cfg.MaxDatagrams || (r.head != nil && r.stats.BytesHeld+len(payload) > r.cfg.MaxBytes) {
			r.evict(r.head, EvictCap)
		}
		e = r.newEntry(k, ts)
	}
	if e.abandoned {
		r.stats.DroppedFragments++
		return d, false, ErrAbandoned
	}
	e.lastTS = ts
	// Final length consistency.
	if !more {
		if (e.total >= 0 && e.total != end) || e.maxEnd > end {
			r.abandon(e)
			return d, false, ErrInconsistent
		}
		e.total = end
	}
	if e.total >= 0 && end > e.total {
		r.abandon(e)
		return d, false, ErrInconsistent
	}
	// Find the insertion point and check overlaps with the neighbours.
	i := 0
	for i < len(e.spans) && e.spans[i].off < off {
		i++
	}
	if i < len(e.spans) && e.spans[i].off == off && e.spans[i].end == end {
		if string(e.data[e.spans[i].at:e.spans[i].at+len(payload)]) == string(payload) {
			r.stats.Duplicates++
			return d, false, nil
		}
	}
	if (i > 0 && e.spans[i-1].end > off) || (i < len(e.spans) && e.spans[i].off < end) {
		r.abandon(e)
		return d, false, ErrOverlap
	}
	if len(e.spans) >= r.cfg.MaxFragments {
		r.abandon(e)
		r.stats.Invalid++
		return d, false, ErrTooMany
	}
	// Bytes for this fragment: evict older datagrams if needed (never e itself).
	grow := 0
	if need := len(e.data) + len(payload); need > cap(e.data) {
		grow = growCap(cap(e.data), need) - cap(e.data)
	}
	for grow > 0 && r.stats.BytesHeld+grow > r.cfg.MaxBytes && r.head != nil && r.head != e {
		r.evict(r.head, EvictCap)
	}
	if grow > 0 && r.stats.BytesHeld+grow > r.cfg.MaxBytes {
		// e alone exceeds the byte cap: give it up.
		r.evict(e, EvictCap)
		return d, false, nil
	}
	if grow > 0 {
		nd := make([]byte, len(e.data), cap(e.data)+grow)
		copy(nd, e.data)
		e.data = nd
	}
	at := len(e.data)
	e.data = append(e.data, payload...)
	e.spans = append(e.spans, span{})
	copy(e.spans[i+1:], e.spans[i:])
	e.spans[i] = span{off: off, end: end, at: at}
	e.received += len(payload)
	e.maxEnd = max(e.maxEnd, end)
	if off == 0 {
		e.proto = d.Proto
	}
	r.charge(e)
	r.stats.Fragments++
	if e.total < 0 || e.received != e.total {
		return d, false, nil
	}
	// Complete: spans are disjoint, sorted, and sum to total, so they tile [0,total).
	if cap(r.out) < e.total {
		r.out = make([]byte, e.total, growCap(0, e.total))
	}
	out := r.out[:e.total]
	for _, s := range e.spans {
		copy(out[s.off:s.end], e.data[s.at:s.at+s.end-s.off])
	}
	d.Proto = e.proto
	d.Payload = out
	d.Fragments = len(e.spans)
	d.FirstTS = e.firstTS
	r.stats.Reassembled++
	r.release(e)
	return d, true, nil
}

func growCap(old, need int) int {
	c := max(old*2, 256)
	for c < need {
		c *= 2
	}
	return min(c, max(need, maxPayload+1))
}

func (r *Reassembler) newEntry(k key, ts int64) *entry {
	var e *entry
	if n := len(r.free); n > 0 {
		e = r.free[n-1]
		r.free = r.free[:n-1]
	} else {
		e = &entry{}
	}
	e.k = k
	e.firstTS, e.lastTS = ts, ts
	e.total = -1
	e.proto = 0
	e.received = 0
	e.maxEnd = 0
	e.abandoned = false
	e.spans = e.spans[:0]
	e.data = e.data[:0]
	r.m[k] = e
	// Append to the age list.
	e.prev, e.next = r.tail, nil
	if r.tail != nil {
		r.tail.next = e
	} else {
		r.head = e
	}
	r.tail = e
	r.stats.Held++
	r.stats.PeakHeld = max(r.stats.PeakHeld, r.stats.Held)
	r.charge(e)
	return e
}

// charge brings Stats.BytesHeld in line with e's buffer.
func (r *Reassembler) charge(e *entry) {
	c := cap(e.data)
	if e.abandoned {
		c = 0
	}
	r.stats.BytesHeld += c - e.heldBytes
	e.heldBytes = c
	r.stats.PeakBytesHeld = max(r.stats.PeakBytesHeld, r.stats.BytesHeld)
}

// abandon drops e's data but keeps its key until Timeout so later fragments are dropped too.
func (r *Reassembler) abandon(e *entry) {
	r.stats.Overlaps++
	e.abandoned = true
	e.spans = e.spans[:0]
	e.data = nil
	r.charge(e)
}

// release removes e and recycles it.
func (r *Reassembler) release(e *entry) {
	delete(r.m, e.k)
	if e.prev != nil {
		e.prev.next = e.next
	} else {
		r.head = e.next
	}
	if e.next != nil {
		e.next.prev = e.prev
	} else {
		r.tail = e.prev
	}
	e.prev, e.next = nil, nil
	r.stats.Held--
	r.stats.BytesHeld -= e.heldBytes
	e.heldBytes = 0
	if len(r.free) < 32 {
		if cap(e.data) > 4096 {
			e.data = nil
		}
		r.free = append(r.free, e)
	}
}

func (r *Reassembler) evict(e *entry, why EvictReason) {
	if e.abandoned {
		// Already counted in Overlaps when it was abandoned.
		r.release(e)
		return
	}
	switch why {
	case EvictTimeout:
		r.stats.EvictedTimeout++
	case EvictCap:
		r.stats.EvictedCap++
	case EvictFlush:
		r.stats.Flushed++
	}
	if r.incomplete != nil {
		inc := Incomplete{
			Version:   4,
			Src:       netip.AddrFrom4([4]byte(e.k.src[:4])),
			Dst:       netip.AddrFrom4([4]byte(e.k.dst[:4])),
			Proto:     e.k.proto,
			ID:        e.k.id,
			FirstTS:   e.firstTS,
			LastTS:    e.lastTS,
			Fragments: len(e.spans),
			Bytes:     e.received,
			Reason:    why,
		}
		if e.k.v6 {
			inc.Version = 6
			inc.Src, inc.Dst = netip.AddrFrom16(e.k.src), netip.AddrFrom16(e.k.dst)
			inc.Proto = e.proto
		}
		inc.Prefix = r.prefix(e)
		r.incomplete(inc)
	}
	r.release(e)
}

// prefix returns the contiguous data of e from offset 0, in r.out.
func (r *Reassembler) prefix(e *entry) []byte {
	n := 0
	for _, s := range e.spans {
		if s.off != n {
			break
		}
		n = s.end
	}
	if n == 0 {
		return nil
	}
	if cap(r.out) < n {
		r.out = make([]byte, n, growCap(0, n))
	}
	out := r.out[:n]
	for _, s := range e.spans {
		if s.off >= n {
			break
		}
		copy(out[s.off:s.end], e.data[s.at:s.at+s.end-s.off])
	}
	return out
}

// Expire evicts every datagram whose first fragment is Timeout or more older than now
// (nanoseconds, capture time). Add* call it with their own timestamp; call it yourself when the
// capture goes quiet. Datagrams are checked oldest first, so with timestamps that go backwards a
// datagram may stay a little longer than Timeout; the caps still hold.
func (r *Reassembler) Expire(now int64) {
	for r.head != nil && now-r.head.firstTS >= r.timeout {
		r.evict(r.head, EvictTimeout)
	}
}

// Flush hands out every datagram still held as incomplete (at the end of a capture) and empties
// the Reassembler.
func (r *Reassembler) Flush() {
	for r.head != nil {
		r.evict(r.head, EvictFlush)
	}
}
