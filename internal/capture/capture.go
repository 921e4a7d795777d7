// Package capture is live capture for the collector: packets from AF_PACKET TPACKET_V3 rings
// (github.com/google/gopacket/afpacket, several rings per interface joined in a PACKET_FANOUT
// group that keeps each flow on one worker) or from libpcap (gopacket/pcap), decoded into
// dns_messages rows by dnswire, batched by size and age into Native blocks for a sink, and
// counted: every interval each interface gets a capture_stats row with the packets the
// collector received, those the kernel dropped, those dnsloss dropped, and decode errors, so
// that capture loss is never read as network loss.
package capture

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"runtime"
	"sync"
	"time"

	"github.com/dnsloss/dnsloss/internal/dnsrow"
	"github.com/dnsloss/dnsloss/internal/dnswire"
	"github.com/dnsloss/dnsloss/internal/sink"
)

// Sources.
const (
	SourceAfpacket = "afpacket"
	SourcePcap     = "pcap"
)

// Sink is where blocks go (a *sink.Sink).
type Sink interface {
	Submit(b *sink.Block)
	// TakeDropped returns the rows lost per interface since the last call.
	TakeDropped() map[string]uint64
}

// Config configures a Capture.
type Config struct {
	Interfaces []string // interface names; "any" captures on every interface
	Source     string   // SourceAfpacket (default) or SourcePcap
	Workers    int      // afpacket: rings (fanout members) per interface; default min(4, CPUs)
	RingBytes  int      // ring memory per interface, shared by its workers; default 64 MiB
	Snaplen    int      // libpcap snap length; default 65535
	Filter     string   // BPF filter; default DefaultFilter(Ports)
	Ports      []uint16 // DNS ports; default 53
	Host       string   // capture point name for the rows; default the host name
	FanoutID   uint16   // fanout group id of the first interface (others follow); default from the pid

	BatchRows     int           // rows per block; default 50000
	BatchAge      time.Duration // a block older than this is sent even if small; default 5 s
	StatsInterval time.Duration // capture_stats interval; default 10 s

	Sink   Sink
	Logger *slog.Logger
}

// IfaceStats are the cumulative counters of one capture interface.
type IfaceStats struct {
	Iface       string
	Source      string
	Packets     uint64 // received by the collector
	KernelDrops uint64
	Decoder     dnswire.Stats
	Rows        uint64 // rows put in blocks
	Blocks      uint64
	RowsDropped uint64 // lost at the sink (spool bound, rejected)
}

// Capture is a running live capture.
type Capture struct {
	cfg    Config
	log    *slog.Logger
	ifaces []*iface
}

type iface struct {
	name    string // as given ("any" included)
	source  string // e.g. "afpacket:eth0"
	workers []*worker

	// guarded by mu in Capture.stats
	mu          sync.Mutex
	last        IfaceStats // at the end of the last interval
	rowsDropped uint64
	start       time.Time
}

// New opens every capture socket (so that permission and interface errors come before Run).
func New(cfg Config) (*Capture, error) {
	if len(cfg.Interfaces) == 0 {
		return nil, errors.New("no interface to capture on (--interface eth0, or any)")
	}
	if cfg.Sink == nil {
		return nil, errors.New("capture: no sink")
	}
	if cfg.Source == "" {
		cfg.Source = SourceAfpacket
	}
	if cfg.Workers <= 0 {
		cfg.Workers = min(4, runtime.NumCPU())
	}
	if cfg.RingBytes <= 0 {
		cfg.RingBytes = 64 << 20
	}
	if cfg.Snaplen <= 0 {
		cfg.Snaplen = 65535
	}
	if len(cfg.Ports) == 0 {
		cfg.Ports = []uint16{53}
	}
	if cfg.Filter == "" {
		cfg.Filter = DefaultFilter(cfg.Ports)
	}
	if cfg.Host == "" {
		h, err := os.Hostname()
		if err != nil {
			return nil, fmt.Errorf("cannot get the host name (give --host): %w", err)
		}
		cfg.Host = h
	}
	if cfg.BatchRows <= 0 {
		cfg.BatchRows = 50000
	}
	if cfg.BatchAge <= 0 {
		cfg.BatchAge = 5 * time.Second
	}
	if cfg.StatsInterval <= 0 {
		cfg.StatsInterval = 10 * time.Second
	}
	if cfg.FanoutID == 0 {
		cfg.FanoutID = uint16(os.Getpid()*7 + 1)
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	c := &Capture{cfg: cfg, log: log}
	for i, name := range cfg.Interfaces {
		ifc, err := c.open(name, cfg.FanoutID+uint16(i))
		if err != nil {
			c.close()
			return nil, err
		}
		c.ifaces = append(c.ifaces, ifc)
	}
	return c, nil
}

func (c *Capture) open(name string, fanoutID uint16) (*iface, error) {
	ifc := &iface{name: name, source: c.cfg.Source + ":" + name}
	newWorker := func(h handle, li *linkInfo, any bool) *worker {
		return &worker{
			c: c, ifc: ifc, h: h, link: li, any: any,
			dec:   dnswire.NewDecoder(dnswire.Config{Ports: c.cfg.Ports, Host: c.cfg.Host, Source: ifc.source}),
			links: map[int]*linkInfo{},
		}
	}
	switch c.cfg.Source {
	case SourcePcap:
		var li *linkInfo
		if name != "any" {
			l, err := lookupLink(name, 0)
			if err != nil {
				return nil, err
			}
			li = &l
		}
		h, lt, err := openPcap(name, c.cfg.Snaplen, c.cfg.RingBytes, c.cfg.Filter)
		if err != nil {
			return nil, err
		}
		if li == nil {
			li = &linkInfo{name: name}
		}
		li.linkType = lt
		ifc.workers = append(ifc.workers, newWorker(h, li, false))
	case SourceAfpacket:
		any := name == "any"
		var li *linkInfo
		dev := ""
		lt := dnswire.LinkTypeEthernet
		if !any {
			l, err := lookupLink(name, 0)
			if err != nil {
				return nil, err
			}
			li, dev, lt = &l, name, l.linkType
		}
		filter, err := compileBPF(lt, c.cfg.Snaplen, c.cfg.Filter)
		if err != nil {
			return nil, err
		}
		// A loopback packet reaches the socket twice (as it leaves and as it arrives): keep one.
		var loIndexes []int
		if any {
			loIndexes = loopbackIndexes()
		}
		filter, err = skipOutgoingLoopback(filter, li != nil && li.loopback, loIndexes)
		if err != nil {
			return nil, err
		}
		perWorker := c.cfg.RingBytes / c.cfg.Workers
		blockSize := 1 << 20
		if perWorker < 4*blockSize {
			blockSize = 128 << 10
		}
		numBlocks := max(2, perWorker/blockSize)
		for i := 0; i < c.cfg.Workers; i++ {
			h, err := openAfpacket(afpacketOptions{iface: dev, blockSize: blockSize, numBlocks: numBlocks, filter: filter,
				fanout: c.cfg.Workers > 1, fanoutID: fanoutID, blockTimeo: blockTimeout})
			if err != nil {
				for _, w := range ifc.workers {
					w.h.close()
				}
				return nil, err
			}
			ifc.workers = append(ifc.workers, newWorker(h, li, any))
		}
	default:
		return nil, fmt.Errorf("unknown capture source %q (want afpacket or pcap)", c.cfg.Source)
	}
	return ifc, nil
}

func (c *Capture) close() {
	for _, ifc := range c.ifaces {
		for _, w := range ifc.workers {
			w.h.close()
		}
	}
}

// Run captures until ctx ends, then sends the partial blocks and a last capture_stats row to the
// sink, closes the sockets and returns.
func (c *Capture) Run(ctx context.Context) error {
	defer c.close()
	start := time.Now()
	for _, ifc := range c.ifaces {
		ifc.start = start
		ifc.last = IfaceStats{Iface: ifc.name, Source: ifc.source}
	}
	var wg sync.WaitGroup
	errs := make(chan error, 64)
	for _, ifc := range c.ifaces {
		for _, w := range ifc.workers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				if err := w.run(ctx); err != nil {
					errs <- err
				}
			}()
		}
	}
	c.log.Info("capturing", "interfaces", c.cfg.Interfaces, "source", c.cfg.Source, "workers", len(c.ifaces[0].workers),
		"filter", c.cfg.Filter, "host", c.cfg.Host)
	statsDone := make(chan struct{})
	go func() {
		defer close(statsDone)
		next := start.Truncate(c.cfg.StatsInterval).Add(c.cfg.StatsInterval)
		for {
			t := time.NewTimer(time.Until(next))
			select {
			case <-ctx.Done():
				t.Stop()
				return
			case now := <-t.C:
				c.emitStats(now)
				next = next.Add(c.cfg.StatsInterval)
				for !next.After(time.Now()) {
					next = next.Add(c.cfg.StatsInterval)
				}
			}
		}
	}()
	wg.Wait()
	<-statsDone
	c.emitStats(time.Now())
	close(errs)
	var first error
	for err := range errs {
		if first == nil {
			first = err
		}
	}
	return first
}

// Stats returns the cumulative counters of every interface.
func (c *Capture) Stats() []IfaceStats {
	out := make([]IfaceStats, 0, len(c.ifaces))
	for _, ifc := range c.ifaces {
		out = append(out, c.ifaceTotals(ifc))
	}
	return out
}

func (c *Capture) ifaceTotals(ifc *iface) IfaceStats {
	s := IfaceStats{Iface: ifc.name, Source: ifc.source}
	for _, w := range ifc.workers {
		w.mu.Lock()
		d := w.pub
		s.KernelDrops += w.kdrops
		s.Rows += w.rows
		s.Blocks += w.blocks
		w.mu.Unlock()
		addDecoderStats(&s.Decoder, &d)
	}
	s.Packets = s.Decoder.Packets
	ifc.mu.Lock()
	s.RowsDropped = ifc.rowsDropped
	ifc.mu.Unlock()
	return s
}

func addDecoderStats(a, b *dnswire.Stats) {
	a.Packets += b.Packets
	a.DNSMessages += b.DNSMessages
	a.ShortDNS += b.ShortDNS
	a.NonDNS += b.NonDNS
	a.DecodeErrors += b.DecodeErrors
	a.UnsupportedLink += b.UnsupportedLink
	a.Fragments += b.Fragments
	a.TCPSegments += b.TCPSegments
	a.Malformed += b.Malformed
	a.Truncated += b.Truncated
}

// emitStats sends one capture_stats row per interface for the interval that ends at now.
func (c *Capture) emitStats(now time.Time) {
	dropped := c.cfg.Sink.TakeDropped()
	rows := make([]StatsRow, 0, len(c.ifaces))
	for _, ifc := range c.ifaces {
		ifc.mu.Lock()
		ifc.rowsDropped += dropped[ifc.name]
		ifc.mu.Unlock()
		cur := c.ifaceTotals(ifc)
		ifc.mu.Lock()
		prev := ifc.last
		start := ifc.start
		ifc.last, ifc.start = cur, now
		ifc.mu.Unlock()
		d, p := cur.Decoder, prev.Decoder
		r := StatsRow{
			Host: c.cfg.Host, Source: ifc.source, Iface: ifc.name, Start: start, End: now,
			Packets:      d.Packets - p.Packets,
			KernelDrops:  cur.KernelDrops - prev.KernelDrops,
			DNSMessages:  d.DNSMessages - p.DNSMessages,
			NonDNS:       (d.NonDNS + d.ShortDNS + d.UnsupportedLink) - (p.NonDNS + p.ShortDNS + p.UnsupportedLink),
			Malformed:    d.Malformed - p.Malformed,
			Truncated:    d.Truncated - p.Truncated,
			DecodeErrors: d.DecodeErrors - p.DecodeErrors,
			RowsDropped:  cur.RowsDropped - prev.RowsDropped,
		}
		r.ToolDrops = r.RowsDropped + r.ReassemblyDrops
		if r.KernelDrops > 0 || r.ToolDrops > 0 {
			c.log.Warn("capture lost packets or rows in this interval; reports flag it", "iface", ifc.name,
				"kernel_drops", r.KernelDrops, "tool_drops", r.ToolDrops)
		}
		rows = append(rows, r)
	}
	data, cols, err := encodeStats(rows)
	if err != nil {
		c.log.Error("cannot encode capture statistics", "err", err)
		return
	}
	c.cfg.Sink.Submit(&sink.Block{Table: StatsTable, Rows: len(rows), Native: data, Columns: cols})
}

// worker reads one handle, decodes, and batches.
type worker struct {
	c     *Capture
	ifc   *iface
	h     handle
	link  *linkInfo // the interface's (nil for afpacket on "any": per packet from links)
	any   bool
	links map[int]*linkInfo
	dec   *dnswire.Decoder

	batch       *dnsrow.Batch
	batchStart  time.Time
	columns     []string // the batch's column names, for the sink
	bytesPerRow int      // Native bytes per row of the last block

	mu     sync.Mutex // guards the published counters below
	pub    dnswire.Stats
	kdrops uint64
	rows   uint64
	blocks uint64
}

func (w *worker) linkFor(idx int) *linkInfo {
	if li, ok := w.links[idx]; ok {
		return li
	}
	l, err := lookupLink("", idx)
	if err != nil {
		l = linkInfo{name: fmt.Sprint(idx), index: idx, linkType: dnswire.LinkTypeEthernet}
	}
	w.links[idx] = &l
	return &l
}

func (w *worker) run(ctx context.Context) error {
	w.batch = dnsrow.NewBatch()
	emit := func(m *dnsrow.Message) {
		if w.batch.Rows() == 0 {
			w.batchStart = time.Now()
		}
		w.batch.Append(m)
	}
	var frame dnswire.Frame
	lastPub := time.Now()
	var errCount int
	var drainUntil time.Time
	var stopSeen time.Time
	now := time.Now()
	for {
		// When this read began, or a little before: one clock read per packet instead of two
		// (at 300k packets/s the second one cost a tenth of the worker's time). Earlier only
		// makes the end-of-stop test below wait a little longer.
		readStart := now
		data, ci, err := w.h.read()
		now = time.Now()
		if ctx.Err() != nil {
			// Stopping: read the ring to the end, that is until a read that began well after the
			// stop (so that the kernel has retired the last, partly filled block) finds nothing;
			// but on a busy link not for long.
			if stopSeen.IsZero() {
				stopSeen, drainUntil = now, now.Add(time.Second)
			}
			if (err != nil && readStart.After(stopSeen.Add(2*blockTimeout))) || now.After(drainUntil) {
				break
			}
		}
		if err != nil {
			if err != errTimeout {
				errCount++
				if errCount > 100 {
					w.flush()
					w.publish()
					return fmt.Errorf("capture on %s keeps failing: %w", w.ifc.name, err)
				}
				w.c.log.Warn("capture read error", "iface", w.ifc.name, "err", err)
			}
		} else {
			errCount = 0
			li := w.link
			if w.any {
				li = w.linkFor(ci.InterfaceIndex)
			}
			frame = dnswire.Frame{LinkType: li.linkType, TS: ci.Timestamp.UnixNano(), Data: data, WireLen: ci.Length, Iface: li.name}
			if li.linkType == dnswire.LinkTypeEthernet && len(li.mac) == 6 && len(data) >= 12 {
				if bytes.Equal(data[6:12], li.mac) {
					frame.Direction = dnsrow.DirOut
				} else {
					frame.Direction = dnsrow.DirIn
				}
			}
			w.dec.Decode(&frame, emit)
		}
		if n := w.batch.Rows(); n >= w.c.cfg.BatchRows || (n > 0 && now.Sub(w.batchStart) >= w.c.cfg.BatchAge) {
			w.flush()
		}
		if now.Sub(lastPub) >= 50*time.Millisecond || err != nil {
			w.publish()
			lastPub = now
		}
	}
	w.flush()
	w.publish()
	return nil
}

// publish makes the decoder's and the kernel's counters visible to the stats goroutine.
func (w *worker) publish() {
	_, kd, err := w.h.kernelStats()
	w.mu.Lock()
	w.pub = w.dec.Stats()
	if err == nil {
		w.kdrops = kd
	}
	w.mu.Unlock()
}

func (w *worker) flush() {
	n := w.batch.Rows()
	if n == 0 {
		return
	}
	// The block goes to the sink, so each needs a buffer of its own: sized from the bytes per
	// row of the last block, it is not grown (copied) again and again while encoding.
	data, err := w.batch.EncodeNative(make([]byte, 0, n*w.bytesPerRow*9/8+4096))
	if len(data) > 0 {
		w.bytesPerRow = len(data)/n + 1
	}
	w.batch.Reset()
	if err != nil {
		w.c.log.Error("cannot encode a block", "iface", w.ifc.name, "rows", n, "err", err)
		return
	}
	if w.columns == nil {
		w.columns = columnNames(w.batch.Input())
	}
	w.c.cfg.Sink.Submit(&sink.Block{Table: dnsrow.Table, Rows: n, Native: data, Iface: w.ifc.name, Columns: w.columns})
	w.mu.Lock()
	w.rows += uint64(n)
	w.blocks++
	w.mu.Unlock()
}
