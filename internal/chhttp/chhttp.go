// Package chhttp serves a ClickHouse engine (the embedded one) over ClickHouse's HTTP interface,
// as much of it as clickhouse-go/v2 in HTTP mode and curl users need: queries in the body or in
// ?query=, inserts with the data in the body (Native, TSV, CSV, JSONEachRow, any input format the
// engine reads), param_<name> query parameters, settings as URL parameters, default_format,
// database, query_id, Basic or X-ClickHouse-User/Key authentication, request bodies compressed
// with Content-Encoding or in ClickHouse's own frames (decompress=1), compressed responses
// (compress=1, or enable_http_compression=1 with Accept-Encoding), and Native results at the
// client's client_protocol_version.
//
// The engine has one session for the whole process, so requests take turns: each one sets its
// settings and parameters, runs, and puts the settings back before the next one starts.
// Parameter names are made unique per request, because a SET param_x lasts for the session.
// There are no HTTP sessions (session_id is ignored): SET and USE statements are refused, since
// they would leak into other clients' requests.
package chhttp

import (
	"cmp"
	"context"
	"crypto/rand"
	"crypto/subtle"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/ClickHouse/ch-go/compress"
	"github.com/ClickHouse/clickhouse-go/v2/lib/column"

	"github.com/dnsloss/dnsloss/internal/chstore"
)

// Conn is the engine held by one request (see chembed.Conn).
type Conn interface {
	// Query runs sql with the default output format given; param values are in ClickHouse's
	// escaped form, as they arrive over HTTP.
	Query(sql string, params chstore.Params, format string) ([]byte, error)
	// Insert runs sqlFor(path) while body is copied into the named pipe at path.
	Insert(sqlFor func(path string) string, params chstore.Params, body io.Reader) error
}

// Engine runs fn with the engine to itself.
type Engine interface {
	Session(ctx context.Context, fn func(Conn) error) error
}

// Config configures a Handler.
type Config struct {
	Engine Engine
	// User and Password are the credentials clients must present; with an empty Password no
	// authentication is asked for. User defaults to "default".
	User     string
	Password string
	// Log receives what goes wrong inside the server (not client errors); nil discards it.
	Log *slog.Logger
}

// Handler is an http.Handler speaking ClickHouse's HTTP interface.
type Handler struct {
	engine   Engine
	user     string
	password string
	log      *slog.Logger
	settings map[string]bool // names of the engine's settings
	revision uint64          // the engine's protocol revision
	timezone string
	server   column.ServerContext
}

// New asks the engine for its settings and version and returns a Handler serving it.
func New(ctx context.Context, cfg Config) (*Handler, error) {
	h := &Handler{engine: cfg.Engine, user: cfg.User, password: cfg.Password, log: cfg.Log, settings: map[string]bool{}}
	if h.user == "" {
		h.user = "default"
	}
	if h.log == nil {
		h.log = slog.New(slog.DiscardHandler)
	}
	var names, info []byte
	err := cfg.Engine.Session(ctx, func(c Conn) error {
		var err error
		if names, err = c.Query("SELECT name FROM system.settings", nil, "TSV"); err != nil {
			return err
		}
		info, err = c.Query("SELECT revision(), version(), timezone()", nil, "TSV")
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("cannot read the engine's settings and version: %w", err)
	}
	for _, n := range strings.Fields(string(names)) {
		h.settings[n] = true
	}
	f := strings.Split(strings.TrimSpace(string(info)), "\t")
	if len(f) != 3 {
		return nil, fmt.Errorf("cannot read the engine's version: got %q", info)
	}
	if h.revision, err = strconv.ParseUint(f[0], 10, 64); err != nil {
		return nil, fmt.Errorf("cannot read the engine's protocol revision %q: %w", f[0], err)
	}
	h.timezone = f[2]
	loc, err := time.LoadLocation(h.timezone)
	if err != nil {
		loc = time.UTC
	}
	h.server = column.ServerContext{Revision: h.revision, Timezone: loc}
	v := strings.Split(f[1], ".")
	for i, p := range []*uint64{&h.server.VersionMajor, &h.server.VersionMinor, &h.server.VersionPatch} {
		if i < len(v) {
			*p, _ = strconv.ParseUint(v[i], 10, 64)
		}
	}
	return h, nil
}

// ServeHTTP implements http.Handler.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	switch {
	case r.URL.Path == "/ping" && (r.Method == http.MethodGet || r.Method == http.MethodHead):
		okResponse(w)
	case r.URL.Path == "/" && r.Method == http.MethodGet && r.URL.RawQuery == "":
		okResponse(w)
	case r.URL.Path == "/" && (r.Method == http.MethodGet || r.Method == http.MethodPost):
		h.serveQuery(w, r)
	case r.URL.Path == "/":
		w.Header().Set("Allow", "GET, POST")
		http.Error(w, "Method not allowed: use GET for reading queries and POST for the others", http.StatusMethodNotAllowed)
	default:
		http.Error(w, fmt.Sprintf("There is no handle %s\n\nUse / or /ping", r.URL.Path), http.StatusNotFound)
	}
}

func okResponse(w http.ResponseWriter) {
	w.Header().Set("Content-Type", "text/plain; charset=UTF-8")
	io.WriteString(w, "Ok.\n")
}

// httpOnly are URL parameters that are not settings, or that this server reads itself.
var httpOnly = map[string]bool{
	"query": true, "database": true, "default_format": true, "query_id": true, "user": true,
	"password": true, "quota_key": true, "compress": true, "decompress": true,
	"client_protocol_version": true, "buffer_size": true, "wait_end_of_query": true,
	"session_id": true, "session_timeout": true, "session_check": true, "stacktrace": true,
	"role": true, "readonly": true, "enable_http_compression": true,
	"network_compression_method": true, "http_native_compression_disable_checksumming_on_decompress": true,
	"send_progress_in_http_headers": true, "http_headers_progress_interval_ms": true,
	"http_write_exception_in_output_format": true, "http_response_buffer_size": true,
	"add_http_cors_header": true, "cancel_http_readonly_queries_on_client_close": true,
	"http_wait_end_of_query": true,
}

// refused are settings a request may not change: readonly cannot be set back once set, and a
// profile changes more than the request can undo.
var refused = map[string]bool{"profile": true}

// request is one parsed HTTP request.
type request struct {
	sql      string
	st       statement
	data     io.Reader // INSERT data, nil for other statements
	params   chstore.Params
	settings []string // names, sorted
	values   map[string]string
	database string
	format   string
	revision uint64 // client_protocol_version
	queryID  string
	framed   bool // compress=1
	method   compress.Method
	httpComp bool // enable_http_compression=1
}

var formatName = regexp.MustCompile(`^[A-Za-z][A-Za-z0-9_]*$`)

// maxQuery bounds the SQL of a query read from the body (data of an INSERT is not bounded).
const maxQuery = 16 << 20

// headChunk is how much of a body is read to find where an INSERT's data begins.
const headChunk = 1 << 20

func (h *Handler) serveQuery(w http.ResponseWriter, r *http.Request) {
	if err := h.authenticate(r); err != nil {
		w.Header().Set("WWW-Authenticate", `Basic realm="ClickHouse"`)
		h.fail(w, "", err)
		return
	}
	req, closeBody, err := h.parse(r)
	if closeBody != nil {
		defer closeBody()
	}
	if err != nil {
		h.fail(w, req.queryID, err)
		return
	}
	out, err := h.run(r.Context(), req)
	if err != nil {
		h.fail(w, req.queryID, err)
		return
	}
	if req.data == nil && strings.EqualFold(req.format, "Native") && req.revision > 0 {
		if out, err = reencodeNative(out, min(req.revision, h.revision), &h.server); err != nil {
			h.fail(w, req.queryID, err)
			return
		}
	}
	hd := w.Header()
	hd.Set("X-ClickHouse-Query-Id", req.queryID)
	hd.Set("X-ClickHouse-Timezone", h.timezone)
	if req.data == nil {
		hd.Set("X-ClickHouse-Format", req.format)
		hd.Set("Content-Type", contentType(req.format))
	} else {
		hd.Set("Content-Type", "text/plain; charset=UTF-8")
	}
	if req.framed && len(out) > 0 {
		if out, err = compressFrames(out, req.method); err != nil {
			h.fail(w, req.queryID, fmt.Errorf("cannot compress the result: %w", err))
			return
		}
	}
	if req.httpComp && len(out) > 0 {
		var enc string
		if out, enc, err = compressHTTP(out, r.Header.Get("Accept-Encoding")); err != nil {
			h.fail(w, req.queryID, fmt.Errorf("cannot compress the result: %w", err))
			return
		}
		if enc != "" {
			hd.Set("Content-Encoding", enc)
		}
	}
	hd.Set("Content-Length", strconv.Itoa(len(out)))
	w.WriteHeader(http.StatusOK)
	w.Write(out)
}

// authenticate checks the credentials of r: Basic auth, X-ClickHouse-User/Key headers, or
// user/password URL parameters, as ClickHouse accepts them.
func (h *Handler) authenticate(r *http.Request) error {
	if h.password == "" {
		return nil
	}
	user, pass, ok := r.BasicAuth()
	if !ok {
		user, pass = r.Header.Get("X-ClickHouse-User"), r.Header.Get("X-ClickHouse-Key")
		if user == "" && pass == "" {
			q, _ := url.ParseQuery(r.URL.RawQuery)
			user, pass = q.Get("user"), q.Get("password")
		}
	}
	if user == "" {
		user = "default"
	}
	u := subtle.ConstantTimeCompare([]byte(user), []byte(h.user))
	p := subtle.ConstantTimeCompare([]byte(pass), []byte(h.password))
	if u&p != 1 {
		return newException(codeAuthFailed, "%s: Authentication failed: password is incorrect, or there is no user with such name", user)
	}
	return nil
}

// parse reads the URL parameters and as much of the body as holds the SQL. The returned func
// releases the body's decompressor.
func (h *Handler) parse(r *http.Request) (*request, func(), error) {
	req := &request{queryID: newQueryID()}
	q, err := url.ParseQuery(r.URL.RawQuery)
	if err != nil {
		return req, nil, newException(codeBadArguments, "cannot read the URL parameters: %v (encode ';' as %%3B and '&' as %%26)", err)
	}
	*req = request{
		params:   chstore.Params{},
		values:   map[string]string{},
		database: q.Get("database"),
		format:   q.Get("default_format"),
		queryID:  cmp.Or(q.Get("query_id"), req.queryID),
		framed:   q.Get("compress") == "1",
		method:   compress.LZ4,
		httpComp: q.Get("enable_http_compression") == "1",
	}
	if req.format == "" {
		req.format = "TabSeparated"
	}
	if !formatName.MatchString(req.format) {
		return req, nil, newException(73, "Unknown format %s (UNKNOWN_FORMAT)", req.format)
	}
	if v := q.Get("client_protocol_version"); v != "" {
		rev, err := strconv.ParseUint(v, 10, 64)
		if err != nil {
			return req, nil, newException(codeBadArguments, "client_protocol_version %q is not a number", v)
		}
		req.revision = rev
	}
	if strings.EqualFold(q.Get("network_compression_method"), "zstd") {
		req.method = compress.ZSTD
	}
	readonly := r.Method == http.MethodGet
	if v := q.Get("readonly"); v != "" && v != "0" {
		readonly = true
	}
	for name, vs := range q {
		v := vs[len(vs)-1]
		switch {
		case strings.HasPrefix(name, "param_"):
			req.params[strings.TrimPrefix(name, "param_")] = v
		case httpOnly[name]:
		case refused[name]:
			return req, nil, newException(codeReadonly, "Setting %s cannot be changed over this server's HTTP interface", name)
		case h.settings[name]:
			req.settings = append(req.settings, name)
			req.values[name] = v
		case strings.HasSuffix(name, "_structure") || strings.HasSuffix(name, "_format") || strings.HasSuffix(name, "_types"):
			return req, nil, newException(codeNotImplemented, "External tables (%s) are not supported by this server", name)
		default:
			return req, nil, newException(codeUnknownSetting, "Unknown setting '%s'", name)
		}
	}
	// The engine's session does not deduplicate inserts (chembed.NoDeduplication); a token asks
	// for deduplication, as it does on a ClickHouse server where that is the default.
	if req.values["insert_deduplication_token"] != "" {
		for _, name := range []string{"deduplicate_insert", "insert_deduplicate"} {
			if _, set := req.values[name]; !set && h.settings[name] {
				req.settings = append(req.settings, name)
				req.values[name] = map[string]string{"deduplicate_insert": "enable", "insert_deduplicate": "1"}[name]
			}
		}
	}
	sort.Strings(req.settings)
	if _, err := req.params.Names(); err != nil {
		return req, nil, newException(codeBadArguments, "%v", err)
	}

	var body io.Reader = http.NoBody
	var closeBody func()
	if r.Method == http.MethodPost {
		var err error
		body, closeBody, err = decodeBody(r.Body, r.Header.Get("Content-Encoding"), q.Get("decompress") == "1")
		if err != nil {
			return req, nil, err
		}
	}

	// The SQL is the query parameter followed by the body (ClickHouse joins them with a
	// newline); an INSERT's data begins after its FORMAT clause (or VALUES).
	var text string
	if qp := q.Get("query"); qp != "" {
		text = qp + "\n"
	} else {
		buf := make([]byte, headChunk)
		n, err := io.ReadFull(body, buf)
		if err != nil && err != io.EOF && err != io.ErrUnexpectedEOF {
			return req, closeBody, fmt.Errorf("cannot read the request body: %w", err)
		}
		text = string(buf[:n])
	}
	req.st = analyze(text)
	// INSERT ... VALUES runs as SQL text: its values may hold expressions and {parameters}.
	if req.st.kind != "INSERT" || req.st.dataAt < 0 || req.st.valuesAt >= 0 {
		rest, err := io.ReadAll(io.LimitReader(body, maxQuery))
		if err != nil {
			return req, closeBody, fmt.Errorf("cannot read the request body: %w", err)
		}
		if len(text)+len(rest) >= maxQuery {
			return req, closeBody, newException(codeQueryTooLarge, "Query is too large (over %d bytes)", maxQuery)
		}
		text += string(rest)
		req.st = analyze(text)
	}
	st := req.st
	switch {
	case strings.TrimSpace(text) == "":
		return req, closeBody, newException(codeSyntaxError, "Empty query")
	case st.kind == "SET" || st.kind == "USE":
		return req, closeBody, newException(codeNotImplemented,
			"%s does not last beyond one request on this server (there are no HTTP sessions): pass settings as URL parameters (?max_threads=2) and the database as ?database=", st.kind)
	case st.multi:
		return req, closeBody, newException(codeSyntaxError, "Multi-statements are not allowed")
	case st.files:
		return req, closeBody, newException(497, "INFILE and OUTFILE are not allowed over HTTP (ACCESS_DENIED)")
	case readonly && !readOnlyKinds[st.kind]:
		return req, closeBody, newException(codeReadonly, "Cannot execute query in readonly mode. For queries over HTTP, method GET implies readonly. You should use method POST for modifying queries")
	}
	if st.kind == "INSERT" && st.formatAt >= 0 && st.dataAt >= 0 {
		if st.formatAt >= 0 && !formatName.MatchString(st.format) {
			return req, closeBody, newException(73, "Unknown format %s (UNKNOWN_FORMAT)", st.format)
		}
		req.sql = text[:st.dataAt]
		req.data = io.MultiReader(strings.NewReader(text[st.dataAt:]), body)
		return req, closeBody, nil
	}
	if strings.IndexByte(text, 0) >= 0 {
		return req, closeBody, newException(codeSyntaxError, "The query contains a NUL byte")
	}
	req.sql = text
	if st.format != "" {
		req.format = st.format
	}
	return req, closeBody, nil
}

// insertSQL returns the INSERT statement of req reading its data from path.
func (req *request) insertSQL(path string) string {
	st, sql := req.st, req.sql
	cut, format := st.formatAt, st.format
	settings := ""
	if st.settingsAt >= 0 && st.settingsAt < cut {
		settings = sql[st.settingsAt:cut]
		cut = st.settingsAt
	}
	return strings.TrimSpace(sql[:cut]) + " FROM INFILE " + chstore.QuoteString(path) + " " + settings + "FORMAT " + format
}

// snapshot returns the assignments that put the settings names back as they are: their session
// value where the session changed them, DEFAULT otherwise.
func (h *Handler) snapshot(c Conn, names []string) ([]string, error) {
	quoted := make([]string, len(names))
	for i, n := range names {
		quoted[i] = chstore.QuoteString(n)
	}
	out, err := c.Query("SELECT name, value FROM system.settings WHERE changed AND name IN ("+strings.Join(quoted, ", ")+")", nil, "TSVRaw")
	if err != nil {
		return nil, fmt.Errorf("cannot read the session's settings: %w", err)
	}
	session := map[string]string{}
	for _, line := range strings.Split(strings.TrimSuffix(string(out), "\n"), "\n") {
		if n, v, ok := strings.Cut(line, "\t"); ok {
			session[n] = v
		}
	}
	reset := make([]string, len(names))
	for i, n := range names {
		if v, ok := session[n]; ok {
			reset[i] = n + " = " + chstore.QuoteString(v)
		} else {
			reset[i] = n + " = DEFAULT"
		}
	}
	return reset, nil
}

// run runs req on the engine, with its settings and database, and puts them back.
func (h *Handler) run(ctx context.Context, req *request) ([]byte, error) {
	var out []byte
	err := h.engine.Session(ctx, func(c Conn) (err error) {
		if len(req.settings) > 0 {
			reset, err := h.snapshot(c, req.settings)
			if err != nil {
				return err
			}
			set := make([]string, len(req.settings))
			for i, n := range req.settings {
				set[i] = n + " = " + chstore.QuoteString(req.values[n])
			}
			defer func() {
				if _, rerr := c.Query("SET "+strings.Join(reset, ", "), nil, "TSV"); rerr != nil {
					h.log.Error("cannot reset settings after a request", "settings", strings.Join(req.settings, ","), "err", rerr)
					if err == nil {
						err = rerr
					}
				}
			}()
			if _, err := c.Query("SET "+strings.Join(set, ", "), nil, "TSV"); err != nil {
				return err
			}
		}
		if req.database != "" && req.database != "default" {
			if _, err := c.Query("USE "+chstore.QuoteIdent(req.database), nil, "TSV"); err != nil {
				return err
			}
			defer func() {
				if _, rerr := c.Query("USE default", nil, "TSV"); rerr != nil {
					h.log.Error("cannot go back to database default after a request", "err", rerr)
				}
			}()
		}
		if req.data != nil {
			return c.Insert(req.insertSQL, req.params, req.data)
		}
		out, err = c.Query(req.sql, req.params, req.format)
		return err
	})
	return out, err
}

func (h *Handler) fail(w http.ResponseWriter, queryID string, err error) {
	ex := asException(err)
	if errors.Is(err, context.Canceled) {
		ex = newException(394, "Query was cancelled: the client went away (QUERY_WAS_CANCELLED)")
	}
	hd := w.Header()
	hd.Del("Content-Encoding")
	hd.Set("Content-Type", "text/plain; charset=UTF-8")
	hd.Set("X-ClickHouse-Exception-Code", strconv.Itoa(ex.Code))
	if queryID != "" {
		hd.Set("X-ClickHouse-Query-Id", queryID)
	}
	w.WriteHeader(httpStatus(ex.Code))
	io.WriteString(w, ex.Error()+"\n")
}

func contentType(format string) string {
	f := strings.ToLower(format)
	switch {
	case f == "native" || strings.HasPrefix(f, "rowbinary") || f == "parquet" || f == "arrow" || f == "orc" || f == "avro":
		return "application/octet-stream"
	case strings.HasPrefix(f, "json"):
		return "application/json; charset=UTF-8"
	case strings.HasPrefix(f, "tabseparated") || strings.HasPrefix(f, "tsv"):
		return "text/tab-separated-values; charset=UTF-8"
	case strings.HasPrefix(f, "csv"):
		return "text/csv; charset=UTF-8; header=present"
	}
	return "text/plain; charset=UTF-8"
}

func newQueryID() string {
	var b [16]byte
	rand.Read(b[:])
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	s := hex.EncodeToString(b[:])
	return s[:8] + "-" + s[8:12] + "-" + s[12:16] + "-" + s[16:20] + "-" + s[20:]
}
