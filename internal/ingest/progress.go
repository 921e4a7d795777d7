package ingest

import (
	"fmt"
	"io"
	"path/filepath"
	"time"
)

// progress prints what an ingest has done so far, at most once per interval.
type progress struct {
	w     io.Writer
	every time.Duration
	name  string
	size  int64
	start time.Time
	next  time.Time
	calls uint32
}

func newProgress(w io.Writer, every time.Duration, path string, size int64) *progress {
	if every <= 0 {
		every = time.Second
	}
	now := time.Now()
	return &progress{w: w, every: every, name: filepath.Base(path), size: size, start: now, next: now.Add(every)}
}

func (p *progress) update(offset, packets int64, messages uint64) {
	if p.w == nil {
		return
	}
	p.calls++
	if p.calls&4095 != 0 { // look at the clock only now and then
		return
	}
	now := time.Now()
	if now.Before(p.next) {
		return
	}
	p.next = now.Add(p.every)
	pct := ""
	if p.size > 0 {
		pct = fmt.Sprintf("%3.0f%% ", 100*float64(offset)/float64(p.size))
	}
	secs := now.Sub(p.start).Seconds()
	fmt.Fprintf(p.w, "ingest %s: %s%d packets, %d DNS messages, %.0f packets/s\n", p.name, pct, packets, messages, float64(packets)/secs)
}

func (p *progress) done(r Result) {
	if p.w == nil {
		return
	}
	c := CaptureStats(r.Stats, r.BadRecords)
	fmt.Fprintf(p.w, "ingest %s: host %s, %d packets, %d DNS messages (%d malformed, %d truncated), %d not DNS, %d undecodable, %d lost to reassembly, in %.2fs\n",
		p.name, r.Host, r.Packets, c["dns_messages"], c["malformed"], c["truncated"], c["non_dns"], c["decode_errors"], c["reassembly_drops"], r.Elapsed.Seconds())
	if r.ReadError != nil {
		fmt.Fprintf(p.w, "ingest %s: warning: %v (packets before it were stored)\n", p.name, r.ReadError)
	}
}
