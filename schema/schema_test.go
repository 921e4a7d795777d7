package schema_test

import (
	"context"
	"os"
	"reflect"
	"strconv"
	"testing"

	"github.com/dnsloss/dnsloss/internal/chtest"
	"github.com/dnsloss/dnsloss/schema"
)

func TestMain(m *testing.M) { os.Exit(chtest.Main(m)) }

func TestStatements(t *testing.T) {
	got := schema.Statements("-- a comment\nCREATE TABLE a (x UInt8);\n\n-- another\nALTER TABLE a\n  ADD COLUMN y UInt8;\nSELECT 1")
	want := []string{"CREATE TABLE a (x UInt8)", "ALTER TABLE a\n  ADD COLUMN y UInt8", "SELECT 1"}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got %q, want %q", got, want)
	}
}

func TestMigrationsAreNumberedOnce(t *testing.T) {
	ms, err := schema.Migrations()
	if err != nil {
		t.Fatal(err)
	}
	for i, m := range ms {
		if m.Version != i+1 {
			t.Errorf("migration %d has version %d (%s), want %d: versions must run 1, 2, 3, ...", i, m.Version, m.Name, i+1)
		}
	}
}

// chtest.Main applied every migration already: a second Apply must find nothing to do, and the
// store must record each version once.
func TestApplyIsIdempotent(t *testing.T) {
	s := chtest.Store(t)
	applied, err := schema.Apply(context.Background(), s)
	if err != nil {
		t.Fatal(err)
	}
	if len(applied) != 0 {
		t.Errorf("second Apply ran migrations %v, want none", applied)
	}
	ms, _ := schema.Migrations()
	got := chtest.Query(t, s, "SELECT count(), uniqExact(version) FROM schema_migrations", nil)
	want := strconv.Itoa(len(ms)) + "\t" + strconv.Itoa(len(ms)) + "\n"
	if got != want {
		t.Errorf("schema_migrations: got %q, want %q", got, want)
	}
}

func TestPending(t *testing.T) {
	s := chtest.Store(t)
	got, err := schema.Pending(context.Background(), s)
	if err != nil || len(got) != 0 {
		t.Errorf("after Apply: got %v, %v; want no pending migration", got, err)
	}
}
