// Package schema holds the ClickHouse DDL of dnsloss as versioned migrations (NNNN_name.sql,
// embedded), and applies the ones a store has not seen yet. The same files serve the embedded
// engine, a ClickHouse server, and docker-compose's server init.
package schema

import (
	"context"
	"embed"
	"fmt"
	"io/fs"
	"sort"
	"strconv"
	"strings"

	"github.com/dnsloss/dnsloss/internal/chstore"
)

//go:embed *.sql
var files embed.FS

// Migration is one schema change.
type Migration struct {
	Version int
	Name    string
	SQL     string
}

// Migrations returns the embedded migrations in version order.
func Migrations() ([]Migration, error) {
	names, err := fs.Glob(files, "*.sql")
	if err != nil {
		return nil, err
	}
	var out []Migration
	for _, n := range names {
		num, rest, ok := strings.Cut(n, "_")
		v, err := strconv.Atoi(num)
		if !ok || err != nil {
			return nil, fmt.Errorf("schema file %q is not named NNNN_name.sql", n)
		}
		b, err := files.ReadFile(n)
		if err != nil {
			return nil, err
		}
		out = append(out, Migration{Version: v, Name: strings.TrimSuffix(rest, ".sql"), SQL: string(b)})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Version < out[j].Version })
	for i := 1; i < len(out); i++ {
		if out[i].Version == out[i-1].Version {
			return nil, fmt.Errorf("two schema files have version %d", out[i].Version)
		}
	}
	return out, nil
}

// Statements splits a SQL file into statements at semicolons that end a line; comment lines are
// dropped. Our own files only: it does not parse string literals.
func Statements(sql string) []string {
	var out []string
	var cur strings.Builder
	for _, line := range strings.Split(sql, "\n") {
		t := strings.TrimSpace(line)
		if t == "" || strings.HasPrefix(t, "--") {
			continue
		}
		cur.WriteString(line)
		cur.WriteByte('\n')
		if strings.HasSuffix(t, ";") {
			if s := strings.TrimSuffix(strings.TrimSpace(cur.String()), ";"); s != "" {
				out = append(out, s)
			}
			cur.Reset()
		}
	}
	if s := strings.TrimSpace(cur.String()); s != "" {
		out = append(out, s)
	}
	return out
}

const migrationsTable = `CREATE TABLE IF NOT EXISTS schema_migrations (
    version    UInt32,
    name       String,
    applied_at DateTime DEFAULT now()
)
ENGINE = MergeTree
ORDER BY version`

// Apply runs the migrations that store has not recorded in schema_migrations, in order, and
// records each. It is idempotent: a second call changes nothing. It returns the versions applied.
func Apply(ctx context.Context, store chstore.Store) ([]int, error) {
	return apply(ctx, store, func(st string) ([]string, error) { return []string{st}, nil })
}

// ApplyCluster is Apply for a ClickHouse cluster: every statement is rewritten by c.Rewrite.
func ApplyCluster(ctx context.Context, store chstore.Store, c Cluster) ([]int, error) {
	return apply(ctx, store, c.Rewrite)
}

func apply(ctx context.Context, store chstore.Store, rewrite func(string) ([]string, error)) ([]int, error) {
	ms, err := Migrations()
	if err != nil {
		return nil, err
	}
	create, err := rewrite(migrationsTable)
	if err != nil {
		return nil, err
	}
	for _, st := range create {
		if err := store.Exec(ctx, st, nil); err != nil {
			return nil, fmt.Errorf("cannot create schema_migrations in %s: %w", store.Describe(), err)
		}
	}
	done, err := recorded(ctx, store)
	if err != nil {
		return nil, err
	}
	var applied []int
	for _, m := range ms {
		if done[m.Version] {
			continue
		}
		for _, st := range Statements(m.SQL) {
			sts, err := rewrite(st)
			if err != nil {
				return applied, fmt.Errorf("schema migration %04d_%s: %w", m.Version, m.Name, err)
			}
			for _, st := range sts {
				if err := store.Exec(ctx, st, nil); err != nil {
					return applied, fmt.Errorf("cannot apply schema migration %04d_%s: %w", m.Version, m.Name, err)
				}
			}
		}
		err := store.Exec(ctx, "INSERT INTO schema_migrations (version, name) VALUES ({v:UInt32}, {n:String})",
			chstore.Params{"v": strconv.Itoa(m.Version), "n": m.Name})
		if err != nil {
			return applied, fmt.Errorf("cannot record schema migration %04d: %w", m.Version, err)
		}
		applied = append(applied, m.Version)
	}
	return applied, nil
}

func recorded(ctx context.Context, store chstore.Store) (map[int]bool, error) {
	out, err := store.Query(ctx, "SELECT version FROM schema_migrations ORDER BY version", nil, "TSV")
	if err != nil {
		return nil, fmt.Errorf("cannot read schema_migrations of %s: %w", store.Describe(), err)
	}
	done := map[int]bool{}
	for _, l := range strings.Fields(string(out)) {
		if v, err := strconv.Atoi(l); err == nil {
			done[v] = true
		}
	}
	return done, nil
}

// Pending returns the versions of the migrations that store has not recorded (all of them when
// it has no schema_migrations table).
func Pending(ctx context.Context, store chstore.Store) ([]int, error) {
	ms, err := Migrations()
	if err != nil {
		return nil, err
	}
	out, err := store.Query(ctx, "EXISTS TABLE schema_migrations", nil, "TSV")
	if err != nil {
		return nil, fmt.Errorf("cannot read the schema of %s: %w", store.Describe(), err)
	}
	done := map[int]bool{}
	if strings.TrimSpace(string(out)) == "1" {
		if done, err = recorded(ctx, store); err != nil {
			return nil, err
		}
	}
	var pending []int
	for _, m := range ms {
		if !done[m.Version] {
			pending = append(pending, m.Version)
		}
	}
	return pending, nil
}
