// Package queries holds the SQL that turns dns_messages into answers: the linking views
// (views/*.sql, created in file-name order, each CREATE OR REPLACE so re-applying is safe) and the
// report queries (reports/*.sql). They run unchanged on the embedded engine and on a server.
package queries

import (
	"context"
	"embed"
	"fmt"
	"io/fs"
	"path"
	"sort"
	"strings"

	"github.com/dnsloss/dnsloss/internal/chstore"
	"github.com/dnsloss/dnsloss/schema"
)

//go:embed views/*.sql reports/*.sql
var files embed.FS

// Views returns the view definitions in the order they must be created: file name -> SQL.
func Views() ([]string, map[string]string, error) {
	names, err := fs.Glob(files, "views/*.sql")
	if err != nil {
		return nil, nil, err
	}
	sort.Strings(names)
	sqls := make(map[string]string, len(names))
	for _, n := range names {
		b, err := files.ReadFile(n)
		if err != nil {
			return nil, nil, err
		}
		sqls[n] = string(b)
	}
	return names, sqls, nil
}

// ApplyViews creates or replaces every view.
func ApplyViews(ctx context.Context, store chstore.Store) error {
	return applyViews(ctx, store, func(st string) ([]string, error) { return []string{st}, nil })
}

// ApplyViewsCluster creates or replaces every view on every server of cluster c.
func ApplyViewsCluster(ctx context.Context, store chstore.Store, c schema.Cluster) error {
	return applyViews(ctx, store, c.Rewrite)
}

func applyViews(ctx context.Context, store chstore.Store, rewrite func(string) ([]string, error)) error {
	names, sqls, err := Views()
	if err != nil {
		return err
	}
	for _, n := range names {
		for _, st := range schema.Statements(sqls[n]) {
			sts, err := rewrite(st)
			if err != nil {
				return fmt.Errorf("queries/%s: %w", n, err)
			}
			for _, st := range sts {
				if err := store.Exec(ctx, st, nil); err != nil {
					return fmt.Errorf("cannot create view from queries/%s: %w", n, err)
				}
			}
		}
	}
	return nil
}

// Report returns the SQL of the named report (queries/reports/NAME.sql), without its comments.
func Report(name string) (string, error) {
	b, err := files.ReadFile(path.Join("reports", name+".sql"))
	if err != nil {
		return "", fmt.Errorf("no report named %q: %w", name, err)
	}
	st := schema.Statements(string(b))
	if len(st) != 1 {
		return "", fmt.Errorf("report %q holds %d statements, want 1", name, len(st))
	}
	return strings.TrimSpace(st[0]), nil
}
