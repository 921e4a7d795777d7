// Package queries holds the SQL that turns dns_messages into answers: the linking views
// (views/*.sql, created in file-name order, each CREATE OR REPLACE so re-applying is safe) and the
// report queries (reports/*.sql). They run unchanged on the embedded engine and on a server.
package queries

import (
	"context"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"fmt"
	"io/fs"
	"path"
	"regexp"
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

// ApplyViews creates or replaces every view whose definition differs from the one in the store.
// Each view carries the hash of the statement that made it as its comment, so a view already
// as written here is left alone: creating one has the engine analyze its whole query, seconds
// for the lookup views, on every command of the embedded engine.
func ApplyViews(ctx context.Context, store chstore.Store) error {
	have, err := viewHashes(ctx, store)
	if err != nil {
		return err
	}
	return applyViews(ctx, store, func(st string) ([]string, error) { return []string{st}, nil }, have)
}

// ApplyViewsCluster creates or replaces every view on every server of cluster c.
func ApplyViewsCluster(ctx context.Context, store chstore.Store, c schema.Cluster) error {
	return applyViews(ctx, store, c.Rewrite, nil)
}

// viewComment marks a view made by ApplyViews; the hash of its statement follows.
const viewComment = "dnsloss:"

// viewHashes returns, per view of the current database, the statement hash in its comment.
func viewHashes(ctx context.Context, store chstore.Store) (map[string]string, error) {
	out, err := store.Query(ctx, `SELECT name, comment FROM system.tables
		WHERE database = currentDatabase() AND engine = 'View'`, nil, "TSV")
	if err != nil {
		return nil, fmt.Errorf("cannot list the store's views: %w", err)
	}
	have := map[string]string{}
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		if name, comment, ok := strings.Cut(line, "\t"); ok && strings.HasPrefix(comment, viewComment) {
			have[name] = strings.TrimPrefix(comment, viewComment)
		}
	}
	return have, nil
}

// statementHash is the hash ApplyViews keeps in the comment of the view that st made.
func statementHash(st string) string {
	sum := sha256.Sum256([]byte(st))
	return hex.EncodeToString(sum[:8])
}

var viewName = regexp.MustCompile(`(?i)^CREATE\s+(?:OR\s+REPLACE\s+)?VIEW\s+(?:IF\s+NOT\s+EXISTS\s+)?([A-Za-z0-9_.]+)`)

func applyViews(ctx context.Context, store chstore.Store, rewrite func(string) ([]string, error), have map[string]string) error {
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
				hash := statementHash(st)
				m := viewName.FindStringSubmatch(st)
				if m != nil && have != nil && have[m[1]] == hash {
					continue
				}
				if err := store.Exec(ctx, st, nil); err != nil {
					return fmt.Errorf("cannot create view from queries/%s: %w", n, err)
				}
				if m != nil && have != nil {
					// A COMMENT clause would end a view whose query ends in a subquery as its
					// alias; the name and hex hash are ours (no parameter is allowed here). A
					// server that cannot comment a view only gets it made again next time.
					_ = store.Exec(ctx, "ALTER TABLE "+m[1]+" MODIFY COMMENT '"+viewComment+hash+"'", nil)
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
