package sink

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ClickHouse/ch-go/proto"
	"github.com/ClickHouse/clickhouse-go/v2"

	"github.com/dnsloss/dnsloss/internal/dnsrow"
)

// fakeInserter records what it was given; while fail is set it returns that error.
type fakeInserter struct {
	mu     sync.Mutex
	fail   error
	got    []string // "table/token/rows"
	calls  int
	called chan struct{}
}

func newFake() *fakeInserter { return &fakeInserter{called: make(chan struct{}, 1000)} }

func (f *fakeInserter) Insert(ctx context.Context, b *Block) error {
	f.mu.Lock()
	defer func() {
		f.mu.Unlock()
		f.called <- struct{}{}
	}()
	f.calls++
	if f.fail != nil {
		return f.fail
	}
	if len(b.Native) == 0 {
		return errors.New("block without data")
	}
	f.got = append(f.got, fmt.Sprintf("%s/%s/%d/%s", b.Table, b.Token, b.Rows, b.Native))
	return nil
}
func (f *fakeInserter) Close() error { return nil }
func (f *fakeInserter) setFail(err error) {
	f.mu.Lock()
	f.fail = err
	f.mu.Unlock()
}
func (f *fakeInserter) received() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.got...)
}

// waitFor polls cond until it holds; the deadline only turns a hang into a failure.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func block(table, iface, data string, rows int) *Block {
	return &Block{Table: table, Iface: iface, Rows: rows, Native: []byte(data)}
}

func newSink(t *testing.T, f *fakeInserter, dir string, bound int64) *Sink {
	t.Helper()
	s, err := New(Config{Inserter: f, SpoolDir: dir, SpoolBytes: bound, MemBlocks: 2, TokenPrefix: "h",
		MinBackoff: time.Millisecond, MaxBackoff: 5 * time.Millisecond, MaxRejects: 3})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func spoolFiles(t *testing.T, dir string) []string {
	t.Helper()
	m, err := filepath.Glob(filepath.Join(dir, "*.block"))
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// payloads returns the data part of each received "table/token/rows/data" record.
func payloads(got []string) []string {
	var out []string
	for _, g := range got {
		out = append(out, strings.SplitN(g, "/", 4)[3])
	}
	return out
}

func TestOrderWhileDownThenUp(t *testing.T) {
	dir := t.TempDir()
	f := newFake()
	f.setFail(errors.New("connection refused"))
	s := newSink(t, f, dir, 1<<20)
	for i := 1; i <= 5; i++ {
		s.Submit(block("dns_messages", "eth0", fmt.Sprintf("b%d", i), i))
	}
	waitFor(t, "a failed insert", func() bool { return s.Stats().Errors >= 2 })
	// The spool writer moves every block to disk while the server is down.
	waitFor(t, "5 spool files while down", func() bool { return len(spoolFiles(t, dir)) == 5 })
	f.setFail(nil)
	waitFor(t, "all blocks sent", func() bool { return len(f.received()) == 5 })
	if err := s.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	got := payloads(f.received())
	if want := []string{"b1", "b2", "b3", "b4", "b5"}; !reflect.DeepEqual(got, want) {
		t.Errorf("order: got %v, want %v", got, want)
	}
	if n := len(spoolFiles(t, dir)); n != 0 {
		t.Errorf("spool files after sending: got %d, want 0", n)
	}
	st := s.Stats()
	if st.RowsSent["dns_messages"] != 15 || st.BlocksSent["dns_messages"] != 5 {
		t.Errorf("stats: got %d rows in %d blocks, want 15 in 5", st.RowsSent["dns_messages"], st.BlocksSent["dns_messages"])
	}
	if st.LastSuccess.IsZero() {
		t.Error("LastSuccess not set")
	}
}

func TestRestartKeepsOrderAndTokens(t *testing.T) {
	dir := t.TempDir()
	f := newFake()
	f.setFail(errors.New("connection refused"))
	s := newSink(t, f, dir, 1<<20)
	var tokens []string
	for i := 1; i <= 4; i++ {
		b := block("dns_messages", "eth0", fmt.Sprintf("b%d", i), 1)
		s.Submit(b)
		tokens = append(tokens, b.Token)
	}
	waitFor(t, "a failed insert", func() bool { return s.Stats().Errors >= 1 })
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if err := s.Close(ctx); err != nil {
		t.Fatalf("close: %v", err)
	}
	if n := len(spoolFiles(t, dir)); n != 4 {
		t.Fatalf("spool files after shutdown: got %d, want 4", n)
	}

	f2 := newFake()
	s2 := newSink(t, f2, dir, 1<<20)
	later := block("dns_messages", "eth0", "b5", 1)
	s2.Submit(later)
	waitFor(t, "all blocks sent", func() bool { return len(f2.received()) == 5 })
	s2.Close(context.Background())
	var want []string
	for i, tok := range tokens {
		want = append(want, fmt.Sprintf("dns_messages/%s/1/b%d", tok, i+1))
	}
	want = append(want, fmt.Sprintf("dns_messages/%s/1/b5", later.Token))
	if got := f2.received(); !reflect.DeepEqual(got, want) {
		t.Errorf("after restart: got %v, want %v", got, want)
	}
	if later.Seq != 5 {
		t.Errorf("sequence after restart: got %d, want 5", later.Seq)
	}
	if later.Token == tokens[0][:len(tokens[0])-1]+"5" {
		t.Errorf("token %q reuses the first run's instance id", later.Token)
	}
}

func TestSpoolBoundEvictsOldestData(t *testing.T) {
	dir := t.TempDir()
	f := newFake()
	f.setFail(errors.New("connection refused"))
	// Each file is the magic line, a ~100-byte header and 1000 data bytes.
	data := string(make([]byte, 1000))
	s, err := New(Config{Inserter: f, SpoolDir: dir, SpoolBytes: 3500, MemBlocks: 1, TokenPrefix: "h",
		MinBackoff: time.Hour, MaxBackoff: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	s.Submit(block("capture_stats", "eth0", data, 1)) // seq 1: goes out first (in flight)
	waitFor(t, "the first insert to fail", func() bool { return s.Stats().Errors == 1 })
	s.Submit(block("capture_stats", "eth0", data, 1)) // seq 2
	s.Submit(block("dns_messages", "eth0", data, 10)) // seq 3
	s.Submit(block("dns_messages", "eth1", data, 20)) // seq 4: needs room, evicts seq 3
	s.Submit(block("dns_messages", "eth1", data, 30)) // seq 5: evicts seq 4
	waitFor(t, "the spool writer to write every block", func() bool { return s.Stats().MemBlocks == 0 })
	files := spoolFiles(t, dir)
	var names []string
	for _, p := range files {
		names = append(names, filepath.Base(p))
	}
	want := []string{blockName(1), blockName(2), blockName(5)}
	if !reflect.DeepEqual(names, want) {
		t.Errorf("spool after eviction: got %v, want %v", names, want)
	}
	if got, want := s.TakeDropped(), map[string]uint64{"eth0": 10, "eth1": 20}; !reflect.DeepEqual(got, want) {
		t.Errorf("dropped rows: got %v, want %v", got, want)
	}
	if got := s.TakeDropped(); len(got) != 0 {
		t.Errorf("dropped rows after taking them: got %v, want none", got)
	}
	st := s.Stats()
	if st.EvictedBlocks != 2 || st.EvictedRows != 30 || st.SpoolBlocks != 3 {
		t.Errorf("stats: got %d evicted blocks, %d rows, %d spooled; want 2, 30, 3", st.EvictedBlocks, st.EvictedRows, st.SpoolBlocks)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Millisecond)
	defer cancel()
	s.Close(ctx)
}

func TestRejectedBlockIsSetAside(t *testing.T) {
	dir := t.TempDir()
	f := newFake()
	f.setFail(&clickhouse.Exception{Code: 60, Message: "Table default.nope does not exist"})
	s := newSink(t, f, dir, 1<<20)
	s.Submit(block("nope", "eth0", "x", 7))
	waitFor(t, "the block to be rejected", func() bool { return s.Stats().RejectedRows == 7 })
	f.setFail(nil)
	s.Submit(block("dns_messages", "eth0", "y", 1))
	waitFor(t, "the next block", func() bool { return len(f.received()) == 1 })
	s.Close(context.Background())
	if f.calls != 4 {
		t.Errorf("insert calls: got %d, want 4 (3 rejections, then the next block)", f.calls)
	}
	rej, _ := filepath.Glob(filepath.Join(dir, "rejected", "*.block"))
	if len(rej) != 1 {
		t.Errorf("rejected files: got %d, want 1", len(rej))
	}
	if got := s.TakeDropped()["eth0"]; got != 7 {
		t.Errorf("dropped rows: got %d, want 7", got)
	}
}

func TestUnreadableSpoolFileIsSetAside(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, blockName(3)), []byte("garbage"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, ".tmp-"+blockName(4)), []byte("half"), 0o600); err != nil {
		t.Fatal(err)
	}
	f := newFake()
	s := newSink(t, f, dir, 1<<20)
	s.Close(context.Background())
	if n := len(spoolFiles(t, dir)); n != 0 {
		t.Errorf("spool files: got %d, want 0", n)
	}
	if _, err := os.Stat(filepath.Join(dir, "rejected", blockName(3))); err != nil {
		t.Errorf("garbage file not moved to rejected/: %v", err)
	}
	if _, err := os.Stat(filepath.Join(dir, ".tmp-"+blockName(4))); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("unfinished write not removed: %v", err)
	}
}

func TestDecodeNative(t *testing.T) {
	b := dnsrow.NewBatch()
	src := netip.MustParseAddr("10.53.0.2").As16()
	dst := netip.MustParseAddr("2001:db8::1").As16()
	m := dnsrow.Message{Host: []byte("h1"), Iface: []byte("eth0"), Source: []byte("afpacket:eth0"), TS: 1700000000123456789,
		Direction: dnsrow.DirOut, IPVersion: 4, SrcIP: src, DstIP: dst, SrcPort: 40000, DstPort: 53,
		Transport: dnsrow.TransportUDP, ID: 0xbeef, RD: 1, QName: []byte("www.Example.com"), QType: 1, QClass: 1,
		QDCount: 1, EDNSOptions: []uint16{10, 12}, Size: 44}
	b.Append(&m)
	m.QName, m.Direction, m.EDNSOptions = []byte("b"), dnsrow.DirIn, nil
	b.Append(&m)
	data, err := b.EncodeNative(nil)
	if err != nil {
		t.Fatal(err)
	}
	cols, err := DecodeNative(data)
	if err != nil {
		t.Fatal(err)
	}
	byName := map[string]any{}
	for _, c := range cols {
		byName[c.Name] = c.Values
	}
	if len(cols) != len(b.Input()) {
		t.Errorf("columns: got %d, want %d", len(cols), len(b.Input()))
	}
	tests := []struct {
		col  string
		want any
	}{
		{"host", []string{"h1", "h1"}},
		{"direction", []string{"out", "in"}},
		{"qname", []string{"www.Example.com", "b"}},
		{"id", []uint16{0xbeef, 0xbeef}},
		{"src_ip", []proto.IPv6{proto.IPv6(src), proto.IPv6(src)}},
		{"dst_ip", []proto.IPv6{proto.IPv6(dst), proto.IPv6(dst)}},
		{"edns_options", [][]uint16{{10, 12}, nil}},
		{"size", []uint32{44, 44}},
	}
	for _, tc := range tests {
		t.Run(tc.col, func(t *testing.T) {
			if got := byName[tc.col]; !reflect.DeepEqual(got, tc.want) {
				t.Errorf("got %#v, want %#v", got, tc.want)
			}
		})
	}
	ts, ok := byName["ts"].([]time.Time)
	if !ok || len(ts) != 2 || ts[0].UnixNano() != 1700000000123456789 {
		t.Errorf("ts: got %v, want 1700000000123456789 ns twice", byName["ts"])
	}
	if _, err := DecodeNative(data[:len(data)/2]); err == nil {
		t.Error("a cut block decoded without error")
	}
}

func TestOptions(t *testing.T) {
	tests := []struct {
		url, user, pass    string
		wantAddr, wantDB   string
		wantUser, wantPass string
		wantHTTP, wantTLS  bool
		wantErr            bool
	}{
		{url: "clickhouse://ch1/dns", wantAddr: "ch1:9000", wantDB: "dns", wantUser: "default"},
		{url: "clickhouse://u:p@ch1:9001", wantAddr: "ch1:9001", wantDB: "default", wantUser: "u", wantPass: "p"},
		{url: "clickhouses://ch1/x", wantAddr: "ch1:9440", wantDB: "x", wantUser: "default", wantTLS: true},
		{url: "http://127.0.0.1:8124", user: "w", pass: "s", wantAddr: "127.0.0.1:8124", wantDB: "default", wantUser: "w", wantPass: "s", wantHTTP: true},
		{url: "https://ch", wantAddr: "ch:8443", wantDB: "default", wantUser: "default", wantHTTP: true, wantTLS: true},
		{url: "ftp://ch", wantErr: true},
		{url: "ch1:9000", wantErr: true},
	}
	for _, tc := range tests {
		t.Run(tc.url, func(t *testing.T) {
			o, err := ServerConfig{URL: tc.url, User: tc.user, Password: tc.pass}.Options()
			if tc.wantErr {
				if err == nil {
					t.Fatal("got no error, want one")
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if o.Addr[0] != tc.wantAddr || o.Auth.Database != tc.wantDB || o.Auth.Username != tc.wantUser || o.Auth.Password != tc.wantPass {
				t.Errorf("got %s db %s user %s pass %s, want %s db %s user %s pass %s", o.Addr[0], o.Auth.Database, o.Auth.Username, o.Auth.Password,
					tc.wantAddr, tc.wantDB, tc.wantUser, tc.wantPass)
			}
			if (o.Protocol == clickhouse.HTTP) != tc.wantHTTP || (o.TLS != nil) != tc.wantTLS {
				t.Errorf("got protocol %s TLS %v, want HTTP %v TLS %v", o.Protocol, o.TLS != nil, tc.wantHTTP, tc.wantTLS)
			}
		})
	}
	if got := Redact("clickhouse://u:secret@h/db"); got != "clickhouse://u:xxxxx@h/db" {
		t.Errorf("Redact: got %s", got)
	}
}

// heldInserter stands for a server that holds every request until release is closed. Each
// insert is announced on entered (when there is room).
type heldInserter struct {
	release chan struct{}
	entered chan *Block
	mu      sync.Mutex
	got     []string // "table/token/rows/data"
}

func newHeld() *heldInserter {
	return &heldInserter{release: make(chan struct{}), entered: make(chan *Block, 1000)}
}

func (h *heldInserter) Insert(ctx context.Context, b *Block) error {
	select {
	case h.entered <- b:
	default:
	}
	select {
	case <-h.release:
	case <-ctx.Done():
		return ctx.Err()
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	h.got = append(h.got, fmt.Sprintf("%s/%s/%d/%s", b.Table, b.Token, b.Rows, b.Native))
	return nil
}
func (h *heldInserter) Close() error { return nil }
func (h *heldInserter) received() []string {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]string(nil), h.got...)
}

// within runs fn in a goroutine and fails the test if it has not returned after a minute: a
// guard against a hang, not a measure of speed.
func within(t *testing.T, what string, fn func()) {
	t.Helper()
	done := make(chan struct{})
	go func() {
		defer close(done)
		fn()
	}()
	select {
	case <-done:
	case <-time.After(time.Minute):
		t.Fatalf("%s did not return", what)
	}
}

// TestSubmitDoesNotWaitForAHeldServer: while the server holds the insert in flight, Submit of
// many more blocks than MemBlocks returns; the blocks beyond MemBlocks go to the spool, and once
// the server answers every block arrives exactly once, in order.
func TestSubmitDoesNotWaitForAHeldServer(t *testing.T) {
	const n, mem = 50, 2
	dir := t.TempDir()
	h := newHeld()
	s, err := New(Config{Inserter: h, SpoolDir: dir, MemBlocks: mem, QueueBlocks: n, TokenPrefix: "h",
		MinBackoff: time.Millisecond, MaxBackoff: 5 * time.Millisecond, InsertTimeout: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	var blocks []*Block
	for i := 1; i <= n; i++ {
		blocks = append(blocks, block("dns_messages", "eth0", fmt.Sprintf("b%d", i), i))
	}
	s.Submit(blocks[0])
	within(t, "the first insert", func() { <-h.entered })
	within(t, "Submit while the server holds the insert", func() {
		for _, b := range blocks[1:] {
			s.Submit(b)
		}
	})
	waitFor(t, "the blocks beyond MemBlocks in the spool", func() bool { return s.Stats().SpoolBlocks == n-mem })
	if st := s.Stats(); st.MemBlocks != mem || st.OverflowBlocks != 0 || len(h.received()) != 0 {
		t.Errorf("while held: got %d blocks in memory, %d dropped, %d sent; want %d, 0, 0",
			st.MemBlocks, st.OverflowBlocks, len(h.received()), mem)
	}
	if got := len(spoolFiles(t, dir)); got != n-mem {
		t.Errorf("spool files while held: got %d, want %d", got, n-mem)
	}
	close(h.release)
	waitFor(t, "every block sent", func() bool { return len(h.received()) == n })
	if err := s.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	var want []string
	for i, b := range blocks {
		want = append(want, fmt.Sprintf("dns_messages/%s/%d/b%d", b.Token, i+1, i+1))
	}
	if got := h.received(); !reflect.DeepEqual(got, want) {
		t.Errorf("received: got %v, want %v", got, want)
	}
	if n := len(spoolFiles(t, dir)); n != 0 {
		t.Errorf("spool files after sending: got %d, want 0", n)
	}
	if got := s.TakeDropped(); len(got) != 0 {
		t.Errorf("dropped rows: got %v, want none", got)
	}
}

// TestSubmitDropsWhenTheSpoolFallsBehind: with the server held and the spool writer stuck on the
// disk, Submit still returns; once QueueBlocks blocks wait beyond MemBlocks, new data blocks are
// dropped and counted against their interface, and a capture_stats block takes the place of the
// newest data block waiting. What was kept arrives once released. A block submitted after Close
// is counted too.
func TestSubmitDropsWhenTheSpoolFallsBehind(t *testing.T) {
	dir := t.TempDir()
	h := newHeld()
	s, err := New(Config{Inserter: h, SpoolDir: dir, MemBlocks: 1, QueueBlocks: 2, TokenPrefix: "h",
		MinBackoff: time.Millisecond, MaxBackoff: 5 * time.Millisecond, InsertTimeout: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	writing := make(chan *Block, 100)
	disk := make(chan struct{})
	s.spool.hold = func(b *Block) {
		writing <- b
		<-disk
	}
	s.Submit(block("dns_messages", "eth0", "b1", 1))
	s.Submit(block("dns_messages", "eth0", "b2", 2)) // beyond MemBlocks: to the spool
	var w *Block
	within(t, "the spool writer to start on a block", func() { w = <-writing })
	if w.Seq != 2 {
		t.Fatalf("spool writer writes block %d, want 2", w.Seq)
	}
	within(t, "Submit while the server and the disk are held", func() {
		s.Submit(block("dns_messages", "eth1", "b3", 4))  // waits in memory: 3 = MemBlocks+QueueBlocks
		s.Submit(block("dns_messages", "eth1", "b4", 8))  // dropped
		s.Submit(block("capture_stats", "", "stats", 1))  // takes the place of b3
		s.Submit(block("dns_messages", "eth0", "b6", 16)) // dropped
	})
	if got, want := s.TakeDropped(), map[string]uint64{"eth1": 12, "eth0": 16}; !reflect.DeepEqual(got, want) {
		t.Errorf("dropped rows: got %v, want %v", got, want)
	}
	if st := s.Stats(); st.OverflowBlocks != 3 || st.OverflowRows != 28 || st.DroppedRows() != 28 {
		t.Errorf("stats: got %d blocks, %d rows dropped at Submit (%d in all), want 3, 28 (28)", st.OverflowBlocks, st.OverflowRows, st.DroppedRows())
	}
	close(disk)
	close(h.release)
	waitFor(t, "the kept blocks sent", func() bool { return len(h.received()) == 3 })
	if err := s.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	if got, want := payloads(h.received()), []string{"b1", "b2", "stats"}; !reflect.DeepEqual(got, want) {
		t.Errorf("received: got %v, want %v", got, want)
	}
	if n := len(spoolFiles(t, dir)); n != 0 {
		t.Errorf("spool files after sending: got %d, want 0", n)
	}
	s.Submit(block("dns_messages", "eth0", "late", 5))
	if got := s.TakeDropped()["eth0"]; got != 5 {
		t.Errorf("rows submitted after Close: got %d dropped, want 5", got)
	}
}

// TestNextToSpool: which block the spool writer takes next. The queue is written oldest first,
// one letter a block: m in memory, d on disk, s being written, n in memory after a failed write.
func TestNextToSpool(t *testing.T) {
	tests := []struct {
		name  string
		queue string
		mem   int
		down  bool
		want  int // index in queue; -1 for none
	}{
		{"up, memory not full", "mm", 2, false, -1},
		{"up, the first beyond MemBlocks", "mmmm", 2, false, 2},
		{"up, new block behind the spool", "mddm", 1, false, 3},
		{"up, kept blocks apart", "mmdm", 2, false, 3},
		{"up, one being written", "mmsm", 2, false, 3},
		{"up, only a failed write beyond", "mmn", 2, false, -1},
		{"down, oldest in memory first", "dmdm", 16, true, 1},
		{"down, the one in flight too", "mddm", 16, true, 0},
		{"down, after one being written", "sm", 16, true, 1},
		{"down, past a failed write", "ndm", 16, true, 2},
		{"down, all on disk", "ddd", 16, true, -1},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := &Sink{cfg: Config{MemBlocks: tc.mem}, down: tc.down}
			for i, c := range tc.queue {
				b := &Block{Seq: uint64(i), onDisk: c == 'd', spooling: c == 's', noSpool: c == 'n'}
				s.queue = append(s.queue, b)
				if !b.onDisk {
					s.inMem++
				}
			}
			got := -1
			if b := s.nextToSpool(); b != nil {
				got = int(b.Seq)
			}
			if got != tc.want {
				t.Errorf("got block %d, want %d", got, tc.want)
			}
		})
	}
}
