//go:build !nochdb

// Package chtest gives tests a real embedded ClickHouse engine with the dnsloss schema and views,
// one per test process (chDB allows one engine per process). Use Main from TestMain, then Fresh in
// each test to start from empty tables.
package chtest

import (
	"context"
	"fmt"
	"io"
	"os"
	"testing"

	"github.com/dnsloss/dnsloss/internal/chembed"
	"github.com/dnsloss/dnsloss/internal/chstore"
	"github.com/dnsloss/dnsloss/internal/dnsrow"
	"github.com/dnsloss/dnsloss/queries"
	"github.com/dnsloss/dnsloss/schema"
)

var shared *chembed.Store

// Main opens the engine in a temporary directory, applies the schema and views, runs the tests
// and removes the directory. Call it from TestMain: os.Exit(chtest.Main(m)).
func Main(m *testing.M) int {
	dir, err := os.MkdirTemp("", "dnsloss-test-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(dir)
	shared, err = chembed.Open(dir)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer shared.Close()
	ctx := context.Background()
	if _, err := schema.Apply(ctx, shared); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	if err := queries.ApplyViews(ctx, shared); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	return m.Run()
}

// Store returns the shared engine as it is.
func Store(t testing.TB) *chembed.Store {
	t.Helper()
	if shared == nil {
		t.Fatal("chtest.Main was not called from TestMain")
	}
	return shared
}

// Fresh empties the data tables (dns_messages, capture_stats, dnsloss_settings and any table
// named in extra) and returns the engine.
func Fresh(t testing.TB, extra ...string) *chembed.Store {
	t.Helper()
	s := Store(t)
	for _, tbl := range append([]string{"dns_messages", "capture_stats", "dnsloss_settings", "search_domains"}, extra...) {
		if err := s.Exec(context.Background(), "TRUNCATE TABLE IF EXISTS "+chstore.QuoteIdent(tbl), nil); err != nil {
			t.Fatalf("cannot empty %s: %v", tbl, err)
		}
	}
	return s
}

// Insert stores msgs in dns_messages.
func Insert(t testing.TB, s chstore.Store, msgs []dnsrow.Message) {
	t.Helper()
	b := dnsrow.NewBatch()
	for i := range msgs {
		b.Append(&msgs[i])
	}
	err := s.InsertNative(context.Background(), dnsrow.Table, b.Columns(), func(w io.Writer) error {
		buf, err := b.EncodeNative(nil)
		if err != nil {
			return err
		}
		_, err = w.Write(buf)
		return err
	})
	if err != nil {
		t.Fatalf("cannot insert %d messages: %v", len(msgs), err)
	}
}

// Query runs sql and returns its TSV output.
func Query(t testing.TB, s chstore.Store, sql string, params chstore.Params) string {
	t.Helper()
	out, err := s.Query(context.Background(), sql, params, "TSV")
	if err != nil {
		t.Fatalf("query failed: %v\n%s", err, sql)
	}
	return string(out)
}
