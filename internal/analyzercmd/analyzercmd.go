// Package analyzercmd is the analyzer program's command line: ingesting capture files into a
// store, loss reports, and ad-hoc SQL over the views. analyzer/main.go only calls Run.
package analyzercmd

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"

	"github.com/urfave/cli/v2"

	"github.com/dnsloss/dnsloss/internal/chstore"
	"github.com/dnsloss/dnsloss/internal/dnswire"
	"github.com/dnsloss/dnsloss/internal/ingest"
	"github.com/dnsloss/dnsloss/internal/tabular"
	"github.com/dnsloss/dnsloss/queries"
	"github.com/dnsloss/dnsloss/schema"
)

// Run runs the analyzer with args (args[0] is the program name) and returns the exit status.
func Run(ctx context.Context, args []string, stdout, stderr io.Writer) (code int) {
	app := newApp(stdout, stderr)
	unknown := false
	app.CommandNotFound = func(c *cli.Context, name string) {
		fmt.Fprintf(stderr, "analyzer: no command %q (see %s --help)\n", name, helpName(c))
		unknown = true
	}
	// Usage errors are one line and exit status 2 (README), not the whole help and 1; and an
	// exit error comes back here to be printed, not printed and os.Exit-ed inside the cli package.
	app.OnUsageError = usageError
	forEachCommand(app.Commands, func(cmd *cli.Command) { cmd.OnUsageError = usageError })
	app.ExitErrHandler = func(*cli.Context, error) {}
	defer func() {
		if unknown {
			code = 2
		}
	}()
	if err := app.RunContext(ctx, args); err != nil {
		var ec cli.ExitCoder
		if errors.As(err, &ec) {
			if msg := err.Error(); msg != "" {
				fmt.Fprintln(stderr, "analyzer:", msg)
			}
			return ec.ExitCode()
		}
		fmt.Fprintln(stderr, "analyzer:", err)
		if ctx.Err() != nil {
			return 130 // interrupted (SIGINT or SIGTERM), as a shell reports it
		}
		return 1
	}
	return 0
}

const defaultDB = "./dnsloss-data"

// usageError is the command line parser's complaint (an unknown flag, a flag without its value,
// a value that does not parse) as one line that says where the help is, with exit status 2.
func usageError(c *cli.Context, err error, _ bool) error {
	msg := err.Error()
	for _, r := range usageMessages {
		if m := r.re.FindStringSubmatch(msg); m != nil {
			msg = r.to(m)
			break
		}
	}
	return cli.Exit(fmt.Sprintf("%s (see %s --help)", msg, helpName(c)), 2)
}

// usageMessages rewrite the flag package's messages (the whole of each), which name a flag with
// one dash (-db).
var usageMessages = []struct {
	re *regexp.Regexp
	to func(m []string) string
}{
	{regexp.MustCompile(`(?s)^flag provided but not defined: -(.+)$`), func(m []string) string {
		if strings.ContainsAny(m[1], " \t\n") {
			// No flag: an argument such as an SQL comment ("-- the worst hosts\nSELECT ...").
			return `an argument that starts with "-" (an SQL comment?) is taken for a flag: put -- before it (analyzer sql -- "-- ...")`
		}
		return "unknown flag " + dashed(m[1])
	}},
	{regexp.MustCompile(`^flag needs an argument: -(.+)$`), func(m []string) string { return "flag " + dashed(m[1]) + " needs a value" }},
	{regexp.MustCompile(`^invalid value (".*") for flag -([^:]+): (.*)$`), func(m []string) string {
		return "invalid value " + m[1] + " for flag " + dashed(m[2]) + ": " + m[3]
	}},
}

// dashed writes a flag's name as the help does: -f, --format.
func dashed(name string) string {
	if len(name) == 1 {
		return "-" + name
	}
	return "--" + name
}

// helpName is the command line that shows the help of c's command: "analyzer settings".
func helpName(c *cli.Context) string {
	if c != nil && c.Command != nil && c.Command.HelpName != "" {
		return c.Command.HelpName
	}
	return "analyzer"
}

// forEachCommand calls fn for every command and subcommand in cmds.
func forEachCommand(cmds []*cli.Command, fn func(*cli.Command)) {
	for _, cmd := range cmds {
		fn(cmd)
		forEachCommand(cmd.Subcommands, fn)
	}
}

func newApp(stdout, stderr io.Writer) *cli.App {
	dbFlag := &cli.StringFlag{
		Name: "db", Value: defaultDB, EnvVars: []string{"DNSLOSS_DB"},
		Usage: "data directory of the embedded ClickHouse engine (one process at a time)",
	}
	formatFlag := &cli.StringFlag{Name: "format", Aliases: []string{"f"}, Value: "table", Usage: "output format: table, json, csv or html"}
	ingestFlags := []cli.Flag{
		&cli.StringFlag{Name: "host", Usage: "capture point name for the rows, not empty (default: from each file name, web-1.pcap.gz -> web-1)"},
		&cli.StringFlag{Name: "ports", Value: "53", Usage: "comma-separated UDP/TCP ports that carry DNS"},
		&cli.BoolFlag{Name: "replace", Usage: "ingest again files that are already in the store (replacing their rows)"},
		&cli.BoolFlag{Name: "quiet", Aliases: []string{"q"}, Usage: "no progress on stderr"},
	}
	return &cli.App{
		// --param 'edges=[1,2]' is one parameter; repeat a flag for more values
		DisableSliceFlagSeparator: true,
		Name:                      "analyzer",
		Usage:                     "DNS loss reports from captured DNS traffic, computed by ClickHouse",
		Description: `analyzer reads capture files (pcap, pcapng, gzip-compressed or not) into a ClickHouse store,
one row per DNS message (table dns_messages), and reports which hosts lost which queries.

Start with:   analyzer analyze capture.pcap
Then explore: analyzer sql "SELECT * FROM dns_transactions WHERE outcome != 'answered' LIMIT 20"

The store is the embedded ClickHouse engine in --db (default ./dnsloss-data).
Views for your own SQL: dns_transactions (one row per query attempt), dns_lookups (one row per
stub-resolver lookup), loss_by_host. Failed lookups, one line each: analyzer lookups --failed`,
		Writer:    stdout,
		ErrWriter: stderr,
		Flags:     append([]cli.Flag{dbFlag}, remoteFlags()...),
		Commands: []*cli.Command{
			{
				Name:      "analyze",
				Usage:     "ingest capture files, then print the per-host loss report",
				ArgsUsage: "FILE...",
				Flags:     append(append([]cli.Flag{}, ingestFlags...), formatFlag),
				Action: func(c *cli.Context) error {
					return withStore(c, func(ctx context.Context, s chstore.Store) error {
						if err := ingestFiles(ctx, c, s, stderr); err != nil {
							return err
						}
						return printLossReport(ctx, s, c.String("format"), stdout)
					})
				},
			},
			{
				Name:      "ingest",
				Usage:     "read capture files into the store (a file already ingested is skipped unless --replace)",
				ArgsUsage: "FILE...",
				Flags:     ingestFlags,
				Action: func(c *cli.Context) error {
					return withStore(c, func(ctx context.Context, s chstore.Store) error {
						return ingestFiles(ctx, c, s, stderr)
					})
				},
			},
			reportCommand(stdout, stderr),
			{
				Name:      "sql",
				Usage:     "run a query and print its result",
				ArgsUsage: "QUERY",
				Description: `Runs one SQL statement against the store (a QUERY of several, separated by ';', is refused:
run each with its own analyzer sql). Tables: dns_messages, capture_stats;
views: dns_transactions, dns_lookups, loss_by_host. Pass values with --param name=value and refer to them
as {name:Type} in the query, e.g.
  analyzer sql --param n=www.example.com "SELECT * FROM dns_transactions WHERE qname = {n:String}"`,
				Flags: []cli.Flag{
					&cli.StringFlag{Name: "format", Aliases: []string{"f"}, Value: "PrettyCompactMonoBlock", Usage: "any ClickHouse output format (TSV, CSVWithNames, JSONEachRow, PrettyCompact, Markdown, ...; all: SELECT name FROM system.formats WHERE is_output)"},
					&cli.StringSliceFlag{Name: "param", Aliases: []string{"p"}, Usage: "query parameter name=value (repeatable)"},
				},
				Action: func(c *cli.Context) error {
					if c.NArg() != 1 {
						for _, a := range c.Args().Tail() {
							if strings.HasPrefix(a, "-") {
								return cli.Exit(fmt.Sprintf("flag %s after the query: put flags before QUERY (analyzer sql %s \"...\")", a, a), 2)
							}
						}
						return cli.Exit("sql takes one QUERY argument (quote it)", 2)
					}
					query := c.Args().First()
					if strings.TrimSpace(query) == "" {
						return cli.Exit(`QUERY is empty: give one SQL statement, e.g. analyzer sql "SELECT count() FROM dns_messages"`, 2)
					}
					params := chstore.Params{}
					for _, p := range c.StringSlice("param") {
						k, v, ok := strings.Cut(p, "=")
						if !ok {
							return cli.Exit(fmt.Sprintf("--param %q is not name=value", p), 2)
						}
						params[k] = v
					}
					return withStore(c, func(ctx context.Context, s chstore.Store) error {
						if err := oneStatement(ctx, s, query); err != nil {
							return err
						}
						out, err := s.Query(ctx, query, params, c.String("format"))
						if err != nil {
							return unknownFormat(err, c.String("format"))
						}
						_, err = stdout.Write(out)
						return err
					})
				},
			},
			{
				Name:  "schema",
				Usage: "manage the store's tables and views",
				Subcommands: []*cli.Command{{
					Name:  "apply",
					Usage: "create or upgrade the tables (versioned migrations) and views",
					Description: `Applies the migrations in schema/ that the store has not recorded, then creates or
replaces the views in queries/views. The embedded engine gets this on every command; a server
(--clickhouse) only when you run it. On a cluster, --cluster NAME runs every statement ON
CLUSTER NAME, makes each table a ReplicatedMergeTree named NAME_local (macros {shard} and
{replica} must be defined on every server) with a Distributed table of the usual name over it.`,
					Flags: []cli.Flag{&cli.StringFlag{Name: "cluster", Usage: "ClickHouse cluster name (with --clickhouse)"}},
					Action: func(c *cli.Context) error {
						if err := noArgs(c); err != nil {
							return err
						}
						cluster := c.String("cluster")
						if cluster != "" && c.String("clickhouse") == "" {
							return cli.Exit("--cluster needs --clickhouse URL (the embedded engine is a single server)", 2)
						}
						return withStore(c, func(ctx context.Context, s chstore.Store) error {
							var applied []int
							var err error
							if cluster != "" {
								cl := schema.Cluster{Name: cluster}
								if applied, err = schema.ApplyCluster(ctx, s, cl); err == nil {
									err = queries.ApplyViewsCluster(ctx, s, cl)
								}
							} else if c.String("clickhouse") != "" {
								if applied, err = schema.Apply(ctx, s); err == nil {
									err = queries.ApplyViews(ctx, s)
								}
							}
							if err != nil {
								return err
							}
							fmt.Fprintf(stdout, "schema of %s is up to date (applied now: %v)\n", s.Describe(), applied)
							return nil
						})
					},
				}},
			},
			{
				Name:  "settings",
				Usage: "show or change the tunables the views read (table dnsloss_settings)",
				Description: "The views read their tunables from the dnsloss_settings table; the latest value set wins,\n" +
					"and a setting never set, or reset, has its default. `settings list` shows them all.",
				Subcommands: []*cli.Command{
					{
						Name:  "list",
						Usage: "print every setting: its value, its default, and what it does",
						Flags: []cli.Flag{&cli.StringFlag{Name: "format", Aliases: []string{"f"}, Value: "table", Usage: "table, json or csv"}},
						Action: func(c *cli.Context) error {
							if err := noArgs(c); err != nil {
								return err
							}
							return withStore(c, func(ctx context.Context, s chstore.Store) error {
								r, err := settingsTable(ctx, s)
								if err != nil {
									return err
								}
								return r.Render(stdout, c.String("format"))
							})
						},
					},
					{
						Name:      "set",
						Usage:     "set a tunable, e.g. `settings set match_window_ms 5000`",
						ArgsUsage: "NAME VALUE",
						Action: func(c *cli.Context) error {
							if c.NArg() != 2 {
								return cli.Exit("settings set takes NAME VALUE", 2)
							}
							name := c.Args().Get(0)
							st, err := lookupSetting(name)
							if err != nil {
								return err
							}
							v, err := strconv.ParseFloat(c.Args().Get(1), 64)
							if err != nil {
								return cli.Exit(fmt.Sprintf("value %q is not a number", c.Args().Get(1)), 2)
							}
							if err := st.Check(v); err != nil {
								return cli.Exit(err.Error(), 2)
							}
							return withStore(c, func(ctx context.Context, s chstore.Store) error {
								err := s.Exec(ctx, "INSERT INTO dnsloss_settings (name, value) VALUES ({n:String}, {v:Float64})",
									chstore.Params{"n": name, "v": strconv.FormatFloat(v, 'f', -1, 64)})
								if err == nil {
									fmt.Fprintf(stdout, "%s = %s (default %s)\n", name, queries.FormatNumber(v), queries.FormatNumber(st.Default))
								}
								return err
							})
						},
					},
					settingsResetCommand(stdout),
				},
			},
			lookupsCommand(stdout),
			serveCommand(stderr),
		},
	}
}

// withStore opens the store named by the flags, brings its schema and views up to date, runs fn
// and closes the store.
func withStore(c *cli.Context, fn func(context.Context, chstore.Store) error) error {
	s, err := openStore(c)
	if err != nil {
		return err
	}
	defer s.Close()
	ctx := c.Context
	if c.String("clickhouse") == "" {
		// The embedded engine is ours: keep its schema and views up to date.
		if err := applySchema(ctx, s); err != nil {
			return err
		}
		return fn(ctx, s)
	}
	// A server's schema changes only when asked (schema apply), in its single-server or
	// cluster form; say so when it is behind.
	pending, err := schema.Pending(ctx, s)
	if err != nil {
		return err
	}
	if len(pending) > 0 && c.Command.Name != "apply" {
		return fmt.Errorf("the schema of %s lacks migrations %v: run `analyzer --clickhouse URL schema apply` (add --cluster NAME on a cluster)", s.Describe(), pending)
	}
	return fn(ctx, s)
}

func ingestFiles(ctx context.Context, c *cli.Context, s chstore.Store, stderr io.Writer) error {
	if c.NArg() == 0 {
		return cli.Exit("no capture FILE given (e.g. analyzer "+c.Command.Name+" capture.pcap)", 2)
	}
	if err := flagsFirst(c); err != nil {
		return err
	}
	ports, err := dnswire.ParsePorts(c.String("ports"))
	if err != nil {
		return cli.Exit(err.Error(), 2)
	}
	if c.IsSet("host") && strings.TrimSpace(c.String("host")) == "" {
		return cli.Exit("--host is empty: give the capture point's name (e.g. --host web-1), or leave --host out to name each file's rows after the file (web-1.pcap.gz -> web-1)", 2)
	}
	opt := ingest.Options{Host: c.String("host"), Ports: ports, Replace: c.Bool("replace"), Progress: stderr}
	if c.Bool("quiet") {
		opt.Progress = nil
	}
	files := c.Args().Slice()
	for i, path := range files {
		res, err := ingest.File(ctx, s, path, opt)
		if err != nil {
			return notIngested(err, path, files[i+1:])
		}
		if len(res.Overlaps) > 0 {
			fmt.Fprintf(stderr, "ingest %s: warning: its packets span the time of %s, already in the store for host %s; if they captured the same traffic, its queries count twice (give each capture point its own --host)\n",
				path, strings.Join(res.Overlaps, ", "), res.Host)
		}
		switch {
		case opt.Progress == nil || !res.Skipped:
		case res.DuplicateOf != "":
			fmt.Fprintf(stderr, "ingest %s: the same packets as %s, already in the store for host %s; not stored twice\n", path, shownPath(res.DuplicateOf), res.Host)
		default:
			fmt.Fprintf(stderr, "ingest %s: already in the store for host %s; skipped (use --replace to ingest it again)\n", path, res.Host)
		}
	}
	return nil
}

// shownPath writes a file's path as the store records it (absolute) as the user would give it:
// relative to the working directory when the file is in it or below, as the paths given on the
// command line usually are.
func shownPath(p string) string {
	wd, err := os.Getwd()
	if err != nil || !filepath.IsAbs(p) {
		return p
	}
	rel, err := filepath.Rel(wd, p)
	if err != nil || rel == ".." || strings.HasPrefix(rel, ".."+string(filepath.Separator)) {
		return p
	}
	return rel
}

// notIngested adds to err, the error that stopped an ingest at path, the files after it that were
// not ingested, and that it is safe to run the ingest again (a file ingested is skipped then,
// and one cut short is ingested again from the start).
func notIngested(err error, path string, rest []string) error {
	if len(rest) == 0 {
		return err
	}
	const listed = 10
	names := make([]string, 0, listed+1)
	for i, f := range rest {
		if i == listed {
			names = append(names, fmt.Sprintf("and %d more", len(rest)-listed))
			break
		}
		names = append(names, strconv.Quote(f))
	}
	files := "1 file was"
	if len(rest) > 1 {
		files = fmt.Sprintf("%d files were", len(rest))
	}
	return fmt.Errorf("%w; stopped there: %s not ingested: %s (run the same ingest again once %q is fixed or left out: the files already in the store are skipped)",
		err, files, strings.Join(names, ", "), path)
}

// flagsFirst refuses arguments that look like flags after the first positional argument: the
// command line parser stops reading flags there, so they would be taken as file names or
// silently ignored.
func flagsFirst(c *cli.Context) error {
	for _, a := range c.Args().Slice() {
		if strings.HasPrefix(a, "-") && a != "-" {
			return cli.Exit(fmt.Sprintf("flag %s after an argument: put flags before the arguments (analyzer %s %s ...)", a, c.Command.Name, a), 2)
		}
	}
	return nil
}

// noArgs refuses positional arguments for commands that take none.
func noArgs(c *cli.Context) error {
	if c.NArg() > 0 {
		if err := flagsFirst(c); err != nil {
			return err
		}
		return cli.Exit(fmt.Sprintf("%s takes no arguments, got %q", c.Command.Name, c.Args().First()), 2)
	}
	return nil
}

// oneStatement refuses a query of no statement (only comments or ';') or of several statements: the embedded engine (and analyzer serve)
// would run them all, and when one fails print nothing though the ones before it have run; a
// ClickHouse server refuses them with the parser's error. The engine's own parser decides (it
// knows a ';' in a string or a comment); what else it finds wrong is left to the query itself.
func oneStatement(ctx context.Context, s chstore.Store, query string) error {
	_, err := s.Query(ctx, "SELECT formatQuery({q:String})", chstore.Params{"q": query}, "TSV")
	switch {
	case err == nil:
	case strings.Contains(err.Error(), "Multi-statements are not allowed"):
		return cli.Exit("QUERY holds several SQL statements (separated by ';'): sql runs one; run each with its own analyzer sql", 2)
	case strings.Contains(err.Error(), "Empty query"):
		// Only ';' or comments: the engine would say "Empty query" (exit 1), or run nothing and
		// print nothing (a comment alone).
		return cli.Exit(`QUERY holds no SQL statement (only comments or ';'): give one, e.g. analyzer sql "SELECT count() FROM dns_messages"`, 2)
	}
	return nil
}

// settingsTable lists every setting of queries.Settings with the value the views use now.
func settingsTable(ctx context.Context, s chstore.Store) (*tabular.Result, error) {
	current, err := setSettings(ctx, s)
	if err != nil {
		return nil, err
	}
	r := &tabular.Result{
		Columns: []string{"name", "value", "default", "set", "description"},
		Types:   []string{"String", "Float64", "Float64", "Bool", "String"},
	}
	for _, st := range queries.Settings {
		def := json.Number(queries.FormatNumber(st.Default))
		var v any = def
		cur, ok := current[st.Name]
		if ok {
			v = cur
		}
		r.Rows = append(r.Rows, []any{st.Name, v, def, ok, st.Usage})
	}
	return r, nil
}

// engineUnknownFormat finds the format and the suggestions in the engine's UNKNOWN_FORMAT error,
// "Unknown format Bogus. Maybe you meant: ['One','Npy']. (UNKNOWN_FORMAT)" (a server over HTTP,
// chDB), or "Unknown format Bogus (UNKNOWN_FORMAT)" (analyzer serve).
var engineUnknownFormat = regexp.MustCompile(`Unknown format ([^\s.]+)(?:\. Maybe you meant: \[([^\]]*)\])?`)

// unknownFormat turns the engine's UNKNOWN_FORMAT error about the --format of `sql` into one
// sentence that names the format and the usual ones; other errors, and an unknown format
// named in the query itself (FORMAT X, file(..., X)), stay as the engine said them.
func unknownFormat(err error, format string) error {
	m := engineUnknownFormat.FindStringSubmatch(err.Error())
	if m == nil || m[1] != format || !strings.Contains(err.Error(), "UNKNOWN_FORMAT") {
		return err
	}
	msg := fmt.Sprintf("--format %s: ClickHouse has no output format of that name", format)
	if m[2] != "" {
		msg += " (did you mean " + strings.Join(strings.Split(strings.ReplaceAll(m[2], "'", ""), ","), " or ") + "?)"
	}
	msg += "; the usual ones are TSV, TSVWithNames, CSVWithNames, JSONEachRow, PrettyCompact and Markdown " +
		`(all: analyzer sql -f TSV "SELECT name FROM system.formats WHERE is_output")`
	return cli.Exit(msg, 2)
}
