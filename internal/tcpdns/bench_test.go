package tcpdns

import (
	"net/netip"
	"runtime"
	"testing"
)

// BenchmarkHalfOpenFlows feeds 1,000,000 half-open connections (a SYN and the first 20 bytes of a
// query, never finished) per op to a Table with the default caps, and reports the peak
// connections and bytes held and the heap in use at the end, with the Table still live.
func BenchmarkHalfOpenFlows(b *testing.B) {
	partial := framed(query(1, "half.open.example"))[:20]
	var st Stats
	var heap uint64
	for b.Loop() {
		tab := New(Config{})
		for i := range 1_000_000 {
			k := FlowKey{
				Src: netip.AddrPortFrom(netip.AddrFrom4([4]byte{10, byte(i >> 16), byte(i >> 8), byte(i)}), uint16(1024+i%60000)),
				Dst: server,
			}
			ts := int64(i) * 1000 // 1 µs apart: all within the idle timeout
			tab.Add(ts, k, Segment{Seq: 1, Flags: FlagSYN}, nil)
			tab.Add(ts, k, Segment{Seq: 2, Flags: FlagACK, Payload: partial}, nil)
		}
		st = tab.Stats()
		runtime.GC()
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		heap = ms.HeapInuse
		runtime.KeepAlive(tab)
	}
	if st.PeakFlows > DefaultMaxFlows || st.PeakBytesHeld > DefaultMaxBytesTotal {
		b.Fatalf("got peaks %d flows, %d bytes; caps %d, %d", st.PeakFlows, st.PeakBytesHeld, DefaultMaxFlows, DefaultMaxBytesTotal)
	}
	b.ReportMetric(float64(st.PeakFlows), "peak-flows")
	b.ReportMetric(float64(st.PeakBytesHeld), "peak-bytes-held")
	b.ReportMetric(float64(st.FlowsEvicted), "flows-evicted")
	b.ReportMetric(float64(heap)/(1<<20), "heap-inuse-MiB")
}

// BenchmarkMessage is the common path: one whole message in one segment of an established
// connection.
func BenchmarkMessage(b *testing.B) {
	msg := framed(query(1, "www.example.com"))
	tab := New(Config{})
	n := 0
	emit := func(FlowKey, []byte, MsgInfo) { n++ }
	for _, s := range handshake {
		tab.Add(s.ts, s.key, Segment{Seq: s.seq, Ack: s.ack, Flags: s.flags}, emit)
	}
	seq := uint32(cisn + 1)
	b.ReportAllocs()
	b.SetBytes(int64(len(msg)))
	for b.Loop() {
		tab.Add(10, up, Segment{Seq: seq, Ack: sisn + 1, Flags: FlagACK, Payload: msg}, emit)
		seq += uint32(len(msg))
	}
	if n != b.N {
		b.Fatalf("got %d messages, want %d", n, b.N)
	}
}

// BenchmarkMessageTwoSegments is a message split over two segments.
func BenchmarkMessageTwoSegments(b *testing.B) {
	msg := framed(query(1, "www.example.com"))
	tab := New(Config{})
	emit := func(FlowKey, []byte, MsgInfo) {}
	for _, s := range handshake {
		tab.Add(s.ts, s.key, Segment{Seq: s.seq, Ack: s.ack, Flags: s.flags}, emit)
	}
	seq := uint32(cisn + 1)
	b.ReportAllocs()
	for b.Loop() {
		tab.Add(10, up, Segment{Seq: seq, Flags: FlagACK, Payload: msg[:2]}, emit)
		tab.Add(10, up, Segment{Seq: seq + 2, Flags: FlagACK, Payload: msg[2:]}, emit)
		seq += uint32(len(msg))
	}
}
