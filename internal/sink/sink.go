// Package sink carries rows from the collector to ClickHouse: Native blocks are queued in memory,
// inserted in the order they were submitted, each with an insert deduplication token so that a
// block retried after a lost answer is stored once, and retried with backoff while the server is
// unreachable. Blocks that cannot be sent wait in a bounded on-disk spool (one file per block)
// that survives restarts; what the bound forces out is counted per interface and logged, so that
// capture_stats can say which rows never reached the store.
//
// Submit never waits for the server or the disk: it queues the block in memory and returns. The
// sink's own goroutines do the rest: a sender inserts the blocks in order, and a spool writer
// moves to disk (one fsynced file per block) every block beyond the MemBlocks kept in memory,
// and every block while the server is unreachable. A block is on disk only once the spool writer
// has got to it, so a crash loses what still waited in memory (at most MemBlocks+QueueBlocks
// blocks). When QueueBlocks blocks beyond MemBlocks wait in memory (the disk cannot keep up
// either), Submit drops the new block rather than stall capture, as the kernel's ring drops
// packets, and counts its rows like the spool bound's (per interface for TakeDropped, and in
// Stats.OverflowBlocks); a new capture_stats block instead takes the place of the newest data
// block waiting, so that the record of what was lost is kept.
//
// The ClickHouse side is an Inserter; OpenClickHouse builds one on github.com/ClickHouse/clickhouse-go/v2
// (native protocol or HTTP, chosen by URL).
package sink

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sort"
	"strconv"
	"sync"
	"time"
)

// statsTable is the table whose rows say what was lost: its blocks are dropped last.
const statsTable = "capture_stats"

// Block is one Native-format block of rows for one table.
type Block struct {
	Table  string // e.g. "dns_messages"
	Rows   int
	Native []byte // one Native block, revision 0 (the INSERT ... FORMAT Native format)
	// Iface is the capture interface the rows came from; rows lost at the spool bound are counted
	// against it.
	Iface string
	// Columns names the block's columns in order, when its producer knows them. The HTTP
	// inserter then sends Native as it is (INSERT ... (Columns) FORMAT Native) instead of
	// decoding it into Go values for clickhouse-go to encode again. Blocks without it (spool
	// files of an earlier run) take the decoding path.
	Columns []string

	// Set by Submit.
	Seq   uint64
	Token string // insert_deduplication_token

	onDisk   bool
	size     int64 // bytes on disk
	attempts int   // server rejections so far
	spooling bool  // the spool writer is writing it (without the sink's lock)
	noSpool  bool  // its spool file could not be written: it stays in memory
}

// Inserter inserts one block into ClickHouse. Insert must pass b.Token as the
// insert_deduplication_token of the insert.
type Inserter interface {
	Insert(ctx context.Context, b *Block) error
	Close() error
}

// Config configures a Sink.
type Config struct {
	Inserter   Inserter
	SpoolDir   string // directory of the on-disk spool; created if missing
	SpoolBytes int64  // bound on the spool's size on disk; default 1 GiB
	MemBlocks  int    // blocks kept in memory while the server keeps up; later ones are spooled; default 16
	// QueueBlocks is how many more blocks may wait in memory for the spool writer; when that many
	// wait, Submit drops new blocks (counted). Default 16.
	QueueBlocks int
	// TokenPrefix starts every deduplication token; a random instance id and the block's
	// sequence number follow it. Typically the host name.
	TokenPrefix   string
	MinBackoff    time.Duration // default 200 ms
	MaxBackoff    time.Duration // default 30 s
	InsertTimeout time.Duration // per insert; default 60 s
	// MaxRejects is how many times a block the server rejects with an exception (other than a
	// transient one such as too many parts) is tried before it is set aside in SpoolDir/rejected.
	// Default 5.
	MaxRejects int
	Logger     *slog.Logger // default: discard
}

// Stats are the sink's counters since it was opened.
type Stats struct {
	RowsSent      map[string]uint64 // per table
	BlocksSent    map[string]uint64 // per table
	Errors        uint64            // failed insert attempts
	LastError     string
	LastSuccess   time.Time // zero before the first successful insert
	QueuedBlocks  int       // in memory and on disk, not yet sent
	MemBlocks     int
	SpoolBlocks   int
	SpoolBytes    int64
	EvictedBlocks uint64 // forced out of the spool by its bound (or too big for it)
	EvictedRows   uint64
	// OverflowBlocks were dropped by Submit: QueueBlocks blocks already waited for the spool
	// writer (or the sink was closed).
	OverflowBlocks uint64
	OverflowRows   uint64
	RejectedRows   uint64 // rows of blocks the server kept rejecting (kept in SpoolDir/rejected)
}

// DroppedRows is every row the sink has lost: at the spool bound, at Submit, and set aside.
func (st Stats) DroppedRows() uint64 { return st.EvictedRows + st.OverflowRows + st.RejectedRows }

// Sink queues blocks and sends them in order. Submit may be called from many goroutines.
type Sink struct {
	cfg    Config
	log    *slog.Logger
	spool  *spool
	prefix string

	// mu is never held across an insert or a file operation (Close aside), so Submit only ever
	// waits for bookkeeping.
	mu         sync.Mutex
	cond       *sync.Cond // queue, down, spooling, closing and senderDone changes
	queue      []*Block   // ordered by Seq
	inMem      int        // blocks of queue not on disk
	next       uint64
	down       bool // the last insert failed: every block goes to disk
	inflight   *Block
	closing    bool
	senderDone bool
	closed     bool              // Close has spooled what was left: Submit drops
	dropped    map[string]uint64 // rows lost per iface, not yet taken by TakeDropped
	unlogged   Stats             // OverflowBlocks and OverflowRows not yet logged
	stats      Stats

	abort    context.Context // cancelled when Close gives up waiting
	abortFn  context.CancelFunc
	wake     chan struct{} // closed by Close: cut the backoff short once
	finished chan struct{} // closed when the sender returns
	spooled  chan struct{} // closed when the spool writer returns
}

// New opens the spool in cfg.SpoolDir (queuing what an earlier run left there, oldest first)
// and starts sending.
func New(cfg Config) (*Sink, error) {
	if cfg.Inserter == nil {
		return nil, errors.New("sink: no inserter")
	}
	if cfg.SpoolBytes <= 0 {
		cfg.SpoolBytes = 1 << 30
	}
	if cfg.MemBlocks <= 0 {
		cfg.MemBlocks = 16
	}
	if cfg.QueueBlocks <= 0 {
		cfg.QueueBlocks = 16
	}
	if cfg.MinBackoff <= 0 {
		cfg.MinBackoff = 200 * time.Millisecond
	}
	if cfg.MaxBackoff < cfg.MinBackoff {
		cfg.MaxBackoff = 30 * time.Second
	}
	if cfg.InsertTimeout <= 0 {
		cfg.InsertTimeout = time.Minute
	}
	if cfg.MaxRejects <= 0 {
		cfg.MaxRejects = 5
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	sp, old, err := openSpool(cfg.SpoolDir, log)
	if err != nil {
		return nil, err
	}
	var id [6]byte
	if _, err := rand.Read(id[:]); err != nil {
		return nil, fmt.Errorf("cannot make a sink instance id: %w", err)
	}
	s := &Sink{
		cfg: cfg, log: log, spool: sp,
		prefix:   cfg.TokenPrefix + "-" + hex.EncodeToString(id[:]),
		queue:    old,
		dropped:  map[string]uint64{},
		wake:     make(chan struct{}),
		finished: make(chan struct{}),
		spooled:  make(chan struct{}),
	}
	s.stats.RowsSent = map[string]uint64{}
	s.stats.BlocksSent = map[string]uint64{}
	s.cond = sync.NewCond(&s.mu)
	s.abort, s.abortFn = context.WithCancel(context.Background())
	for _, b := range old {
		if b.Seq >= s.next {
			s.next = b.Seq + 1
		}
	}
	if s.next == 0 {
		s.next = 1
	}
	if len(old) > 0 {
		var rows int
		for _, b := range old {
			rows += b.Rows
		}
		log.Info("spooled blocks from an earlier run will be sent first", "dir", cfg.SpoolDir, "blocks", len(old), "rows", rows, "bytes", sp.bytes)
	}
	go s.run()
	go s.spoolWriter()
	return s, nil
}

// Submit queues b in memory and returns: it waits for neither the server nor the disk. When
// QueueBlocks blocks beyond MemBlocks already wait in memory, b is dropped and counted instead
// (a capture_stats block takes the place of the newest data block waiting, which is dropped).
func (s *Sink) Submit(b *Block) {
	s.mu.Lock()
	defer s.mu.Unlock()
	b.Seq = s.next
	s.next++
	if b.Token == "" {
		b.Token = s.prefix + "-" + strconv.FormatUint(b.Seq, 10)
	}
	switch {
	case s.closed:
		s.overflow(b)
		s.log.Error("rows dropped: a block was submitted after the sink was closed", "table", b.Table, "rows", b.Rows, "iface", b.Iface, "seq", b.Seq)
		return
	case s.inMem >= s.cfg.MemBlocks+s.cfg.QueueBlocks:
		if b.Table != statsTable {
			s.overflow(b)
			return
		}
		i := s.newestWaitingData()
		if i < 0 {
			s.overflow(b)
			return
		}
		s.overflow(s.queue[i])
		s.queue = slices.Delete(s.queue, i, i+1)
		s.inMem--
	}
	s.queue = append(s.queue, b)
	s.inMem++
	s.cond.Broadcast()
}

// newestWaitingData returns the index of the newest data block that waits in memory for the
// spool writer (neither being written nor being sent); -1 if none. Called with s.mu held.
func (s *Sink) newestWaitingData() int {
	for i := len(s.queue) - 1; i >= 0; i-- {
		b := s.queue[i]
		if !b.onDisk && !b.spooling && b != s.inflight && b.Table != statsTable {
			return i
		}
	}
	return -1
}

// overflow counts b as dropped at Submit; the spool writer logs the drops (Submit does no I/O).
// Called with s.mu held.
func (s *Sink) overflow(b *Block) {
	s.stats.OverflowBlocks++
	s.stats.OverflowRows += uint64(b.Rows)
	s.unlogged.OverflowBlocks++
	s.unlogged.OverflowRows += uint64(b.Rows)
	s.dropped[b.Iface] += uint64(b.Rows)
	s.cond.Broadcast()
}

// logOverflow logs the drops at Submit since the last call. Called with s.mu held; it releases
// it while logging.
func (s *Sink) logOverflow() {
	if s.unlogged.OverflowBlocks == 0 {
		return
	}
	n, rows := s.unlogged.OverflowBlocks, s.unlogged.OverflowRows
	s.unlogged = Stats{}
	s.mu.Unlock()
	s.log.Warn("rows dropped", "reason", fmt.Sprintf("%d blocks already waited for the spool writer (the disk does not keep up); new blocks dropped", s.cfg.QueueBlocks),
		"blocks", n, "rows", rows)
	s.mu.Lock()
}

// nextToSpool returns the block the spool writer should write next, nil if none: while the
// server is unreachable, every block held in memory, oldest first (the one in flight too, so
// that a crash loses nothing); otherwise those beyond the first MemBlocks. It looks from the
// newest back, where the blocks in memory are, and stops when those before are all kept: the
// spooled blocks of a long outage are not walked through for every block. Called with s.mu held.
func (s *Sink) nextToSpool() *Block {
	if s.inMem == 0 || (!s.down && s.inMem <= s.cfg.MemBlocks) {
		return nil
	}
	var next *Block
	seen := 0 // blocks in memory from i on
	for i := len(s.queue) - 1; i >= 0; i-- {
		b := s.queue[i]
		if b.onDisk {
			continue
		}
		seen++
		before := s.inMem - seen
		if (s.down || before >= s.cfg.MemBlocks) && !b.spooling && !b.noSpool {
			next = b
		}
		if before == 0 || (!s.down && before <= s.cfg.MemBlocks) {
			break
		}
	}
	return next
}

// spoolWriter writes blocks to the spool, one at a time, until the sender has returned. It holds
// s.mu only to choose a block, make room for it and record it, never while writing.
func (s *Sink) spoolWriter() {
	defer close(s.spooled)
	s.mu.Lock()
	defer s.mu.Unlock()
	for {
		s.logOverflow()
		if s.senderDone {
			return
		}
		b := s.nextToSpool()
		if b == nil {
			if s.unlogged.OverflowBlocks == 0 {
				s.cond.Wait()
			}
			continue
		}
		b.spooling = true
		s.mu.Unlock()
		h, err := headerLine(b)
		s.mu.Lock()
		if err != nil {
			s.spoolFailed(b, err)
			continue
		}
		size := fileSize(b, h)
		victims, fits := s.makeRoom(size)
		if !fits {
			b.spooling = false
			if b == s.inflight {
				b.noSpool = true // too big for the spool, and being sent: it stays in memory
			} else {
				s.removeQueued(b)
				s.evict(b)
				victims = append(victims, b)
			}
			s.cond.Broadcast()
		}
		s.mu.Unlock()
		for _, v := range victims {
			s.logEvicted(v, b)
			if v != b {
				s.spool.removeFile(v)
			}
		}
		if fits {
			err = s.spool.writeFile(b, h)
		}
		s.mu.Lock()
		switch {
		case !fits:
		case err != nil:
			s.spool.bytes -= size
			s.spoolFailed(b, err)
		default:
			s.spooledOK(b, size)
		}
	}
}

// spoolFailed keeps b in memory after its spool file could not be written. Called with s.mu held.
func (s *Sink) spoolFailed(b *Block, err error) {
	b.spooling, b.noSpool = false, true
	s.cond.Broadcast()
	s.mu.Unlock()
	s.log.Error("cannot write a block to the spool; keeping it in memory", "dir", s.cfg.SpoolDir, "seq", b.Seq, "err", err)
	s.mu.Lock()
}

// spooledOK records that b's spool file of size bytes (reserved by makeRoom) is written. Called
// with s.mu held.
func (s *Sink) spooledOK(b *Block, size int64) {
	b.spooling = false
	b.onDisk, b.size = true, size
	s.inMem--
	if b != s.inflight {
		b.Native = nil
	}
	s.cond.Broadcast()
}

// makeRoom evicts spooled blocks, oldest data first, until size more bytes fit under the bound,
// and reserves them. It returns the evicted blocks (counted, out of the queue) for the caller to
// delete and log, and false when size does not fit even so (then nothing is reserved). Called
// with s.mu held.
func (s *Sink) makeRoom(size int64) ([]*Block, bool) {
	var victims []*Block
	for s.spool.bytes+size > s.cfg.SpoolBytes {
		i := s.evictionVictim()
		if i < 0 {
			break
		}
		v := s.queue[i]
		s.queue = slices.Delete(s.queue, i, i+1)
		s.spool.bytes -= v.size
		s.evict(v)
		victims = append(victims, v)
	}
	if s.spool.bytes+size > s.cfg.SpoolBytes {
		return victims, false
	}
	s.spool.bytes += size
	return victims, true
}

// evictionVictim returns the index of the oldest spooled block that may be dropped: data rows
// before capture_stats rows (those say what was lost), never the block being sent. -1 if none.
func (s *Sink) evictionVictim() int {
	fallback := -1
	for i, b := range s.queue {
		if !b.onDisk || b == s.inflight {
			continue
		}
		if b.Table != statsTable {
			return i
		}
		if fallback < 0 {
			fallback = i
		}
	}
	return fallback
}

// evict counts b as dropped at the spool bound. Called with s.mu held.
func (s *Sink) evict(b *Block) {
	s.stats.EvictedBlocks++
	s.stats.EvictedRows += uint64(b.Rows)
	s.dropped[b.Iface] += uint64(b.Rows)
}

// logEvicted logs the drop of v, evicted to make room for b (or b itself, too big).
func (s *Sink) logEvicted(v, b *Block) {
	why := "the spool is full (--spool-bytes); oldest block dropped"
	if v == b {
		why = "the spool is full (--spool-bytes) and holds nothing older to drop"
	}
	s.log.Warn("rows dropped", "reason", why, "table", v.Table, "rows", v.Rows, "iface", v.Iface, "seq", v.Seq)
}

// TakeDropped returns the rows lost per interface (spool bound, Submit overflow, rejected
// blocks) since the last call, and resets the counts.
func (s *Sink) TakeDropped() map[string]uint64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := s.dropped
	s.dropped = map[string]uint64{}
	return out
}

// Stats returns a copy of the counters.
func (s *Sink) Stats() Stats {
	s.mu.Lock()
	defer s.mu.Unlock()
	st := s.stats
	st.RowsSent = make(map[string]uint64, len(s.stats.RowsSent))
	for k, v := range s.stats.RowsSent {
		st.RowsSent[k] = v
	}
	st.BlocksSent = make(map[string]uint64, len(s.stats.BlocksSent))
	for k, v := range s.stats.BlocksSent {
		st.BlocksSent[k] = v
	}
	st.QueuedBlocks = len(s.queue)
	st.MemBlocks = s.inMem
	st.SpoolBlocks = st.QueuedBlocks - st.MemBlocks
	st.SpoolBytes = s.spool.bytes
	return st
}

// Close sends what is queued. When ctx ends first, the insert in flight is abandoned and every
// block still in memory is written to the spool, to be sent by the next run. It returns an error
// only for blocks that could be neither sent nor spooled. Blocks submitted after Close are
// dropped (counted).
func (s *Sink) Close(ctx context.Context) error {
	s.mu.Lock()
	s.closing = true
	s.cond.Broadcast()
	s.mu.Unlock()
	close(s.wake)
	select {
	case <-s.finished:
	case <-ctx.Done():
		s.abortFn()
		s.mu.Lock()
		s.cond.Broadcast()
		s.mu.Unlock()
		<-s.finished
	}
	<-s.spooled // it returns once the file it is writing, if any, is done
	s.abortFn()
	s.mu.Lock()
	defer s.mu.Unlock()
	s.closed = true
	var lost int
	for _, b := range slices.Clone(s.queue) {
		if !b.onDisk && !s.spoolNow(b) {
			lost += b.Rows
		}
	}
	errIns := s.cfg.Inserter.Close()
	if n := len(s.queue); n > 0 {
		s.log.Info("blocks left in the spool for the next run", "dir", s.cfg.SpoolDir, "blocks", n, "bytes", s.spool.bytes)
	}
	if lost > 0 {
		return fmt.Errorf("cannot spool %d rows to %s at shutdown", lost, s.cfg.SpoolDir)
	}
	return errIns
}

// spoolNow writes b to the spool, evicting as the bound requires, with s.mu held throughout: for
// Close, once the sender and the spool writer have returned. It reports whether b is on disk.
func (s *Sink) spoolNow(b *Block) bool {
	h, err := headerLine(b)
	if err != nil {
		s.log.Error("cannot write a block to the spool", "dir", s.cfg.SpoolDir, "seq", b.Seq, "err", err)
		return false
	}
	size := fileSize(b, h)
	victims, fits := s.makeRoom(size)
	for _, v := range victims {
		s.logEvicted(v, b)
		s.spool.removeFile(v)
	}
	if !fits {
		s.removeQueued(b)
		s.evict(b)
		s.logEvicted(b, b)
		return false
	}
	if err := s.spool.writeFile(b, h); err != nil {
		s.spool.bytes -= size
		s.log.Error("cannot write a block to the spool", "dir", s.cfg.SpoolDir, "seq", b.Seq, "err", err)
		return false
	}
	s.spooledOK(b, size)
	return true
}

// head waits for the oldest queued block; nil when closing with nothing left, or aborted.
func (s *Sink) head() *Block {
	s.mu.Lock()
	defer s.mu.Unlock()
	for {
		if s.abort.Err() != nil {
			return nil
		}
		if len(s.queue) > 0 {
			s.inflight = s.queue[0]
			return s.inflight
		}
		if s.closing {
			return nil
		}
		s.cond.Wait()
	}
}

// run is the sender.
func (s *Sink) run() {
	defer close(s.finished)
	defer func() {
		s.mu.Lock()
		s.inflight = nil
		s.senderDone = true
		s.cond.Broadcast()
		s.mu.Unlock()
	}()
	backoff := s.cfg.MinBackoff
	wake := s.wake
	for {
		b := s.head()
		if b == nil {
			return
		}
		if b.Native == nil {
			if err := s.spool.load(b); err != nil {
				s.log.Error("cannot read a spooled block; setting it aside", "seq", b.Seq, "err", err)
				s.reject(b)
				continue
			}
		}
		ctx, cancel := context.WithTimeout(s.abort, s.cfg.InsertTimeout)
		err := s.cfg.Inserter.Insert(ctx, b)
		cancel()
		if err == nil {
			s.sent(b)
			backoff = s.cfg.MinBackoff
			continue
		}
		if s.abort.Err() != nil {
			return
		}
		if s.failed(b, err) {
			continue // set aside: try the next block at once
		}
		t := time.NewTimer(backoff)
		select {
		case <-t.C:
			backoff = min(2*backoff, s.cfg.MaxBackoff)
		case <-wake:
			// Shutting down: try again now, then back off from the start.
			t.Stop()
			wake, backoff = nil, s.cfg.MinBackoff
		case <-s.abort.Done():
			t.Stop()
		}
	}
}

// sent records that b is stored and deletes its spool file, if any.
func (s *Sink) sent(b *Block) {
	s.mu.Lock()
	for b.spooling {
		s.cond.Wait()
	}
	wasDown := s.down
	s.down = false
	s.inflight = nil
	s.removeQueued(b)
	onDisk := b.onDisk
	if onDisk {
		s.spool.bytes -= b.size
	}
	b.Native = nil
	s.stats.RowsSent[b.Table] += uint64(b.Rows)
	s.stats.BlocksSent[b.Table]++
	s.stats.LastSuccess = time.Now()
	queued := len(s.queue)
	s.mu.Unlock()
	if onDisk {
		s.spool.removeFile(b)
	}
	if wasDown {
		s.log.Info("ClickHouse is reachable again; sending the spool", "queued", queued)
	}
}

// removeQueued takes b out of the queue. Called with s.mu held.
func (s *Sink) removeQueued(b *Block) {
	if i := slices.Index(s.queue, b); i >= 0 {
		s.queue = slices.Delete(s.queue, i, i+1)
		if !b.onDisk {
			s.inMem--
		}
	}
}

// failed records a failed insert of b; it reports whether b was set aside.
func (s *Sink) failed(b *Block, err error) bool {
	s.mu.Lock()
	s.stats.Errors++
	s.stats.LastError = err.Error()
	wasDown := s.down
	s.down = true
	rejected := false
	if isRejection(err) {
		b.attempts++
		rejected = b.attempts >= s.cfg.MaxRejects
	}
	// The spool writer now moves what waits in memory to disk, so that a crash while the server
	// is down loses nothing.
	s.cond.Broadcast()
	s.mu.Unlock()
	if !wasDown {
		s.log.Warn("cannot insert into ClickHouse; spooling to disk until it answers", "table", b.Table, "rows", b.Rows, "err", err)
	}
	if rejected {
		s.log.Error("ClickHouse keeps rejecting a block; setting it aside", "table", b.Table, "rows", b.Rows, "seq", b.Seq, "attempts", b.attempts, "err", err)
		s.reject(b)
	}
	return rejected
}

// reject moves b to SpoolDir/rejected and counts its rows as lost.
func (s *Sink) reject(b *Block) {
	s.mu.Lock()
	for b.spooling {
		s.cond.Wait()
	}
	s.inflight = nil
	s.removeQueued(b)
	onDisk := b.onDisk
	if onDisk {
		s.spool.bytes -= b.size
	}
	s.stats.RejectedRows += uint64(b.Rows)
	s.dropped[b.Iface] += uint64(b.Rows)
	s.mu.Unlock()
	if err := s.spool.reject(b, onDisk); err != nil {
		s.log.Error("cannot keep a rejected block", "seq", b.Seq, "err", err)
	}
	b.Native = nil
}

func sortBlocks(bs []*Block) {
	sort.Slice(bs, func(i, j int) bool { return bs[i].Seq < bs[j].Seq })
}
