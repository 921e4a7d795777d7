package analyzercmd

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"regexp"
	"strings"

	"github.com/urfave/cli/v2"

	"github.com/dnsloss/dnsloss/internal/chstore"
	"github.com/dnsloss/dnsloss/internal/tabular"
	"github.com/dnsloss/dnsloss/queries"
)

// settingsResetCommand is `settings reset`: a setting goes back to the default in the SQL.
func settingsResetCommand(stdout io.Writer) *cli.Command {
	return &cli.Command{
		Name:      "reset",
		Usage:     "give settings their defaults again, e.g. `settings reset match_window_ms`",
		ArgsUsage: "NAME... | --all",
		Description: `Removes your value of each NAME (or of every setting with --all), so that the views apply
the default written in their SQL again, also when a later version of dnsloss changes it.

How: reset adds a row with the value nan for NAME to dnsloss_settings, as set adds a row with
its value; the latest row wins, and the views read a value that is not a number as "not set".
So reset works wherever set works (the embedded engine, a server, a cluster's Distributed
table), needs no right to delete, and the table keeps the history of what was set when. A
ClickHouse server whose views were created by an older analyzer would read nan as the value:
reset refuses then, and says to run ` + "`analyzer --clickhouse URL schema apply`" + ` first.`,
		Flags: []cli.Flag{&cli.BoolFlag{Name: "all", Usage: "every setting that has a value of yours"}},
		Action: func(c *cli.Context) error {
			all := c.Bool("all")
			if err := flagsFirst(c); err != nil {
				return err
			}
			switch {
			case all && c.NArg() > 0:
				return cli.Exit("settings reset takes NAME... or --all, not both", 2)
			case !all && c.NArg() == 0:
				return cli.Exit("settings reset takes NAME... (or --all for every setting)", 2)
			}
			names := c.Args().Slice()
			for _, name := range names {
				if _, err := lookupSetting(name); err != nil {
					return err
				}
			}
			return withStore(c, func(ctx context.Context, s chstore.Store) error {
				if err := checkViewsReadUnset(ctx, s); err != nil {
					return err
				}
				current, err := setSettings(ctx, s)
				if err != nil {
					return err
				}
				if all {
					for _, st := range queries.Settings {
						if _, ok := current[st.Name]; ok {
							names = append(names, st.Name)
						}
					}
					if len(names) == 0 {
						fmt.Fprintln(stdout, "no setting has a value of yours: all have their defaults")
						return nil
					}
				}
				changed := 0
				for _, name := range names {
					st, _ := queries.LookupSetting(name)
					def := queries.FormatNumber(st.Default)
					was, ok := current[name]
					if !ok {
						fmt.Fprintf(stdout, "%s = %s, the default (it was not set)\n", name, def)
						continue
					}
					if err := s.Exec(ctx, "INSERT INTO dnsloss_settings (name, value) VALUES ({n:String}, nan)", chstore.Params{"n": name}); err != nil {
						return fmt.Errorf("cannot reset %s in %s: %w", name, s.Describe(), err)
					}
					delete(current, name) // a name given twice is reset once
					v, err := was.Float64()
					switch {
					case err == nil && v == st.Default && all:
						// Set to the default: its value does not change; --all says what does.
					case err == nil && v == st.Default:
						fmt.Fprintf(stdout, "%s = %s, the default (it was set to that value)\n", name, def)
					case err == nil:
						changed++
						fmt.Fprintf(stdout, "%s = %s, the default (was %s)\n", name, def, queries.FormatNumber(v))
					default:
						changed++
						fmt.Fprintf(stdout, "%s = %s, the default (was %s)\n", name, def, was)
					}
				}
				if all && changed == 0 {
					fmt.Fprintln(stdout, "all settings have their defaults (those set had their default values)")
				}
				return nil
			})
		},
	}
}

// lookupSetting returns the setting named name, or an exit error that lists the known names.
func lookupSetting(name string) (queries.Setting, error) {
	st, ok := queries.LookupSetting(name)
	if !ok {
		known := make([]string, len(queries.Settings))
		for i, s := range queries.Settings {
			known[i] = s.Name
		}
		return st, cli.Exit(fmt.Sprintf("unknown setting %q: the views read %s (see `analyzer settings list`)", name, strings.Join(known, ", ")), 2)
	}
	return st, nil
}

// setSettings returns the settings that have a value of the user's: the latest row of each name,
// unless that row is a reset (a value that is not finite).
func setSettings(ctx context.Context, s chstore.Store) (map[string]json.Number, error) {
	r, err := tabular.Query(ctx, s, "SELECT name, argMax(value, updated_at) AS latest FROM dnsloss_settings GROUP BY name HAVING isFinite(latest)", nil)
	if err != nil {
		return nil, fmt.Errorf("cannot read the settings of %s: %w", s.Describe(), err)
	}
	set := map[string]json.Number{}
	for _, row := range r.Rows {
		name, _ := row[0].(string)
		if v, ok := row[1].(json.Number); ok && name != "" {
			set[name] = v
		}
	}
	return set, nil
}

var createView = regexp.MustCompile(`(?i)CREATE OR REPLACE VIEW (\w+)`)

// checkViewsReadUnset refuses a store whose views read dnsloss_settings without taking a value
// that is not finite for "not set" (views created by an analyzer older than settings reset, on
// a server where only `schema apply` replaces them): they would compute with nan.
func checkViewsReadUnset(ctx context.Context, s chstore.Store) error {
	_, sqls, err := queries.Views()
	if err != nil {
		return err
	}
	var ours []string
	for _, sql := range sqls {
		if m := createView.FindStringSubmatch(sql); m != nil && strings.Contains(sql, "dnsloss_settings") {
			ours = append(ours, m[1])
		}
	}
	r, err := tabular.Query(ctx, s, `SELECT name FROM system.tables WHERE database = currentDatabase()
		AND name IN {views:Array(String)} AND create_table_query LIKE '%dnsloss_settings%'
		AND create_table_query NOT LIKE '%ifNotFinite(argMaxOrNull(value, updated_at), NULL)%' ORDER BY name`,
		chstore.Params{"views": arrayParam(ours)})
	if err != nil {
		return fmt.Errorf("cannot read the view definitions of %s: %w", s.Describe(), err)
	}
	if len(r.Rows) > 0 {
		var stale []string
		for _, row := range r.Rows {
			stale = append(stale, tabular.Cell(row[0]))
		}
		return cli.Exit(fmt.Sprintf("the views %s of %s were created by an older analyzer and would read a reset setting as nan: "+
			"run `analyzer --clickhouse URL schema apply` (add --cluster NAME on a cluster), then reset", strings.Join(stale, ", "), s.Describe()), 1)
	}
	return nil
}

// arrayParam writes names as the value of an Array(String) query parameter.
func arrayParam(names []string) string {
	q := make([]string, len(names))
	for i, n := range names {
		q[i] = chstore.QuoteString(n)
	}
	return "[" + strings.Join(q, ",") + "]"
}
