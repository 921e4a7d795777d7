package sink

import (
	"context"
	"testing"
	"time"
)

// BenchmarkSubmitHeldServer is what Submit costs the capture goroutine while the server holds
// every insert: 1 MiB blocks (a 50,000-row block is a few MB) into a spool with room for them
// all. "tight" submits back to back, faster than any disk; "paced" lets the spool writer catch
// up (MemBlocks back at its bound) between blocks. It reports the mean and the slowest time in
// Submit (ns/op includes the pacing) and the share of blocks dropped. Run with a fixed count,
// e.g. -benchtime=300x: each block is a file on disk.
func BenchmarkSubmitHeldServer(b *testing.B) {
	for _, paced := range []bool{false, true} {
		name := map[bool]string{false: "tight", true: "paced"}[paced]
		b.Run(name, func(b *testing.B) {
			const mem = 16
			h := newHeld()
			s, err := New(Config{Inserter: h, SpoolDir: b.TempDir(), SpoolBytes: 8 << 30, MemBlocks: mem, TokenPrefix: "bench", InsertTimeout: time.Hour})
			if err != nil {
				b.Fatal(err)
			}
			data := make([]byte, 1<<20)
			var total, slowest time.Duration
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				start := time.Now()
				s.Submit(&Block{Table: "dns_messages", Rows: 1000, Native: data, Iface: "eth0"})
				d := time.Since(start)
				total, slowest = total+d, max(slowest, d)
				for paced && s.Stats().MemBlocks > mem {
					time.Sleep(50 * time.Microsecond)
				}
			}
			b.StopTimer()
			b.ReportMetric(float64(total.Nanoseconds())/float64(b.N), "submit-ns/op")
			b.ReportMetric(float64(slowest.Microseconds()), "max-µs")
			b.ReportMetric(float64(s.TakeDropped()["eth0"]/1000)/float64(b.N), "dropped/op")
			ctx, cancel := context.WithCancel(context.Background())
			cancel() // give up on the held insert at once: what is in memory is spooled
			if err := s.Close(ctx); err != nil {
				b.Errorf("close: %v", err)
			}
		})
	}
}
