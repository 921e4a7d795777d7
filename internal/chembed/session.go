//go:build !nochdb

package chembed

import (
	"context"
	"io"

	"github.com/dnsloss/dnsloss/internal/chstore"
)

// Conn is the engine held by one Session call: what runs through it runs in order, with no
// other caller's statement in between, so settings changed with SET can be put back before
// anyone else sees them.
type Conn struct {
	s *Store
}

// Session runs fn with the engine to itself. The engine has one session for the whole process:
// fn must undo any SET it makes before it returns.
func (s *Store) Session(ctx context.Context, fn func(c *Conn) error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return fn(&Conn{s: s})
}

// Query runs sql and returns its output in format (the default format: a FORMAT clause in sql
// wins). The values of params are in ClickHouse's escaped form (as param_<name> values arrive
// over HTTP) and reach the engine under names used once.
func (c *Conn) Query(sql string, params chstore.Params, format string) ([]byte, error) {
	return c.s.runLocked(sql, params, format, false)
}

// Insert runs the statement sqlFor(path) while body is copied into the named pipe at path; the
// statement reads its data with FROM INFILE path. params are as for Query.
func (c *Conn) Insert(sqlFor func(path string) string, params chstore.Params, body io.Reader) error {
	write := func(w io.Writer) error {
		_, err := io.Copy(w, body)
		return err
	}
	run := func(sql string) error {
		_, err := c.s.runLocked(sql, params, "TSV", false)
		return err
	}
	return insertPipe(sqlFor, write, run)
}
