package schema

import (
	"fmt"
	"regexp"
	"strings"
)

// Cluster rewrites the single-server DDL for a ClickHouse cluster named cluster: every statement
// runs ON CLUSTER; each MergeTree-family table becomes a Replicated one named NAME_local, with a
// Distributed table NAME over it, so that views, reports and inserts use the same names on a
// cluster as on one server. Replication paths use the {shard} and {replica} macros, which every
// server of the cluster must define.
type Cluster struct {
	Name string
}

var (
	createTable  = regexp.MustCompile(`(?is)^CREATE TABLE IF NOT EXISTS (\w+)\s*\(`)
	engineRe     = regexp.MustCompile(`(?is)\bENGINE\s*=\s*(\w*)MergeTree(\(([^)]*)\))?`)
	alterTable   = regexp.MustCompile(`(?is)^ALTER TABLE (\w+)\s`)
	columnChange = regexp.MustCompile(`(?is)\b(ADD|DROP|MODIFY|RENAME|COMMENT)\s+COLUMN\b`)
	createView   = regexp.MustCompile(`(?is)^CREATE (OR REPLACE )?VIEW (\w+) AS`)
	clusterName  = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)
)

// Rewrite returns the statements that replace stmt on the cluster.
func (c Cluster) Rewrite(stmt string) ([]string, error) {
	if !clusterName.MatchString(c.Name) {
		return nil, fmt.Errorf("cluster name %q is not an identifier", c.Name)
	}
	on := " ON CLUSTER " + c.Name
	if m := createTable.FindStringSubmatch(stmt); m != nil {
		name := m[1]
		e := engineRe.FindStringSubmatchIndex(stmt)
		if e == nil {
			return nil, fmt.Errorf("table %s: no MergeTree engine to replicate", name)
		}
		kind := stmt[e[2]:e[3]]
		args := ""
		if e[6] >= 0 {
			args = strings.TrimSpace(stmt[e[6]:e[7]])
		}
		path := fmt.Sprintf("'/clickhouse/tables/{shard}/{database}/%s'", name)
		replArgs := path + ", '{replica}'"
		if args != "" {
			replArgs += ", " + args
		}
		local := stmt[:e[0]] + "ENGINE = Replicated" + kind + "MergeTree(" + replArgs + ")" + stmt[e[1]:]
		local = createTable.ReplaceAllString(local, "CREATE TABLE IF NOT EXISTS "+name+"_local"+on+" (")
		dist := fmt.Sprintf("CREATE TABLE IF NOT EXISTS %s%s AS %s_local ENGINE = Distributed(%s, currentDatabase(), %s_local, rand())",
			name, on, name, c.Name, name)
		return []string{local, dist}, nil
	}
	if m := alterTable.FindStringSubmatch(stmt); m != nil {
		local := alterTable.ReplaceAllString(stmt, "ALTER TABLE "+m[1]+"_local"+on+" ")
		if !columnChange.MatchString(stmt) {
			return []string{local}, nil // settings, TTL: the storage only
		}
		// A column change must reach the Distributed table too, or it would not see the column.
		dist := alterTable.ReplaceAllString(stmt, "ALTER TABLE "+m[1]+on+" ")
		return []string{local, dist}, nil
	}
	if m := createView.FindStringSubmatch(stmt); m != nil {
		return []string{createView.ReplaceAllString(stmt, "CREATE "+m[1]+"VIEW "+m[2]+on+" AS")}, nil
	}
	return nil, fmt.Errorf("no cluster form for statement %.60q", stmt)
}
