package ipfrag

import (
	"encoding/binary"
	"runtime"
	"testing"
)

// BenchmarkUnmatchedFragments feeds 1,000,000 first fragments (1472 bytes each) that are never
// completed per op to a Reassembler with the default caps, and reports the peak datagrams and
// bytes held and the heap in use at the end, with the Reassembler still live.
func BenchmarkUnmatchedFragments(b *testing.B) {
	p := v4(srcA, dstA, 0, 0, true, seqBytes(1472))
	var st Stats
	var heap uint64
	for b.Loop() {
		r := New(Config{}, func(Incomplete) {})
		for i := range 1_000_000 {
			binary.BigEndian.PutUint16(p[4:], uint16(i))
			p[12], p[13] = byte(i>>24), byte(i>>16)
			if _, _, err := r.AddIPv4(int64(i)*1000, p); err != nil {
				b.Fatal(err)
			}
		}
		st = r.Stats()
		runtime.GC()
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		heap = ms.HeapInuse
		runtime.KeepAlive(r)
	}
	if st.PeakHeld > DefaultMaxDatagrams || st.PeakBytesHeld > DefaultMaxBytes {
		b.Fatalf("got peaks %d datagrams, %d bytes; caps %d, %d", st.PeakHeld, st.PeakBytesHeld, DefaultMaxDatagrams, DefaultMaxBytes)
	}
	b.ReportMetric(float64(st.PeakHeld), "peak-datagrams")
	b.ReportMetric(float64(st.PeakBytesHeld), "peak-bytes-held")
	b.ReportMetric(float64(st.EvictedCap), "evicted")
	b.ReportMetric(float64(heap)/(1<<20), "heap-inuse-MiB")
}

// BenchmarkTwoFragments is the common path: a datagram in two fragments, in order.
func BenchmarkTwoFragments(b *testing.B) {
	data := seqBytes(1600)
	f1 := v4(srcA, dstA, 0, 0, true, data[:1480])
	f2 := v4(srcA, dstA, 0, 1480, false, data[1480:])
	r := New(Config{}, nil)
	b.ReportAllocs()
	b.SetBytes(int64(len(data)))
	var id uint16
	for b.Loop() {
		id++
		binary.BigEndian.PutUint16(f1[4:], id)
		binary.BigEndian.PutUint16(f2[4:], id)
		r.AddIPv4(1, f1)
		if _, ok, _ := r.AddIPv4(1, f2); !ok {
			b.Fatal("not reassembled")
		}
	}
}

// BenchmarkNotFragmented is the pass-through path for an ordinary packet.
func BenchmarkNotFragmented(b *testing.B) {
	p := v4(srcA, dstA, 0, 0, false, seqBytes(100))
	r := New(Config{}, nil)
	b.ReportAllocs()
	for b.Loop() {
		r.AddIPv4(1, p)
	}
}
