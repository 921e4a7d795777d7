//go:build !nochdb

package chhttp_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/netip"
	"net/url"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2"
	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"

	"github.com/dnsloss/dnsloss/internal/chstore"
	"github.com/dnsloss/dnsloss/internal/chtest"
	"github.com/dnsloss/dnsloss/internal/dnsrow"
)

func TestMain(m *testing.M) { os.Exit(chtest.Main(m)) }

func connect(t *testing.T, addr string, opt clickhouse.Options) driver.Conn {
	t.Helper()
	opt.Addr = []string{addr}
	opt.Protocol = clickhouse.HTTP
	if opt.Auth.Database == "" {
		opt.Auth.Database = "default"
	}
	conn, err := clickhouse.Open(&opt)
	if err != nil {
		t.Fatalf("cannot open clickhouse-go: %v", err)
	}
	t.Cleanup(func() { conn.Close() })
	if err := conn.Ping(context.Background()); err != nil {
		t.Fatalf("ping: %v", err)
	}
	return conn
}

func count(t *testing.T, table string) string {
	t.Helper()
	return strings.TrimSpace(chtest.Query(t, chtest.Store(t), "SELECT count() FROM "+table, nil))
}

func TestClickhouseGoQuery(t *testing.T) {
	chtest.Fresh(t)
	addr := chtest.Serve(t, "", "")
	ctx := context.Background()
	for _, comp := range []clickhouse.CompressionMethod{clickhouse.CompressionNone, clickhouse.CompressionLZ4, clickhouse.CompressionZSTD, clickhouse.CompressionGZIP} {
		t.Run(comp.String(), func(t *testing.T) {
			conn := connect(t, addr, clickhouse.Options{Compression: &clickhouse.Compression{Method: comp}})
			v, err := conn.ServerVersion()
			if err != nil {
				t.Fatal(err)
			}
			if v.Revision < 54460 || v.Version.Major < 25 {
				t.Errorf("server version: got revision %d, version %v; want the engine's (>= 54460, >= 25)", v.Revision, v.Version)
			}
			// Values as the server reads them: in ClickHouse's escaped form.
			want := "it's a\ttab, a \\ and a\nnewline"
			pctx := clickhouse.Context(ctx, clickhouse.WithParameters(clickhouse.Parameters{
				"s": chstore.EscapeParam(want), "n": "42",
			}))
			var (
				s string
				n uint32
			)
			if err := conn.QueryRow(pctx, "SELECT {s:String}, {n:UInt32}").Scan(&s, &n); err != nil {
				t.Fatal(err)
			}
			if s != want || n != 42 {
				t.Errorf("got %q, %d, want %q, 42", s, n, want)
			}
			// A result of several blocks, types with timezones, low cardinality, IPv6, arrays.
			rows, err := conn.Query(ctx, `SELECT number, toDateTime64(number, 9, 'UTC') AS ts, toLowCardinality(toString(number % 3)) AS lc,
				toIPv6('::ffff:10.0.0.1') AS ip, [toUInt16(number), 7] AS arr FROM numbers(200000) SETTINGS max_block_size = 65536`)
			if err != nil {
				t.Fatal(err)
			}
			var total, sum uint64
			for rows.Next() {
				var (
					num uint64
					ts  time.Time
					lc  string
					ip  netip.Addr
					arr []uint16
				)
				if err := rows.Scan(&num, &ts, &lc, &ip, &arr); err != nil {
					t.Fatal(err)
				}
				if ts.Unix() != int64(num) || lc != fmt.Sprint(num%3) || ip.String() != "::ffff:10.0.0.1" || len(arr) != 2 || arr[0] != uint16(num) {
					t.Fatalf("row %d: got %v %q %v %v", num, ts, lc, ip, arr)
				}
				total++
				sum += num
			}
			if err := rows.Err(); err != nil {
				t.Fatal(err)
			}
			if total != 200000 || sum != 199999*200000/2 {
				t.Errorf("rows, sum: got %d, %d, want 200000, %d", total, sum, 199999*200000/2)
			}
		})
	}
}

// messages returns n dns_messages rows for host, with ids 0..n-1.
func messages(host string, n int) []dnsrow.Message {
	out := make([]dnsrow.Message, n)
	for i := range out {
		out[i] = dnsrow.Message{
			Host: []byte(host), Iface: []byte("eth0"), Source: []byte("test"), TS: 1_700_000_000_000_000_000 + int64(i)*1000,
			IPVersion: 4, SrcPort: 40000, DstPort: 53, Transport: dnsrow.TransportUDP, ID: uint16(i),
			QName: []byte("www.example.com"), QType: 1, QClass: 1, QDCount: 1,
		}
		out[i].SrcIP = [16]byte{10: 0xff, 11: 0xff, 12: 10, 15: 1}
		out[i].DstIP = [16]byte{10: 0xff, 11: 0xff, 12: 10, 13: 53, 15: 1}
	}
	return out
}

func nativeBlock(t testing.TB, msgs []dnsrow.Message) (columns string, block []byte) {
	t.Helper()
	b := dnsrow.NewBatch()
	for i := range msgs {
		b.Append(&msgs[i])
	}
	buf, err := b.EncodeNative(nil)
	if err != nil {
		t.Fatal(err)
	}
	return b.Columns(), buf
}

func TestClickhouseGoInsert(t *testing.T) {
	addr := chtest.Serve(t, "", "")
	ctx := context.Background()
	for _, comp := range []clickhouse.CompressionMethod{clickhouse.CompressionNone, clickhouse.CompressionLZ4, clickhouse.CompressionZSTD, clickhouse.CompressionGZIP, clickhouse.CompressionDeflate, clickhouse.CompressionBrotli} {
		t.Run("batch/"+comp.String(), func(t *testing.T) {
			chtest.Fresh(t)
			conn := connect(t, addr, clickhouse.Options{Compression: &clickhouse.Compression{Method: comp}})
			batch, err := conn.PrepareBatch(ctx, "INSERT INTO dns_messages (host, ts, src_ip, dst_ip, id, qname, qtype, edns_options)")
			if err != nil {
				t.Fatal(err)
			}
			ts := time.Date(2026, 12, 1, 0, 0, 0, 123456789, time.UTC)
			for i := range 1000 {
				err := batch.Append("h1", ts.Add(time.Duration(i)*time.Second), netip.MustParseAddr("::ffff:10.0.0.2"),
					netip.MustParseAddr("2001:db8::53"), uint16(i), fmt.Sprintf("n%d.example", i), uint16(28), []uint16{10, 12})
				if err != nil {
					t.Fatal(err)
				}
			}
			if err := batch.Send(); err != nil {
				t.Fatal(err)
			}
			got := chtest.Query(t, chtest.Store(t), `SELECT count(), sum(id), min(ts), toString(any(dst_ip)), countIf(qname_key = 'n7.example'),
				groupUniqArray(edns_options) FROM dns_messages WHERE host = 'h1'`, nil)
			want := "1000\t499500\t2026-12-01 00:00:00.123456789\t2001:db8::53\t1\t[[10,12]]\n"
			if got != want {
				t.Errorf("got %q, want %q", got, want)
			}
		})
	}
	t.Run("native-block", func(t *testing.T) {
		chtest.Fresh(t)
		conn := connect(t, addr, clickhouse.Options{Compression: &clickhouse.Compression{Method: clickhouse.CompressionLZ4}})
		cols, block := nativeBlock(t, messages("h2", 5000))
		if err := conn.InsertFormat(ctx, "Native", "INSERT INTO dns_messages "+cols, strings.NewReader(string(block))); err != nil {
			t.Fatal(err)
		}
		if got := count(t, "dns_messages"); got != "5000" {
			t.Errorf("rows: got %s, want 5000", got)
		}
	})
}

func TestDeduplicationToken(t *testing.T) {
	chtest.Fresh(t)
	addr := chtest.Serve(t, "", "")
	conn := connect(t, addr, clickhouse.Options{Compression: &clickhouse.Compression{Method: clickhouse.CompressionLZ4}})
	send := func(token string, msgs []dnsrow.Message) {
		t.Helper()
		ctx := clickhouse.Context(context.Background(), clickhouse.WithSettings(clickhouse.Settings{"insert_deduplication_token": token}))
		cols, block := nativeBlock(t, msgs)
		if err := conn.InsertFormat(ctx, "Native", "INSERT INTO dns_messages "+cols, strings.NewReader(string(block))); err != nil {
			t.Fatal(err)
		}
	}
	a, b := messages("dedup", 100), messages("dedup", 100)
	for i := range b {
		b[i].ID += 1000
	}
	send("collector-1:batch-1", a)
	send("collector-1:batch-1", a) // retried: stored once
	send("collector-1:batch-2", b)
	send("collector-1:batch-3", a) // the same rows under another token: a new batch
	if got := count(t, "dns_messages"); got != "300" {
		t.Errorf("rows: got %s, want 300", got)
	}
	// The token did not stay set for the next request.
	out := chtest.Query(t, chtest.Store(t), "SELECT value FROM system.settings WHERE name = 'insert_deduplication_token'", nil)
	if out != "\n" {
		t.Errorf("insert_deduplication_token after the requests: got %q, want empty", out)
	}
}

func TestErrors(t *testing.T) {
	addr := chtest.Serve(t, "", "")
	conn := connect(t, addr, clickhouse.Options{})
	tests := []struct {
		name, sql string
		code      int32
	}{
		{"unknown table", "SELECT * FROM no_such_table", 60},
		{"syntax", "SELEC 1", 62},
		{"unknown function", "SELECT no_such_function(1)", 46},
		{"two statements", "SELECT 1; SELECT 2", 62},
		{"set", "SET max_threads = 1", 48},
		{"outfile", "SELECT 1 INTO OUTFILE '/tmp/x'", 497},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := conn.Exec(context.Background(), tc.sql)
			var ex *clickhouse.Exception
			if !errors.As(err, &ex) {
				t.Fatalf("got %v, want a *clickhouse.Exception", err)
			}
			if ex.Code != tc.code {
				t.Errorf("code: got %d, want %d (%v)", ex.Code, tc.code, err)
			}
			if strings.Count(err.Error(), "DB::Exception") > 1 || strings.Contains(ex.Message, "Code:") {
				t.Errorf("message repeats the prefix: %q", err.Error())
			}
		})
	}
}

func TestConcurrentClients(t *testing.T) {
	chtest.Fresh(t)
	addr := chtest.Serve(t, "", "")
	const clients, batches, rows = 4, 5, 2000
	var wg sync.WaitGroup
	errs := make(chan error, clients*batches*2)
	for c := range clients {
		conn := connect(t, addr, clickhouse.Options{Compression: &clickhouse.Compression{Method: clickhouse.CompressionLZ4}})
		wg.Add(1)
		go func() {
			defer wg.Done()
			for b := range batches {
				msgs := messages(fmt.Sprintf("client-%d", c), rows)
				for i := range msgs {
					msgs[i].TS += int64(b) * 1e9
				}
				bb := dnsrow.NewBatch()
				for i := range msgs {
					bb.Append(&msgs[i])
				}
				block, err := bb.EncodeNative(nil)
				if err != nil {
					errs <- err
					return
				}
				// Each client's parameter has the same name and its own value.
				ctx := clickhouse.Context(context.Background(), clickhouse.WithParameters(clickhouse.Parameters{"h": fmt.Sprintf("client-%d", c)}))
				if err := conn.InsertFormat(ctx, "Native", "INSERT INTO dns_messages "+bb.Columns(), strings.NewReader(string(block))); err != nil {
					errs <- err
					return
				}
				var host string
				if err := conn.QueryRow(ctx, "SELECT {h:String}").Scan(&host); err != nil {
					errs <- err
					return
				}
				if want := fmt.Sprintf("client-%d", c); host != want {
					errs <- fmt.Errorf("parameter h: got %q, want %q", host, want)
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if got, want := count(t, "dns_messages"), fmt.Sprint(clients*batches*rows); got != want {
		t.Errorf("rows: got %s, want %s", got, want)
	}
}

// do sends one request and returns the status, the exception code header and the body.
func do(t *testing.T, method, u, body string, header http.Header) (int, string, string) {
	t.Helper()
	req, err := http.NewRequest(method, u, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range header {
		req.Header[k] = v
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, resp.Header.Get("X-ClickHouse-Exception-Code"), string(b)
}

func TestCurl(t *testing.T) {
	chtest.Fresh(t)
	addr := chtest.Serve(t, "", "")
	base := "http://" + addr + "/"
	q := func(sql string, extra ...string) string {
		v := url.Values{"query": {sql}}
		for i := 0; i+1 < len(extra); i += 2 {
			v.Set(extra[i], extra[i+1])
		}
		return base + "?" + v.Encode()
	}
	tests := []struct {
		name, method, url, body string
		status                  int
		code, want              string
	}{
		{"ping", "GET", base + "ping", "", 200, "", "Ok.\n"},
		{"root", "GET", base, "", 200, "", "Ok.\n"},
		{"get select", "GET", q("SELECT 1 + 1"), "", 200, "", "2\n"},
		{"get with param", "GET", q("SELECT {s:String}", "param_s", "a\\tb"), "", 200, "", "a\\tb\n"},
		{"get format", "GET", q("SELECT 1 AS x", "default_format", "JSONEachRow"), "", 200, "", "{\"x\":1}\n"},
		{"format clause wins", "GET", q("SELECT 1 AS x FORMAT CSVWithNames", "default_format", "JSONEachRow"), "", 200, "", "\"x\"\n1\n"},
		{"setting applies", "GET", q("SELECT getSetting('max_threads')", "max_threads", "1"), "", 200, "", "1\n"},
		{"setting is reset", "GET", q("SELECT changed FROM system.settings WHERE name = 'max_threads'"), "", 200, "", "0\n"},
		{"unknown setting", "GET", q("SELECT 1", "no_such_setting", "1"), "", 404, "115", ""},
		{"get is readonly", "GET", q("INSERT INTO dnsloss_settings (name, value) VALUES ('x', 1)"), "", 403, "164", ""},
		{"post tsv insert", "POST", q("INSERT INTO dnsloss_settings (name, value) FORMAT TSV"), "a\t1\nb\t2.5\n", 200, "", ""},
		{"post inline jsoneachrow", "POST", base, "INSERT INTO dnsloss_settings (name, value) FORMAT JSONEachRow\n{\"name\":\"c\",\"value\":3}\n", 200, "", ""},
		{"post csv with names", "POST", q("INSERT INTO dnsloss_settings (name, value) FORMAT CSVWithNames"), "name,value\nd,4\n", 200, "", ""},
		{"post values", "POST", q("INSERT INTO dnsloss_settings (name, value) VALUES"), "('e', 5)", 200, "", ""},
		{"post query in body", "POST", base, "SELECT name, value FROM dnsloss_settings ORDER BY name FORMAT TSV", 200, "", "a\t1\nb\t2.5\nc\t3\nd\t4\ne\t5\n"},
		{"query param and body joined", "POST", q("SELECT count()"), "FROM dnsloss_settings", 200, "", "5\n"},
		{"bad insert data", "POST", q("INSERT INTO dnsloss_settings (name, value) FORMAT TSV"), "a\tnot-a-number\n", 400, "27", ""},
		{"unknown table insert", "POST", q("INSERT INTO no_such_table FORMAT TSV"), "a\n", 404, "60", ""},
		{"still 5 rows", "GET", q("SELECT count() FROM dnsloss_settings"), "", 200, "", "5\n"},
		{"empty", "POST", base, "", 400, "62", ""},
		{"unknown path", "GET", base + "play", "", 404, "", ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			status, code, body := do(t, tc.method, tc.url, tc.body, nil)
			if status != tc.status || code != tc.code {
				t.Errorf("status, code: got %d, %q, want %d, %q (%s)", status, code, tc.status, tc.code, body)
			}
			if tc.want != "" && body != tc.want {
				t.Errorf("body: got %q, want %q", body, tc.want)
			}
			if tc.code != "" && !strings.HasPrefix(body, "Code: "+tc.code+". DB::Exception: ") {
				t.Errorf("body: got %q, want Code: %s. DB::Exception: ...", body, tc.code)
			}
		})
	}
}

func TestAuthentication(t *testing.T) {
	addr := chtest.Serve(t, "dnsloss", "s3cret")
	u := "http://" + addr + "/?query=SELECT+1"
	tests := []struct {
		name   string
		header http.Header
		status int
		code   string
	}{
		{"none", nil, 401, "516"},
		{"basic", http.Header{"Authorization": {"Basic ZG5zbG9zczpzM2NyZXQ="}}, 200, ""}, // dnsloss:s3cret
		{"basic wrong password", http.Header{"Authorization": {"Basic ZG5zbG9zczp3cm9uZw=="}}, 401, "516"},
		{"headers", http.Header{"X-Clickhouse-User": {"dnsloss"}, "X-Clickhouse-Key": {"s3cret"}}, 200, ""},
		{"headers wrong user", http.Header{"X-Clickhouse-User": {"default"}, "X-Clickhouse-Key": {"s3cret"}}, 401, "516"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			status, code, body := do(t, "GET", u, "", tc.header)
			if status != tc.status || code != tc.code {
				t.Errorf("status, code: got %d, %q, want %d, %q (%s)", status, code, tc.status, tc.code, body)
			}
			if strings.Contains(body, "s3cret") {
				t.Errorf("the response shows the password: %q", body)
			}
		})
	}
	t.Run("clickhouse-go", func(t *testing.T) {
		connect(t, addr, clickhouse.Options{Auth: clickhouse.Auth{Username: "dnsloss", Password: "s3cret"}})
		conn, err := clickhouse.Open(&clickhouse.Options{Addr: []string{addr}, Protocol: clickhouse.HTTP, Auth: clickhouse.Auth{Username: "dnsloss", Password: "wrong"}})
		if err == nil {
			err = conn.Ping(context.Background())
			conn.Close()
		}
		var ex *clickhouse.Exception
		if !errors.As(err, &ex) || ex.Code != 516 {
			t.Errorf("wrong password: got %v, want exception 516", err)
		}
	})
}
