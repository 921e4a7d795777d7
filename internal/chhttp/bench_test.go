//go:build !nochdb

package chhttp_test

import (
	"context"
	"io"
	"strings"
	"testing"

	"github.com/ClickHouse/clickhouse-go/v2"

	"github.com/dnsloss/dnsloss/internal/chtest"
	"github.com/dnsloss/dnsloss/internal/dnsrow"
)

// BenchmarkInsertNative inserts 1M dns_messages rows per iteration with clickhouse-go (HTTP,
// LZ4) through the server.
func BenchmarkInsertNative(b *testing.B) {
	chtest.Fresh(b)
	addr := chtest.Serve(b, "", "")
	conn, err := clickhouse.Open(&clickhouse.Options{Addr: []string{addr}, Protocol: clickhouse.HTTP, Compression: &clickhouse.Compression{Method: clickhouse.CompressionLZ4}})
	if err != nil {
		b.Fatal(err)
	}
	defer conn.Close()
	cols, block := nativeBlock(b, messages("bench", 1_000_000))
	b.SetBytes(int64(len(block)))
	b.ResetTimer()
	for range b.N {
		if err := conn.InsertFormat(context.Background(), "Native", "INSERT INTO dns_messages "+cols, strings.NewReader(string(block))); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkQueryNative reads 1M rows of five columns with clickhouse-go (HTTP, LZ4): the result
// is re-encoded at the client's protocol revision.
func BenchmarkQueryNative(b *testing.B) {
	addr := chtest.Serve(b, "", "")
	conn, err := clickhouse.Open(&clickhouse.Options{Addr: []string{addr}, Protocol: clickhouse.HTTP, Compression: &clickhouse.Compression{Method: clickhouse.CompressionLZ4}})
	if err != nil {
		b.Fatal(err)
	}
	defer conn.Close()
	for range b.N {
		rows, err := conn.Query(context.Background(), `SELECT number, toDateTime64(number, 9, 'UTC'), toLowCardinality(toString(number % 3)),
			toIPv6('::1'), toString(number) FROM numbers(1000000)`)
		if err != nil {
			b.Fatal(err)
		}
		n := 0
		for rows.Next() {
			n++
		}
		if err := rows.Err(); err != nil || n != 1_000_000 {
			b.Fatalf("got %d rows, %v", n, err)
		}
		rows.Close()
	}
}

// BenchmarkInsertEmbedded is BenchmarkInsertNative without HTTP: the same block straight into
// the engine, for comparison.
func BenchmarkInsertEmbedded(b *testing.B) {
	chtest.Fresh(b)
	cols, block := nativeBlock(b, messages("bench", 1_000_000))
	b.SetBytes(int64(len(block)))
	b.ResetTimer()
	for range b.N {
		err := chtest.Store(b).InsertNative(context.Background(), dnsrow.Table, cols, func(w io.Writer) error {
			_, err := w.Write(block)
			return err
		})
		if err != nil {
			b.Fatal(err)
		}
	}
}
