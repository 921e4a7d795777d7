package analyzercmd

import (
	"context"
	"fmt"
	"io"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/dnsloss/dnsloss/internal/chstore"
	"github.com/dnsloss/dnsloss/internal/lossreport"
)

// exitThreshold is the exit status when a --fail-if threshold is crossed (1 is an error, 2 a
// usage error).
const exitThreshold = 3

func reportCommand(stdout, stderr io.Writer) *cli.Command {
	return &cli.Command{
		Name:  "report",
		Usage: "print the loss report of a time range, or write one per closed period (--every)",
		Description: `Per host and DNS server: attempts, unanswered ratio and estimated packet loss, failed lookups,
masked timeouts, retries and time lost, rtt percentiles, capture intervals with drops; the worst
lookups as readable lines and resolver-option advice. The same numbers in every format.

  analyzer report --last 24h
  analyzer report --since 2026-12-01 --until 2026-12-02 --format json
  analyzer report --last 1h --format html --out loss.html
  analyzer report --last 1h --fail-if 'unanswered_ratio > 0.01'     (exit status 3 when crossed)
  analyzer report --every 1h --out-dir /var/lib/dnsloss/reports --keep 168 --once

Times are RFC 3339 or "YYYY-MM-DD[ HH:MM[:SS]]" in UTC, or a duration back from now (6h, 7d).
A report with both bounds is compared with the period of the same length before it.
--every writes one file per closed period (periods aligned to multiples of --every in UTC,
names carry the period), records each period's per-host summary in the table loss_reports, and
prunes all but the newest --keep periods' files; with --once it does the periods closed so far
and exits (for cron or a systemd timer), else it keeps running.`,
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "since", Usage: "start of the period (inclusive)"},
			&cli.StringFlag{Name: "until", Usage: "end of the period (exclusive)"},
			&cli.StringFlag{Name: "last", Usage: "the period that ends now and lasts this long (e.g. 24h, 7d)"},
			&cli.StringFlag{Name: "format", Aliases: []string{"f"}, Value: "table", Usage: "table, json, csv or html (with --out-dir: a comma-separated list)"},
			&cli.StringFlag{Name: "out", Aliases: []string{"o"}, Usage: "write the report to this file instead of standard output (without --format, its extension .html, .json or .csv chooses the format)"},
			&cli.IntFlag{Name: "worst", Value: 10, Usage: "how many worst lookups to list"},
			&cli.StringSliceFlag{Name: "fail-if", Usage: "exit with status 3 when a host (or host and server) line holds METRIC OP NUMBER, e.g. 'unanswered_ratio > 0.01' (repeatable)"},
			&cli.StringFlag{Name: "every", Usage: "scheduled mode: the period length (e.g. 1h, 24h)"},
			&cli.StringFlag{Name: "out-dir", Usage: "scheduled mode: directory of the report files"},
			&cli.IntFlag{Name: "keep", Usage: "scheduled mode: keep the files of this many newest periods (0: all)"},
			&cli.StringFlag{Name: "delay", Value: "1m", Usage: "scheduled mode: how long after its end a period counts as closed"},
			&cli.BoolFlag{Name: "once", Usage: "scheduled mode: report the periods closed so far, then exit"},
		},
		Action: func(c *cli.Context) error {
			if err := noArgs(c); err != nil {
				return err
			}
			for _, f := range []string{"worst", "keep"} {
				if n := c.Int(f); n < 0 {
					return cli.Exit(fmt.Sprintf("--%s %d: give a count, 0 or more", f, n), 2)
				}
			}
			var thresholds []lossreport.Threshold
			for _, s := range c.StringSlice("fail-if") {
				t, err := lossreport.ParseThreshold(s)
				if err != nil {
					return cli.Exit(err.Error(), 2)
				}
				thresholds = append(thresholds, t)
			}
			if c.IsSet("every") {
				return scheduledReports(c, thresholds, stderr)
			}
			for _, f := range []string{"out-dir", "keep", "once", "delay"} {
				if c.IsSet(f) {
					return cli.Exit("--"+f+" needs --every (scheduled mode)", 2)
				}
			}
			since, until, err := reportRange(c, time.Now())
			if err != nil {
				return cli.Exit(err.Error(), 2)
			}
			format := c.String("format")
			out := c.String("out")
			if !c.IsSet("format") && out != "" {
				format = formatOf(out)
			}
			if err := checkFormat(format); err != nil {
				if several := strings.Split(format, ","); len(several) > 1 && allFormats(several) {
					return cli.Exit(fmt.Sprintf("--format %s: several formats need --every (scheduled mode writes one file per format in --out-dir); "+
						"without it, give one format and run report once for each", format), 2)
				}
				return cli.Exit(err.Error(), 2)
			}
			if out != "" {
				// Before the work, not after it: the place to write must exist.
				if err := lossreport.CheckWritable(out); err != nil {
					return cli.Exit(err.Error(), 2)
				}
			}
			return withStore(c, func(ctx context.Context, s chstore.Store) error {
				r, err := lossreport.Build(ctx, s, lossreport.Options{Since: since, Until: until, Compare: true, Worst: c.Int("worst")})
				if err != nil {
					return err
				}
				if err := writeReport(r, format, out, stdout); err != nil {
					return err
				}
				return thresholdExit(r.FailIf(thresholds), stderr)
			})
		},
	}
}

// formatOf is the report format a file name asks for by its extension (report.html: html), or
// the default, table.
func formatOf(path string) string {
	switch strings.ToLower(filepath.Ext(path)) {
	case ".html", ".htm":
		return "html"
	case ".json":
		return "json"
	case ".csv":
		return "csv"
	}
	return "table"
}

// allFormats says whether every one of fs is a report format.
func allFormats(fs []string) bool {
	for _, f := range fs {
		if checkFormat(strings.TrimSpace(f)) != nil {
			return false
		}
	}
	return true
}

func checkFormat(f string) error {
	if f == "text" { // what `lookups` calls its readable form
		return nil
	}
	for _, k := range lossreport.Formats {
		if f == k {
			return nil
		}
	}
	return fmt.Errorf("unknown --format %q (want one of %s)", f, strings.Join(lossreport.Formats, ", "))
}

// writeReport writes r to path (through a temporary file, so a reader never sees half a report)
// or, when path is empty, to stdout.
func writeReport(r *lossreport.Report, format, path string, stdout io.Writer) error {
	if path == "" {
		return r.Render(stdout, format)
	}
	return lossreport.WriteFile(path, func(w io.Writer) error { return r.Render(w, format) })
}

func thresholdExit(cs []lossreport.Crossing, stderr io.Writer) error {
	if len(cs) == 0 {
		return nil
	}
	for _, c := range cs {
		fmt.Fprintln(stderr, "threshold crossed:", c)
	}
	return cli.Exit("", exitThreshold)
}

// reportRange reads --since, --until and --last.
func reportRange(c *cli.Context, now time.Time) (time.Time, time.Time, error) {
	var since, until time.Time
	if c.IsSet("last") {
		if c.IsSet("since") || c.IsSet("until") {
			return since, until, fmt.Errorf("--last cannot be combined with --since or --until")
		}
		d, err := parseDuration(c.String("last"))
		if err != nil || d <= 0 {
			return since, until, fmt.Errorf("--last %q is not a positive duration (e.g. 24h, 7d)", c.String("last"))
		}
		if err := storable(now.Add(-d)); err != nil {
			return since, until, fmt.Errorf("--last %s: %w", c.String("last"), err)
		}
		return now.Add(-d), now, nil
	}
	var err error
	if c.IsSet("since") {
		if since, err = parseTime(c.String("since"), now); err != nil {
			return since, until, fmt.Errorf("--since: %w", err)
		}
	}
	if c.IsSet("until") {
		if until, err = parseTime(c.String("until"), now); err != nil {
			return since, until, fmt.Errorf("--until: %w", err)
		}
	}
	if !since.IsZero() && !until.IsZero() && !since.Before(until) {
		return since, until, fmt.Errorf("--since %s is not before --until %s", c.String("since"), c.String("until"))
	}
	return since, until, nil
}

var timeLayouts = []string{time.RFC3339Nano, "2006-01-02T15:04:05", "2006-01-02 15:04:05", "2006-01-02T15:04", "2006-01-02 15:04", "2006-01-02"}

// parseTime reads an absolute time (RFC 3339, or a date and time in UTC) or a duration back
// from now.
func parseTime(s string, now time.Time) (time.Time, error) {
	for _, l := range timeLayouts {
		if t, err := time.ParseInLocation(l, s, time.UTC); err == nil {
			return t, storable(t)
		}
	}
	if d, err := parseDuration(s); err == nil && d > 0 {
		return now.Add(-d), storable(now.Add(-d))
	}
	return time.Time{}, fmt.Errorf("%q is neither a time (2026-12-03T10:00:00Z, \"2026-12-03 10:00\") nor a duration back from now (6h, 7d)", s)
}

// storable says whether the store's timestamps (DateTime64(9), from the Unix epoch) can hold t.
func storable(t time.Time) error {
	if t.Before(time.Unix(0, 0)) || !t.Before(time.Date(2262, 1, 1, 0, 0, 0, 0, time.UTC)) {
		return fmt.Errorf("%s is outside the times the store holds (1970-01-01 to 2261-12-31 UTC)", t.UTC().Format(time.RFC3339))
	}
	return nil
}

// parseDuration is time.ParseDuration with days (d) and weeks (w) as well.
func parseDuration(s string) (time.Duration, error) {
	for _, u := range []struct {
		suffix string
		unit   time.Duration
	}{{"d", 24 * time.Hour}, {"w", 7 * 24 * time.Hour}} {
		if n, ok := strings.CutSuffix(s, u.suffix); ok {
			v, err := strconv.ParseFloat(n, 64)
			if err != nil {
				return 0, fmt.Errorf("invalid duration %q", s)
			}
			return time.Duration(v * float64(u.unit)), nil
		}
	}
	return time.ParseDuration(s)
}

func scheduledReports(c *cli.Context, thresholds []lossreport.Threshold, stderr io.Writer) error {
	every, err := parseDuration(c.String("every"))
	if err != nil || every <= 0 {
		return cli.Exit(fmt.Sprintf("--every %q is not a positive duration (e.g. 1h, 24h)", c.String("every")), 2)
	}
	delay, err := parseDuration(c.String("delay"))
	if err != nil || delay < 0 {
		return cli.Exit(fmt.Sprintf("--delay %q is not a duration (e.g. 1m)", c.String("delay")), 2)
	}
	if c.String("out-dir") == "" {
		return cli.Exit("--every needs --out-dir DIR for the report files", 2)
	}
	for _, f := range []string{"last", "until", "out"} {
		if c.IsSet(f) {
			return cli.Exit("--"+f+" does not apply to scheduled reports (--every)", 2)
		}
	}
	var since time.Time
	if c.IsSet("since") {
		if since, err = parseTime(c.String("since"), time.Now()); err != nil {
			return cli.Exit("--since: "+err.Error(), 2)
		}
	}
	formats := strings.Split(c.String("format"), ",")
	if !c.IsSet("format") {
		formats = []string{"html"}
	}
	for _, f := range formats {
		if err := checkFormat(f); err != nil {
			return cli.Exit(err.Error(), 2)
		}
	}
	opt := lossreport.ScheduleOptions{
		Every: every, OutDir: c.String("out-dir"), Formats: formats, Keep: c.Int("keep"), Delay: delay,
		Since: since, Worst: c.Int("worst"), Log: stderr,
	}
	return withStore(c, func(ctx context.Context, s chstore.Store) error {
		if c.Bool("once") {
			done, err := lossreport.RunOnce(ctx, s, opt)
			if err != nil {
				return err
			}
			if len(done) == 0 {
				fmt.Fprintln(stderr, "report: no closed period with query attempts left to report")
			}
			var crossed []lossreport.Crossing
			for _, p := range done {
				crossed = append(crossed, p.Report.FailIf(thresholds)...)
			}
			return thresholdExit(crossed, stderr)
		}
		return lossreport.Run(ctx, s, opt, func(done []lossreport.Produced) error {
			for _, p := range done {
				for _, x := range p.Report.FailIf(thresholds) {
					fmt.Fprintf(stderr, "threshold crossed in %s: %s\n", p.Files[0], x)
				}
			}
			return nil
		})
	})
}

// printLossReport prints the report of everything in the store (what analyze shows).
func printLossReport(ctx context.Context, s chstore.Store, format string, w io.Writer) error {
	if err := checkFormat(format); err != nil {
		return cli.Exit(err.Error(), 2)
	}
	r, err := lossreport.Build(ctx, s, lossreport.Options{})
	if err != nil {
		return err
	}
	return r.Render(w, format)
}
