// Package chstore defines what dnsloss needs from a ClickHouse engine, whichever one it is: the
// embedded engine (package chembed) or a ClickHouse server (package chserver). Both run the same
// schema/*.sql and queries/*.sql.
package chstore

import (
	"context"
	"fmt"
	"io"
	"regexp"
	"sort"
	"strings"
)

// Params are server-side query parameters: the SQL refers to them as {name:Type} and their values
// never become part of the SQL text. This is how captured strings reach a query.
type Params map[string]string

// Store is a ClickHouse engine.
type Store interface {
	// Exec runs one or more statements that return no rows.
	Exec(ctx context.Context, sql string, params Params) error
	// Query runs one statement and returns its result in the ClickHouse output format given
	// (e.g. "TSVWithNames", "JSONEachRow", "PrettyCompact").
	Query(ctx context.Context, sql string, params Params, format string) ([]byte, error)
	// InsertNative inserts the Native-format blocks that write produces into table; columns is
	// the parenthesized column list, e.g. "(host, ts)".
	InsertNative(ctx context.Context, table, columns string, write func(w io.Writer) error) error
	// Describe names the store for messages, e.g. "embedded engine in ./dnsloss-data".
	Describe() string
	Close() error
}

// Exclusive is implemented by a Store that one process holds alone (the embedded engine, whose
// data directory is locked): what is in it and not this process's own work is left over from a
// process that ended.
type Exclusive interface {
	Exclusive() bool
}

// IsExclusive says whether s is held by this process alone.
func IsExclusive(s Store) bool {
	e, ok := s.(Exclusive)
	return ok && e.Exclusive()
}

var paramName = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)

// Names returns the parameter names in a stable order, or an error for a name that is not an
// identifier.
func (p Params) Names() ([]string, error) {
	names := make([]string, 0, len(p))
	for n := range p {
		if !paramName.MatchString(n) {
			return nil, fmt.Errorf("query parameter name %q is not an identifier", n)
		}
		names = append(names, n)
	}
	sort.Strings(names)
	return names, nil
}

// QuoteString returns s as a ClickHouse string literal. It is used only where ClickHouse takes no
// parameter (SET param_x = '...', file paths in FROM INFILE), never to build queries from captured
// data.
func QuoteString(s string) string {
	var b strings.Builder
	b.Grow(len(s) + 2)
	b.WriteByte('\'')
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch c {
		case '\'':
			b.WriteString(`\'`)
		case '\\':
			b.WriteString(`\\`)
		case 0:
			b.WriteString(`\0`)
		case '\n':
			b.WriteString(`\n`)
		case '\r':
			b.WriteString(`\r`)
		case '\t':
			b.WriteString(`\t`)
		default:
			b.WriteByte(c)
		}
	}
	b.WriteByte('\'')
	return b.String()
}

// EscapeParam escapes a query parameter value the way ClickHouse reads parameter values: as a
// field in the TabSeparated "escaped" format (backslash, tab, newline, NUL escaped).
func EscapeParam(v string) string {
	return strings.NewReplacer("\\", "\\\\", "\t", "\\t", "\n", "\\n", "\r", "\\r", "\x00", "\\0").Replace(v)
}

// QuoteIdent returns name as a ClickHouse identifier in backquotes.
func QuoteIdent(name string) string {
	return "`" + strings.NewReplacer("\\", "\\\\", "`", "\\`").Replace(name) + "`"
}
