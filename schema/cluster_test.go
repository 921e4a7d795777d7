package schema_test

import (
	"reflect"
	"testing"

	"github.com/dnsloss/dnsloss/schema"
)

func TestClusterRewrite(t *testing.T) {
	c := schema.Cluster{Name: "dns"}
	tests := []struct {
		name, in string
		want     []string
	}{
		{"merge tree", "CREATE TABLE IF NOT EXISTS t\n(\n    a UInt8\n)\nENGINE = MergeTree\nORDER BY a", []string{
			"CREATE TABLE IF NOT EXISTS t_local ON CLUSTER dns (\n    a UInt8\n)\nENGINE = ReplicatedMergeTree('/clickhouse/tables/{shard}/{database}/t', '{replica}')\nORDER BY a",
			"CREATE TABLE IF NOT EXISTS t ON CLUSTER dns AS t_local ENGINE = Distributed(dns, currentDatabase(), t_local, rand())",
		}},
		{"replacing with version", "CREATE TABLE IF NOT EXISTS s (n String, v UInt8) ENGINE = ReplacingMergeTree(v) ORDER BY n", []string{
			"CREATE TABLE IF NOT EXISTS s_local ON CLUSTER dns (n String, v UInt8) ENGINE = ReplicatedReplacingMergeTree('/clickhouse/tables/{shard}/{database}/s', '{replica}', v) ORDER BY n",
			"CREATE TABLE IF NOT EXISTS s ON CLUSTER dns AS s_local ENGINE = Distributed(dns, currentDatabase(), s_local, rand())",
		}},
		{"alter setting", "ALTER TABLE t MODIFY SETTING x = 1", []string{"ALTER TABLE t_local ON CLUSTER dns MODIFY SETTING x = 1"}},
		{"alter column", "ALTER TABLE t ADD COLUMN IF NOT EXISTS c UInt8", []string{
			"ALTER TABLE t_local ON CLUSTER dns ADD COLUMN IF NOT EXISTS c UInt8",
			"ALTER TABLE t ON CLUSTER dns ADD COLUMN IF NOT EXISTS c UInt8",
		}},
		{"view", "CREATE OR REPLACE VIEW v AS SELECT 1", []string{"CREATE OR REPLACE VIEW v ON CLUSTER dns AS SELECT 1"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := c.Rewrite(tc.in)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("got\n%q\nwant\n%q", got, tc.want)
			}
		})
	}
	if _, err := (schema.Cluster{Name: "x; DROP"}).Rewrite("ALTER TABLE t X"); err == nil {
		t.Error("a cluster name that is not an identifier was accepted")
	}
}

// Every statement of every migration has a cluster form.
func TestEveryMigrationHasAClusterForm(t *testing.T) {
	ms, err := schema.Migrations()
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range ms {
		for _, st := range schema.Statements(m.SQL) {
			if _, err := (schema.Cluster{Name: "dns"}).Rewrite(st); err != nil {
				t.Errorf("migration %04d_%s: %v", m.Version, m.Name, err)
			}
		}
	}
}
