// Package chserver is a ClickHouse server (or `analyzer serve`) behind the chstore.Store
// interface, reached with github.com/ClickHouse/clickhouse-go/v2.
//
// URLs: http://host:8123/db and https://host:8443/db use ClickHouse's HTTP interface, where the
// server returns any output format, so every analyzer command works. clickhouse://host:9000/db
// and clickhouses://host:9440/db use the native protocol, which has no raw output formats: Query
// then supports the formats dnsloss itself reads (TSV, CSV, JSONEachRow and JSONCompactEachRow,
// with names and types), for SELECT statements, by formatting rows with formatRow on the server.
// Credentials never come from the URL (command lines are visible to every user of a host).
package chserver

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"strings"
	"time"

	chproto "github.com/ClickHouse/ch-go/proto"
	"github.com/ClickHouse/clickhouse-go/v2"
	"github.com/ClickHouse/clickhouse-go/v2/lib/column"
	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"github.com/ClickHouse/clickhouse-go/v2/lib/proto"

	"github.com/dnsloss/dnsloss/internal/chstore"
)

// Options are what the URL does not carry.
type Options struct {
	User     string // default "default"
	Password string
	// TLS is used with https:// and clickhouses:// URLs; nil means the system's roots.
	TLS *tls.Config
	// DialTimeout bounds connecting; 0 means 10 s.
	DialTimeout time.Duration
}

// Store is an open connection (pool) to a ClickHouse server.
type Store struct {
	conn   driver.Conn
	http   bool
	target string              // the URL, for messages
	write  clickhouse.Settings // settings of Exec and InsertNative
}

// ErrCredentialsInURL is returned for a URL with user:password@.
var ErrCredentialsInURL = errors.New("the ClickHouse URL must not hold a user or password: set DNSLOSS_CLICKHOUSE_USER, and DNSLOSS_CLICKHOUSE_PASSWORD or --clickhouse-password-file")

// Open connects to the server at rawURL and checks that it answers.
func Open(ctx context.Context, rawURL string, opt Options) (*Store, error) {
	u, err := url.Parse(rawURL)
	if err != nil {
		return nil, fmt.Errorf("cannot parse ClickHouse URL %q: %w", rawURL, err)
	}
	if u.User != nil {
		return nil, ErrCredentialsInURL
	}
	var (
		protocol = clickhouse.Native
		port     string
		secure   bool
	)
	switch u.Scheme {
	case "clickhouse", "tcp":
		port = "9000"
	case "clickhouses":
		port, secure = "9440", true
	case "http":
		protocol, port = clickhouse.HTTP, "8123"
	case "https":
		protocol, port, secure = clickhouse.HTTP, "8443", true
	default:
		return nil, fmt.Errorf("ClickHouse URL %q: scheme %q is not one of http, https, clickhouse, clickhouses", rawURL, u.Scheme)
	}
	if u.Host == "" {
		return nil, fmt.Errorf("ClickHouse URL %q has no host (e.g. http://127.0.0.1:8123)", rawURL)
	}
	if u.RawQuery != "" {
		return nil, fmt.Errorf("ClickHouse URL %q: parameters (?%s) are not supported", rawURL, u.RawQuery)
	}
	var addrs []string
	for _, h := range strings.Split(u.Host, ",") {
		if _, _, err := net.SplitHostPort(h); err != nil {
			h = net.JoinHostPort(strings.Trim(h, "[]"), port)
		}
		addrs = append(addrs, h)
	}
	db := strings.Trim(u.Path, "/")
	if db == "" {
		db = "default"
	}
	user := opt.User
	if user == "" {
		user = "default"
	}
	o := &clickhouse.Options{
		Addr:        addrs,
		Protocol:    protocol,
		Auth:        clickhouse.Auth{Database: db, Username: user, Password: opt.Password},
		DialTimeout: opt.DialTimeout,
		Compression: &clickhouse.Compression{Method: clickhouse.CompressionLZ4},
	}
	if o.DialTimeout == 0 {
		o.DialTimeout = 10 * time.Second
	}
	if secure {
		o.TLS = opt.TLS
		if o.TLS == nil {
			o.TLS = &tls.Config{}
		}
	}
	conn, err := clickhouse.Open(o)
	if err != nil {
		return nil, fmt.Errorf("cannot connect to ClickHouse at %s: %w", u.Redacted(), err)
	}
	s := &Store{conn: conn, http: protocol == clickhouse.HTTP, target: u.Redacted()}
	if err := conn.Ping(ctx); err != nil {
		conn.Close()
		return nil, fmt.Errorf("cannot reach ClickHouse at %s: %w", s.target, err)
	}
	// dnsloss's own writes are not deduplicated by content: ingest --replace deletes a file's rows
	// and inserts the same rows again. (Collectors send insert_deduplication_token instead.)
	// deduplicate_insert overrides insert_deduplicate from ClickHouse 26 on.
	s.write = clickhouse.Settings{"insert_deduplicate": 0}
	var n uint64
	if err := conn.QueryRow(ctx, "SELECT count() FROM system.settings WHERE name = 'deduplicate_insert'").Scan(&n); err != nil {
		conn.Close()
		return nil, fmt.Errorf("cannot read the settings of ClickHouse at %s: %w", s.target, err)
	}
	if n > 0 {
		s.write["deduplicate_insert"] = "disable"
	}
	return s, nil
}

// Describe implements chstore.Store.
func (s *Store) Describe() string { return "ClickHouse at " + s.target }

// Close implements chstore.Store.
func (s *Store) Close() error { return s.conn.Close() }

// withParams attaches params to ctx as server-side query parameters. Values travel in
// ClickHouse's escaped form, over HTTP and the native protocol alike.
func withParams(ctx context.Context, params chstore.Params) (context.Context, error) {
	if len(params) == 0 {
		return ctx, nil
	}
	if _, err := params.Names(); err != nil {
		return nil, err
	}
	p := clickhouse.Parameters{}
	for k, v := range params {
		p[k] = chstore.EscapeParam(v)
	}
	return clickhouse.Context(ctx, clickhouse.WithParameters(p)), nil
}

// fail names the store in err. An interrupted query says so, and an HTTP error loses its URL,
// which holds every query parameter.
func (s *Store) fail(ctx context.Context, err error) error {
	if ctx.Err() != nil {
		return fmt.Errorf("%s: interrupted: %w", s.Describe(), ctx.Err())
	}
	var ue *url.Error
	if errors.As(err, &ue) {
		err = ue.Err
	}
	return fmt.Errorf("%s: %w", s.Describe(), err)
}

// Exec implements chstore.Store. A server runs one statement per call.
func (s *Store) Exec(ctx context.Context, sql string, params chstore.Params) error {
	ctx, err := withParams(ctx, params)
	if err != nil {
		return err
	}
	ctx = clickhouse.Context(ctx, clickhouse.WithSettings(s.write))
	if err := s.conn.Exec(ctx, sql); err != nil {
		return s.fail(ctx, err)
	}
	return nil
}

// Query implements chstore.Store.
func (s *Store) Query(ctx context.Context, sql string, params chstore.Params, format string) ([]byte, error) {
	ctx, err := withParams(ctx, params)
	if err != nil {
		return nil, err
	}
	if s.http {
		rc, err := s.conn.QueryFormat(ctx, format, sql)
		if err != nil {
			return nil, s.fail(ctx, err)
		}
		defer rc.Close()
		out, err := io.ReadAll(rc)
		if err != nil {
			return nil, fmt.Errorf("cannot read the result: %w", s.fail(ctx, err))
		}
		return out, nil
	}
	return s.queryNative(ctx, sql, format)
}

// nativeFormats are the formats Query supports over the native protocol: the row format
// formatRow writes, and how the header lines are written.
var nativeFormats = map[string]struct {
	row          string
	names, types bool
	header       func(names []string) string
}{
	"TSV":                                 {row: "TSV"},
	"TabSeparated":                        {row: "TSV"},
	"TSVWithNames":                        {row: "TSV", names: true, header: tsvHeader},
	"TabSeparatedWithNames":               {row: "TSV", names: true, header: tsvHeader},
	"TSVWithNamesAndTypes":                {row: "TSV", names: true, types: true, header: tsvHeader},
	"TabSeparatedWithNamesAndTypes":       {row: "TSV", names: true, types: true, header: tsvHeader},
	"CSV":                                 {row: "CSV"},
	"CSVWithNames":                        {row: "CSV", names: true, header: csvHeader},
	"JSONEachRow":                         {row: "JSONEachRow"},
	"JSONCompactEachRow":                  {row: "JSONCompactEachRow"},
	"JSONCompactEachRowWithNames":         {row: "JSONCompactEachRow", names: true, header: jsonHeader},
	"JSONCompactEachRowWithNamesAndTypes": {row: "JSONCompactEachRow", names: true, types: true, header: jsonHeader},
}

func tsvHeader(names []string) string {
	for i, n := range names {
		names[i] = chstore.EscapeParam(n)
	}
	return strings.Join(names, "\t") + "\n"
}

func csvHeader(names []string) string {
	for i, n := range names {
		names[i] = `"` + strings.ReplaceAll(n, `"`, `""`) + `"`
	}
	return strings.Join(names, ",") + "\n"
}

func jsonHeader(names []string) string {
	b, _ := json.Marshal(names)
	return string(b) + "\n"
}

// queryNative formats the rows of a SELECT on the server with formatRow and adds the header
// lines from the result's column names and types.
func (s *Store) queryNative(ctx context.Context, sql, format string) ([]byte, error) {
	f, ok := nativeFormats[format]
	if !ok {
		return nil, fmt.Errorf("%s: format %s is not available over the native protocol; use an http:// URL", s.Describe(), format)
	}
	inner := strings.TrimRight(strings.TrimSpace(sql), ";")
	rows, err := s.conn.Query(ctx, "SELECT formatRow('"+f.row+"', *) FROM (\n"+inner+"\n)")
	if err != nil {
		return nil, s.fail(ctx, err)
	}
	defer rows.Close()
	var out strings.Builder
	if f.names {
		// The column names and types come from a description of the inner query.
		drows, err := s.conn.Query(ctx, "SELECT * FROM (\n"+inner+"\n) LIMIT 0")
		if err != nil {
			return nil, s.fail(ctx, err)
		}
		var names, types []string
		for _, ct := range drows.ColumnTypes() {
			names = append(names, ct.Name())
			types = append(types, ct.DatabaseTypeName())
		}
		drows.Close()
		out.WriteString(f.header(names))
		if f.types {
			out.WriteString(f.header(types))
		}
	}
	for rows.Next() {
		var line string
		if err := rows.Scan(&line); err != nil {
			return nil, s.fail(ctx, err)
		}
		out.WriteString(line)
	}
	if err := rows.Err(); err != nil {
		return nil, s.fail(ctx, err)
	}
	return []byte(out.String()), nil
}

// InsertNative implements chstore.Store. Over HTTP the Native blocks stream to the server as they
// are; over the native protocol they are decoded and appended to a batch.
func (s *Store) InsertNative(ctx context.Context, table, columns string, write func(w io.Writer) error) error {
	pr, pw := io.Pipe()
	go func() { pw.CloseWithError(write(pw)) }()
	defer pr.Close()
	insert := "INSERT INTO " + chstore.QuoteIdent(table) + " " + columns
	ctx = clickhouse.Context(ctx, clickhouse.WithSettings(s.write))
	if s.http {
		if err := s.conn.InsertFormat(ctx, "Native", insert, pr); err != nil {
			return fmt.Errorf("cannot insert into %s on %s: %w", table, s.Describe(), err)
		}
		return nil
	}
	if err := s.insertBatches(ctx, insert, pr); err != nil {
		return fmt.Errorf("cannot insert into %s on %s: %w", table, s.Describe(), err)
	}
	return nil
}

func (s *Store) insertBatches(ctx context.Context, insert string, r io.Reader) error {
	reader := chproto.NewReader(r)
	sc := &column.ServerContext{Timezone: time.UTC}
	for n := 0; ; n++ {
		b := proto.Block{ServerContext: sc}
		if err := b.Decode(reader, 0); err != nil {
			if errors.Is(err, io.EOF) && b.Columns == nil {
				return nil
			}
			return fmt.Errorf("cannot decode Native block %d: %w", n, err)
		}
		if b.Rows() == 0 {
			continue
		}
		batch, err := s.conn.PrepareBatch(ctx, insert)
		if err != nil {
			return err
		}
		row := make([]any, len(b.Columns))
		for i := 0; i < b.Rows(); i++ {
			for c, col := range b.Columns {
				row[c] = col.Row(i, false)
			}
			if err := batch.Append(row...); err != nil {
				batch.Abort()
				return err
			}
		}
		if err := batch.Send(); err != nil {
			return err
		}
	}
}
