//go:build !nochdb

// Package chembed is the embedded ClickHouse engine (chDB, loaded from libchdb.so through
// github.com/chdb-io/chdb-go) behind the chstore.Store interface.
//
// chDB allows one engine per process and one process per data directory. Open takes an exclusive
// lock on the directory first, so a second process gets an error that names the holder instead
// of chDB's bare "could not create a chdb connection". chDB also replaces Go's handlers for
// SIGSEGV, SIGBUS and friends when it connects, which would turn a Go nil-pointer panic into a
// silent hang; Open saves the handlers before connecting and restores them after.
package chembed

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"

	chdbpurego "github.com/chdb-io/chdb-go/chdb-purego"
	// chdblib must be initialized before chdb-go's loader: it locates libchdb.so.
	_ "github.com/dnsloss/dnsloss/internal/chdblib"

	"github.com/dnsloss/dnsloss/internal/chstore"
)

// ErrLocked means another process holds the data directory.
var ErrLocked = errors.New("data directory is in use by another process")

// LockFile is the name of the lock file inside the data directory.
const LockFile = "dnsloss.lock"

// Store is an open embedded engine. Its methods may be called from several goroutines; queries
// run one at a time.
type Store struct {
	dir  string
	lock *os.File
	mu   sync.Mutex
	conn chdbpurego.ChdbConn
	seq  uint64 // makes parameter names unique per query (SET param_x lasts for the session)
}

var opened sync.Mutex // one engine per process

// Open opens (creating if needed) the data directory dir and starts the engine in it.
func Open(dir string) (*Store, error) {
	if !opened.TryLock() {
		return nil, fmt.Errorf("cannot open %q: this process already runs an embedded engine (chDB allows one per process)", dir)
	}
	s, err := open(dir)
	if err != nil {
		opened.Unlock()
		return nil, err
	}
	return s, nil
}

func open(dir string) (*Store, error) {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, fmt.Errorf("cannot resolve data directory %q: %w", dir, err)
	}
	if err := os.MkdirAll(abs, 0o755); err != nil {
		return nil, fmt.Errorf("cannot create data directory %q: %w (choose another with --db)", dir, err)
	}
	lock, err := lockDir(abs)
	if err != nil {
		return nil, err
	}
	if err := detachStdin(); err != nil {
		lock.Close()
		return nil, err
	}
	saved := saveSignalHandlers()
	conn, err := chdbpurego.NewConnectionFromConnString(abs)
	restoreSignalHandlers(saved)
	if err != nil {
		lock.Close()
		return nil, fmt.Errorf("cannot start the embedded engine in %q: %w", dir, err)
	}
	s := &Store{dir: abs, lock: lock, conn: conn}
	if _, err := s.runLocked(NoDeduplication, nil, "TSV", true); err != nil {
		conn.Close()
		lock.Close()
		return nil, fmt.Errorf("cannot configure the embedded engine in %q: %w", dir, err)
	}
	return s, nil
}

// detachStdin points the process's file descriptor 0 at /dev/null before the engine starts. The
// engine takes whatever waits on stdin as the data of an INSERT (clickhouse-local's way): with a
// pipe on stdin every insert failed ("Cannot read all data", or "both inlined and external data"
// for an INSERT ... VALUES), and the engine swallowed the pipe, so a shell loop such as
// `while read f; do analyzer ingest "$f"; done < list` stopped after its first file. Nothing in
// this project reads stdin.
func detachStdin() error {
	null, err := os.Open(os.DevNull)
	if err != nil {
		return fmt.Errorf("cannot detach stdin from the embedded engine: %w", err)
	}
	defer null.Close()
	if err := syscall.Dup3(int(null.Fd()), 0, 0); err != nil {
		return fmt.Errorf("cannot detach stdin from the embedded engine: %w", err)
	}
	return nil
}

// NoDeduplication is the engine's session default for inserts: the tables keep a deduplication
// window (schema 0005) so that a batch retried with the same insert_deduplication_token is
// stored once, but an insert without a token must not be dropped because its rows equal those of
// a recent one (ingest --replace deletes a file's rows and inserts them again). A request that
// carries a token turns deduplication back on for itself (see package chhttp).
const NoDeduplication = "SET deduplicate_insert = 'disable'"

// lockDir takes an exclusive, non-blocking flock on dir/dnsloss.lock and writes our pid into it.
// The kernel releases the lock when the process dies, however it dies.
func lockDir(dir string) (*os.File, error) {
	path := filepath.Join(dir, LockFile)
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return nil, fmt.Errorf("cannot write to data directory %q: %w (choose another with --db, or fix its permissions)", dir, err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		holder, _ := os.ReadFile(path)
		f.Close()
		who := strings.TrimSpace(string(holder))
		if who == "" {
			who = "an unknown process"
		}
		hint := "stop it or use another --db"
		if strings.Contains(who, " serve") {
			hint = "stop it, use another --db, or query it through that process with --clickhouse http://ADDRESS (its --listen)"
		}
		return nil, fmt.Errorf("cannot open data directory %q: %w: %s; %s", dir, ErrLocked, who, hint)
	}
	if err := f.Truncate(0); err == nil {
		fmt.Fprintf(f, "pid %d (%s)\n", os.Getpid(), strings.Join(os.Args, " "))
	}
	return f, nil
}

// Exclusive implements chstore.Exclusive: the data directory is locked for this process.
func (s *Store) Exclusive() bool { return true }

// Dir is the data directory.
func (s *Store) Dir() string { return s.dir }

// Describe implements chstore.Store.
func (s *Store) Describe() string { return "embedded engine in " + s.dir }

// Close stops the engine and releases the directory.
func (s *Store) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.conn == nil {
		return nil
	}
	s.conn.Close()
	s.conn = nil
	s.lock.Close()
	opened.Unlock()
	return nil
}

// cleanError turns chDB's doubled "Code: N. DB::Exception: Code: N. DB::Exception: msg" into one.
func cleanError(err error) error {
	msg := err.Error()
	const marker = "DB::Exception: "
	if i := strings.Index(msg, marker); i >= 0 {
		rest := msg[i+len(marker):]
		if j := strings.Index(rest, marker); j >= 0 && strings.HasPrefix(rest, "Code: ") {
			msg = msg[:i+len(marker)] + rest[j+len(marker):]
		}
	}
	return errors.New(strings.TrimSpace(msg))
}

// bind renames the parameters of sql to names used once in this session and returns the SET
// statements that give them their values.
func (s *Store) bind(sql string, params chstore.Params, escape bool) (string, string, error) {
	if len(params) == 0 {
		return sql, "", nil
	}
	names, err := params.Names()
	if err != nil {
		return "", "", err
	}
	s.seq++
	suffix := "_q" + strconv.FormatUint(s.seq, 10)
	var set strings.Builder
	for _, n := range names {
		unique := n + suffix
		sql = strings.ReplaceAll(sql, "{"+n+":", "{"+unique+":")
		v := params[n]
		if escape {
			v = chstore.EscapeParam(v)
		}
		fmt.Fprintf(&set, "SET param_%s = %s;\n", unique, chstore.QuoteString(v))
	}
	return sql, set.String(), nil
}

func (s *Store) run(sql string, params chstore.Params, format string) ([]byte, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.runLocked(sql, params, format, true)
}

// runLocked is run with s.mu held. escape says whether the parameter values are plain strings
// (true) or already in ClickHouse's escaped form, as they arrive over HTTP (false).
func (s *Store) runLocked(sql string, params chstore.Params, format string, escape bool) ([]byte, error) {
	if s.conn == nil {
		return nil, errors.New("embedded engine is closed")
	}
	sql, set, err := s.bind(sql, params, escape)
	if err != nil {
		return nil, err
	}
	if set != "" {
		r, err := s.conn.Query(set, "TSV")
		if err != nil {
			return nil, cleanError(err)
		}
		if r != nil {
			r.Free()
		}
	}
	r, err := s.conn.Query(sql, format)
	if err != nil {
		return nil, cleanError(err)
	}
	if r == nil {
		return nil, nil
	}
	defer r.Free()
	if err := r.Error(); err != nil {
		return nil, cleanError(err)
	}
	return append([]byte(nil), r.Buf()...), nil
}

// Exec implements chstore.Store.
func (s *Store) Exec(ctx context.Context, sql string, params chstore.Params) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	_, err := s.run(sql, params, "TSV")
	return err
}

// Query implements chstore.Store.
func (s *Store) Query(ctx context.Context, sql string, params chstore.Params, format string) ([]byte, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	return s.run(sql, params, format)
}

// InsertNative implements chstore.Store. The blocks flow to the engine through a named pipe, so
// decoding and inserting overlap and nothing is written to disk twice.
func (s *Store) InsertNative(ctx context.Context, table, columns string, write func(w io.Writer) error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	// The engine squashes inserted rows into blocks of min_insert_block_size_rows (about 1M)
	// before writing a part; at 65536 it writes while the decoder is still producing, so the
	// two overlap (BENCHMARKS.md: 0.51x -> 0.86x of the engine's own insert rate).
	sqlFor := func(path string) string {
		return "INSERT INTO " + chstore.QuoteIdent(table) + " " + columns + " FROM INFILE " + chstore.QuoteString(path) +
			" SETTINGS min_insert_block_size_rows = 65536 FORMAT Native"
	}
	run := func(sql string) error {
		_, err := s.run(sql, nil, "TSV")
		return err
	}
	if err := insertPipe(sqlFor, write, run); err != nil {
		return fmt.Errorf("cannot insert into %s: %w", table, err)
	}
	return nil
}

// insertPipe runs the statement sqlFor(path) with run while write feeds the named pipe at path.
func insertPipe(sqlFor func(path string) string, write func(w io.Writer) error, run func(sql string) error) error {
	tmp, err := os.MkdirTemp("", "dnsloss-insert-")
	if err != nil {
		return fmt.Errorf("cannot create a temporary directory for the insert pipe: %w", err)
	}
	defer os.RemoveAll(tmp)
	fifo := filepath.Join(tmp, "blocks")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		return fmt.Errorf("cannot create the insert pipe %q: %w", fifo, err)
	}

	writeErr := make(chan error, 1)
	go func() {
		f, err := os.OpenFile(fifo, os.O_WRONLY, 0)
		if err != nil {
			writeErr <- fmt.Errorf("cannot open the insert pipe: %w", err)
			return
		}
		err = write(f)
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		writeErr <- err
	}()

	qerr := run(sqlFor(fifo))
	var werr error
	if qerr != nil {
		// The engine may have failed before opening the pipe, or stopped reading it: open the
		// pipe ourselves so the writer's open returns (whether it has reached it yet or not),
		// and drain it until the writer is done. O_RDWR never blocks and never reads EOF, so
		// the drain stops when the writer has finished and we close the pipe.
		r, err := os.OpenFile(fifo, os.O_RDWR, 0)
		if err != nil {
			return fmt.Errorf("%w (and cannot open the insert pipe to stop its writer: %v)", qerr, err)
		}
		drained := make(chan struct{})
		go func() { io.Copy(io.Discard, r); close(drained) }()
		werr = <-writeErr
		r.Close()
		<-drained
		return qerr
	}
	werr = <-writeErr
	if qerr != nil {
		return qerr
	}
	return werr
}
