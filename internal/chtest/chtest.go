//go:build !nochdb

// Package chtest gives tests a real embedded ClickHouse engine with the dnsloss schema and views,
// one per test process (chDB allows one engine per process), started when a test first asks for
// it. Use Main from TestMain, then Fresh in each test to start from empty tables.
package chtest

import (
	"context"
	"io"
	"os"
	"sync"
	"testing"

	"github.com/dnsloss/dnsloss/internal/chembed"
	"github.com/dnsloss/dnsloss/internal/chstore"
	"github.com/dnsloss/dnsloss/internal/dnsrow"
	"github.com/dnsloss/dnsloss/queries"
	"github.com/dnsloss/dnsloss/schema"
)

var (
	opening sync.Once
	shared  *chembed.Store
	openErr error
	dir     string
	inMain  bool
)

// Main runs the tests and then closes the engine and removes its directory. Call it from
// TestMain: os.Exit(chtest.Main(m)). The engine starts on the first call to Store (or Fresh,
// Serve), in a temporary directory, with the schema and views applied: a test process that
// never asks for it, such as a fuzz worker or a run of pure tests only, does not pay the few
// seconds that starting it and creating the views take.
func Main(m *testing.M) int {
	inMain = true
	code := m.Run()
	if shared != nil {
		shared.Close()
	}
	if dir != "" {
		os.RemoveAll(dir)
	}
	return code
}

func open() (*chembed.Store, error) {
	var err error
	dir, err = os.MkdirTemp("", "dnsloss-test-")
	if err != nil {
		return nil, err
	}
	s, err := chembed.Open(dir)
	if err != nil {
		return nil, err
	}
	ctx := context.Background()
	if _, err := schema.Apply(ctx, s); err != nil {
		return s, err
	}
	if err := queries.ApplyViews(ctx, s); err != nil {
		return s, err
	}
	return s, nil
}

// Store returns the shared engine as it is, starting it on the first call.
func Store(t testing.TB) *chembed.Store {
	t.Helper()
	if !inMain {
		t.Fatal("chtest.Main was not called from TestMain")
	}
	opening.Do(func() { shared, openErr = open() })
	if openErr != nil {
		t.Fatalf("cannot start the test engine: %v", openErr)
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
