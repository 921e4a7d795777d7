// Package sink carries rows from the collector to ClickHouse: Native blocks are queued in memory,
// inserted in the order they were submitted, each with an insert deduplication token so that a
// block retried after a lost answer is stored once, and retried with backoff while the server is
// unreachable. Blocks that cannot be sent wait in a bounded on-disk spool (one file per block)
// that survives restarts; what the bound forces out is counted per interface and logged, so that
// capture_stats can say which rows never reached the store.
//
// The ClickHouse side is an Inserter; Open builds one on github.com/ClickHouse/clickhouse-go/v2
// (native protocol or HTTP, chosen by URL).
package sink

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"sort"
	"strconv"
	"sync"
	"time"
)

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
	MemBlocks  int    // blocks queued in memory before new ones go to the spool; default 16
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
	RejectedRows  uint64 // rows of blocks the server kept rejecting (kept in SpoolDir/rejected)
}

// Sink queues blocks and sends them in order. Submit may be called from many goroutines.
type Sink struct {
	cfg    Config
	log    *slog.Logger
	spool  *spool
	prefix string

	mu       sync.Mutex
	cond     *sync.Cond
	queue    []*Block // ordered by Seq
	next     uint64
	down     bool // the last insert failed: new blocks go to disk
	inflight *Block
	closing  bool
	dropped  map[string]uint64 // rows lost per iface, not yet taken by TakeDropped
	stats    Stats

	abort    context.Context // cancelled when Close gives up waiting
	abortFn  context.CancelFunc
	wake     chan struct{} // closed by Close: cut the backoff short once
	finished chan struct{}
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
	return s, nil
}

// Submit queues b. It does not wait for the server: when the memory queue is full or the server
// is unreachable, b goes to the spool, which may force older blocks out (counted, logged).
func (s *Sink) Submit(b *Block) {
	s.mu.Lock()
	defer s.mu.Unlock()
	b.Seq = s.next
	s.next++
	if b.Token == "" {
		b.Token = s.prefix + "-" + strconv.FormatUint(b.Seq, 10)
	}
	if !s.down && s.memCount() < s.cfg.MemBlocks {
		s.queue = append(s.queue, b)
	} else if s.toDisk(b) {
		s.queue = append(s.queue, b)
	}
	s.cond.Broadcast()
}

func (s *Sink) memCount() int {
	n := 0
	for _, b := range s.queue {
		if !b.onDisk {
			n++
		}
	}
	return n
}

// toDisk writes b to the spool, evicting the oldest spooled blocks as the bound requires. It
// reports false when b itself could not be kept (counted as dropped). Called with s.mu held.
func (s *Sink) toDisk(b *Block) bool {
	size := spoolSize(b)
	for s.spool.bytes+size > s.cfg.SpoolBytes {
		victim := s.evictionVictim()
		if victim < 0 {
			break
		}
		v := s.queue[victim]
		s.queue = append(s.queue[:victim], s.queue[victim+1:]...)
		s.spool.remove(v)
		s.drop(v, "the spool is full (--spool-bytes); oldest block dropped")
	}
	if s.spool.bytes+size > s.cfg.SpoolBytes {
		s.drop(b, "the spool is full (--spool-bytes) and holds nothing older to drop")
		return false
	}
	if err := s.spool.write(b); err != nil {
		// The disk failed us; keep the block in memory rather than lose it.
		s.log.Error("cannot write a block to the spool; keeping it in memory", "dir", s.cfg.SpoolDir, "err", err)
		return true
	}
	if b != s.inflight {
		b.Native = nil
	}
	return true
}

// evictionVictim returns the index of the oldest spooled block that may be dropped: data rows
// before capture_stats rows (those say what was lost), never the block being sent. -1 if none.
func (s *Sink) evictionVictim() int {
	fallback := -1
	for i, b := range s.queue {
		if !b.onDisk || b == s.inflight {
			continue
		}
		if b.Table != "capture_stats" {
			return i
		}
		if fallback < 0 {
			fallback = i
		}
	}
	return fallback
}

func (s *Sink) drop(b *Block, why string) {
	s.stats.EvictedBlocks++
	s.stats.EvictedRows += uint64(b.Rows)
	s.dropped[b.Iface] += uint64(b.Rows)
	s.log.Warn("rows dropped", "reason", why, "table", b.Table, "rows", b.Rows, "iface", b.Iface, "seq", b.Seq)
}

// TakeDropped returns the rows lost per interface (spool bound, rejected blocks) since the last
// call, and resets the counts.
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
	st.MemBlocks = s.memCount()
	st.SpoolBlocks = st.QueuedBlocks - st.MemBlocks
	st.SpoolBytes = s.spool.bytes
	return st
}

// Close sends what is queued. When ctx ends first, the insert in flight is abandoned and every
// block still in memory is written to the spool, to be sent by the next run. It returns an error
// only for blocks that could be neither sent nor spooled.
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
	s.abortFn()
	s.mu.Lock()
	defer s.mu.Unlock()
	var lost int
	for _, b := range s.queue {
		if b.onDisk {
			continue
		}
		s.toDisk(b)
		if !b.onDisk {
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

func (s *Sink) run() {
	defer close(s.finished)
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
			s.mu.Lock()
			s.inflight = nil
			s.mu.Unlock()
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

func (s *Sink) sent(b *Block) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.down {
		s.log.Info("ClickHouse is reachable again; sending the spool", "queued", len(s.queue)-1)
	}
	s.down = false
	s.inflight = nil
	s.removeQueued(b)
	if b.onDisk {
		s.spool.remove(b)
	}
	b.Native = nil
	s.stats.RowsSent[b.Table] += uint64(b.Rows)
	s.stats.BlocksSent[b.Table]++
	s.stats.LastSuccess = time.Now()
}

func (s *Sink) removeQueued(b *Block) {
	for i, q := range s.queue {
		if q == b {
			s.queue = append(s.queue[:i], s.queue[i+1:]...)
			return
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
	if !wasDown {
		s.log.Warn("cannot insert into ClickHouse; spooling to disk until it answers", "table", b.Table, "rows", b.Rows, "err", err)
		// Move what waits in memory to disk, so that a crash while the server is down loses nothing.
		for _, q := range s.queue {
			if !q.onDisk {
				s.toDisk(q)
			}
		}
	}
	s.mu.Unlock()
	if rejected {
		s.log.Error("ClickHouse keeps rejecting a block; setting it aside", "table", b.Table, "rows", b.Rows, "seq", b.Seq, "attempts", b.attempts, "err", err)
		s.reject(b)
	}
	return rejected
}

// reject moves b to SpoolDir/rejected and counts its rows as lost.
func (s *Sink) reject(b *Block) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.inflight = nil
	s.removeQueued(b)
	if err := s.spool.reject(b); err != nil {
		s.log.Error("cannot keep a rejected block", "seq", b.Seq, "err", err)
	}
	b.Native = nil
	s.stats.RejectedRows += uint64(b.Rows)
	s.dropped[b.Iface] += uint64(b.Rows)
}

func sortBlocks(bs []*Block) {
	sort.Slice(bs, func(i, j int) bool { return bs[i].Seq < bs[j].Seq })
}
