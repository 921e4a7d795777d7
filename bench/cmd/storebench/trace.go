package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/dnsloss/dnsloss/internal/chstore"
)

// traced prints the duration of every call to the store on stderr.
type traced struct{ chstore.Store }

func short(sql string) string {
	sql = strings.Join(strings.Fields(sql), " ")
	if len(sql) > 70 {
		sql = sql[:70] + "..."
	}
	return sql
}

func (t traced) Exec(ctx context.Context, sql string, p chstore.Params) error {
	start := time.Now()
	err := t.Store.Exec(ctx, sql, p)
	fmt.Fprintf(os.Stderr, "  %.3f s  %s\n", time.Since(start).Seconds(), short(sql))
	return err
}

func (t traced) Query(ctx context.Context, sql string, p chstore.Params, format string) ([]byte, error) {
	start := time.Now()
	out, err := t.Store.Query(ctx, sql, p, format)
	fmt.Fprintf(os.Stderr, "  %.3f s  %s\n", time.Since(start).Seconds(), short(sql))
	return out, err
}

func (t traced) InsertNative(ctx context.Context, table, columns string, write func(io.Writer) error) error {
	start := time.Now()
	err := t.Store.InsertNative(ctx, table, columns, write)
	fmt.Fprintf(os.Stderr, "  %.3f s  insert into %s\n", time.Since(start).Seconds(), table)
	return err
}
