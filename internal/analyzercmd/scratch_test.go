package analyzercmd_test

import (
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestScratchLeftovers: the scratch tables of a report that was killed (double Ctrl-C) are dropped
// by the next report on the embedded engine, which this process holds alone, however young;
// through a server (here analyzer serve) only once a day old, as another report may be using
// them.
func TestScratchLeftovers(t *testing.T) {
	t.Parallel()
	db := filepath.Join(t.TempDir(), "db")
	if r := run(t, nil, "--db", db, "ingest", "--quiet", lab("drop-name.pcap")); r.code != 0 {
		t.Fatalf("ingest: exit %d: %s", r.code, r.stderr)
	}
	scratch := func(env []string, store ...string) string {
		t.Helper()
		args := append(store, "sql", "-f", "TSV", "SELECT name FROM system.tables WHERE database = currentDatabase() AND startsWith(name, 'dnsloss_scratch_') ORDER BY name")
		r := run(t, env, args...)
		if r.code != 0 {
			t.Fatalf("sql: exit %d: %s", r.code, r.stderr)
		}
		return r.stdout
	}
	create := func(env []string, name string, store ...string) {
		t.Helper()
		r := run(t, env, append(store, "sql", "CREATE TABLE "+name+" (x UInt8) ENGINE = Memory")...)
		if r.code != 0 {
			t.Fatalf("create %s: exit %d: %s", name, r.code, r.stderr)
		}
	}
	name := func(made time.Time, suffix string) string {
		return fmt.Sprintf("dnsloss_scratch_%d_0123456789abcdef_%s", made.Unix(), suffix)
	}

	embedded := []string{"--db", db}
	fresh := name(time.Now(), "t")
	create(nil, fresh, embedded...)
	create(nil, name(time.Now(), "l"), embedded...)
	if got := scratch(nil, embedded...); strings.Count(got, "\n") != 2 {
		t.Fatalf("scratch tables before the report: got %q, want the 2 made", got)
	}
	if r := run(t, nil, "--db", db, "report"); r.code != 0 {
		t.Fatalf("report: exit %d: %s", r.code, r.stderr)
	}
	if got := scratch(nil, embedded...); got != "" {
		t.Errorf("scratch tables after a report on the embedded engine: got %q, want none", got)
	}

	srv := startServe(t, db)
	server := []string{"--clickhouse", "http://" + srv.addr}
	old := name(time.Now().Add(-25*time.Hour), "t")
	create(nil, fresh, server...)
	create(nil, old, server...)
	if r := run(t, nil, append(server, "report")...); r.code != 0 {
		t.Fatalf("report through serve: exit %d: %s", r.code, r.stderr)
	}
	if got := scratch(nil, server...); got != fresh+"\n" {
		t.Errorf("scratch tables after a report through a server: got %q, want only the young one, %s", got, fresh)
	}
	srv.stop(t)
}
