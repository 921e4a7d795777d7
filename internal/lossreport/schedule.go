package lossreport

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/dnsloss/dnsloss/internal/chstore"
	"github.com/dnsloss/dnsloss/queries"
)

// ScheduleOptions configure scheduled reports.
type ScheduleOptions struct {
	// Every is the period length; periods are aligned to multiples of it since the Unix epoch
	// (UTC): 1h periods start on the hour, 24h periods at 00:00 UTC.
	Every time.Duration
	// OutDir receives one file per period and format, named loss-report-START-END.EXT.
	OutDir string
	// Formats are the formats written for each period (default html).
	Formats []string
	// Keep is how many periods' files to keep in OutDir (older ones are removed); 0 keeps all.
	Keep int
	// Delay is how long after a period ends it counts as closed (late rows from collectors).
	Delay time.Duration
	// Since bounds the first run: no period starts before it. Zero: from the first attempt in
	// the store.
	Since time.Time
	// Worst is passed to Build.
	Worst int
	// Now is the clock; default time.Now.
	Now func() time.Time
	// Log receives one line per period produced; nil for none.
	Log io.Writer
}

// Produced is one period's report written by the scheduler.
type Produced struct {
	Report *Report
	Files  []string
}

var reportFile = regexp.MustCompile(`^loss-report-([0-9]{8}T[0-9]{6}Z)-([0-9]{8}T[0-9]{6}Z)\.(txt|json|csv|html)$`)

const fileTime = "20060102T150405Z"

// FileName returns the name of the report file of the period [start, end) in format.
func FileName(start, end time.Time, format string) string {
	return "loss-report-" + start.UTC().Format(fileTime) + "-" + end.UTC().Format(fileTime) + "." + FileExt(format)
}

func (o *ScheduleOptions) now() time.Time {
	if o.Now != nil {
		return o.Now()
	}
	return time.Now()
}

func (o *ScheduleOptions) check() error {
	if o.Every < time.Second || o.Every%time.Second != 0 {
		return fmt.Errorf("report period %s is not a whole number of seconds of at least 1s", o.Every)
	}
	if o.OutDir == "" {
		return fmt.Errorf("scheduled reports need an output directory (--out-dir)")
	}
	if len(o.Formats) == 0 {
		o.Formats = []string{"html"}
	}
	for _, f := range o.Formats {
		if !knownFormat(f) {
			return fmt.Errorf("unknown report format %q (want one of %s)", f, strings.Join(Formats, ", "))
		}
	}
	return nil
}

func knownFormat(f string) bool {
	for _, k := range Formats {
		if f == k {
			return true
		}
	}
	return f == "text"
}

// floorTime returns the start of the period of length every that holds t.
func floorTime(t time.Time, every time.Duration) time.Time {
	ns := t.UnixNano()
	e := int64(every)
	return time.Unix(0, floorDiv(ns, e)*e).UTC()
}

// pending returns the closed periods that the scheduler has not recorded yet and that hold query
// attempts, oldest first: from the end of the last recorded period of this length (or the first
// query in the store, or opt.Since) to the last period that ended at least opt.Delay ago.
func pending(ctx context.Context, s chstore.Store, opt *ScheduleOptions) ([]time.Time, error) {
	every := strconv.FormatInt(opt.Every.Milliseconds(), 10)
	out, err := s.Query(ctx, `SELECT count(), toUnixTimestamp64Milli(max(period_end)) FROM loss_reports
WHERE toUnixTimestamp64Milli(period_end) - toUnixTimestamp64Milli(period_start) = {every:Int64}`,
		chstore.Params{"every": every}, "TSV")
	if err != nil {
		return nil, fmt.Errorf("cannot read the recorded report periods from loss_reports: %w", err)
	}
	var from time.Time
	if f := strings.Fields(string(out)); len(f) == 2 && f[0] != "0" {
		ms, _ := strconv.ParseInt(f[1], 10, 64)
		from = time.UnixMilli(ms).UTC()
	}
	if !opt.Since.IsZero() {
		if s := floorTime(opt.Since.Add(opt.Every-1), opt.Every); s.After(from) {
			from = s
		}
	}
	closed := floorTime(opt.now().Add(-opt.Delay), opt.Every)
	if !from.Before(closed) {
		return nil, nil
	}
	// The periods in [from, closed) that hold at least one query.
	out, err = s.Query(ctx, `SELECT DISTINCT intDiv(toUnixTimestamp64Milli(ts), {every:Int64}) * {every:Int64} AS p
FROM dns_messages
WHERE qr = 0 AND ts >= {from:DateTime64(9, 'UTC')} AND ts < {closed:DateTime64(9, 'UTC')}
ORDER BY p`, chstore.Params{"every": every, "from": queries.FormatTS(from), "closed": queries.FormatTS(closed)}, "TSV")
	if err != nil {
		return nil, fmt.Errorf("cannot list the periods that hold queries: %w", err)
	}
	var periods []time.Time
	for _, f := range strings.Fields(string(out)) {
		ms, err := strconv.ParseInt(f, 10, 64)
		if err != nil {
			return nil, fmt.Errorf("cannot read a period start %q: %w", f, err)
		}
		periods = append(periods, time.UnixMilli(ms).UTC())
	}
	return periods, nil
}

// RunOnce writes the report of every closed period not yet recorded in loss_reports, records each
// one's per-host summary there, and prunes old files. Periods without any query attempt get no
// report and no row. It returns what it produced, oldest first.
func RunOnce(ctx context.Context, s chstore.Store, opt ScheduleOptions) ([]Produced, error) {
	if err := opt.check(); err != nil {
		return nil, err
	}
	if err := os.MkdirAll(opt.OutDir, 0o755); err != nil {
		return nil, fmt.Errorf("cannot create report directory %q: %w", opt.OutDir, err)
	}
	periods, err := pending(ctx, s, &opt)
	if err != nil {
		return nil, err
	}
	var done []Produced
	for _, start := range periods {
		if err := ctx.Err(); err != nil {
			return done, err
		}
		end := start.Add(opt.Every)
		r, err := Build(ctx, s, Options{Since: start, Until: end, Compare: true, Worst: opt.Worst, Now: opt.Now})
		if err != nil {
			return done, fmt.Errorf("cannot build the report of %s: %w", periodName(start, end), err)
		}
		if r.Total.Attempts == 0 {
			continue
		}
		p := Produced{Report: r}
		for _, f := range opt.Formats {
			path := filepath.Join(opt.OutDir, FileName(start, end, f))
			if err := WriteFile(path, func(w io.Writer) error { return r.Render(w, f) }); err != nil {
				return done, err
			}
			p.Files = append(p.Files, path)
		}
		if err := Record(ctx, s, r); err != nil {
			return done, err
		}
		if opt.Log != nil {
			fmt.Fprintf(opt.Log, "report %s: %s, %s, %d unanswered; worse: %s; wrote %s\n",
				periodName(start, end), plural(len(r.Hosts), "host"), plural(r.Total.Attempts, "attempt"), r.Total.Unanswered,
				orNone(r.WorseHosts), strings.Join(p.Files, ", "))
		}
		done = append(done, p)
	}
	if err := Prune(opt.OutDir, opt.Keep); err != nil {
		return done, err
	}
	return done, nil
}

func orNone(s []string) string {
	if len(s) == 0 {
		return "none"
	}
	return strings.Join(s, ", ")
}

func periodName(start, end time.Time) string {
	return fmtTime(start) + " to " + fmtTime(end)
}

// Run calls RunOnce at the start and then each time a period closes, until ctx is done. each is
// called with what every pass produced.
func Run(ctx context.Context, s chstore.Store, opt ScheduleOptions, each func([]Produced) error) error {
	if err := opt.check(); err != nil {
		return err
	}
	for {
		p, err := RunOnce(ctx, s, opt)
		if err != nil {
			return err
		}
		if each != nil {
			if err := each(p); err != nil {
				return err
			}
		}
		now := opt.now()
		next := floorTime(now.Add(-opt.Delay), opt.Every).Add(opt.Every).Add(opt.Delay)
		t := time.NewTimer(next.Sub(now))
		select {
		case <-ctx.Done():
			t.Stop()
			return nil
		case <-t.C:
		}
	}
}

// CheckWritable says why a report cannot be written to path: its directory is missing, or path
// is a directory. It does not write anything.
func CheckWritable(path string) error {
	if fi, err := os.Stat(path); err == nil && fi.IsDir() {
		return fmt.Errorf("cannot write report %q: it is a directory (give a file name)", path)
	}
	if _, err := os.Stat(filepath.Dir(path)); err != nil {
		return fmt.Errorf("cannot write report %q: %w (create the directory first)", path, err)
	}
	return nil
}

// WriteFile writes a report file through a temporary file in the same directory, so that a
// reader never sees half a report.
func WriteFile(path string, write func(io.Writer) error) error {
	if err := CheckWritable(path); err != nil {
		return err
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), ".tmp-"+filepath.Base(path)+"-")
	if err != nil {
		return fmt.Errorf("cannot write report %q: %w", path, err)
	}
	defer os.Remove(tmp.Name())
	if err := write(tmp); err != nil {
		tmp.Close()
		return fmt.Errorf("cannot write report %q: %w", path, err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("cannot write report %q: %w", path, err)
	}
	if err := os.Chmod(tmp.Name(), 0o644); err != nil {
		return fmt.Errorf("cannot write report %q: %w", path, err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("cannot write report %q: %w", path, err)
	}
	return nil
}

// Prune removes the report files of all but the keep newest periods in dir (keep 0: none
// removed). Only files named like FileName are touched.
func Prune(dir string, keep int) error {
	if keep <= 0 {
		return nil
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		return fmt.Errorf("cannot list report directory %q: %w", dir, err)
	}
	byPeriod := map[string][]string{}
	for _, e := range entries {
		m := reportFile.FindStringSubmatch(e.Name())
		if m == nil || !e.Type().IsRegular() {
			continue
		}
		key := m[1] + "-" + m[2]
		byPeriod[key] = append(byPeriod[key], e.Name())
	}
	periods := make([]string, 0, len(byPeriod))
	for k := range byPeriod {
		periods = append(periods, k)
	}
	sort.Sort(sort.Reverse(sort.StringSlice(periods)))
	for _, k := range periods[min(keep, len(periods)):] {
		for _, name := range byPeriod[k] {
			if err := os.Remove(filepath.Join(dir, name)); err != nil {
				return fmt.Errorf("cannot prune old report: %w", err)
			}
		}
	}
	return nil
}

type lossReportRow struct {
	PeriodStart string   `json:"period_start"`
	PeriodEnd   string   `json:"period_end"`
	Host        string   `json:"host"`
	Servers     []string `json:"servers"`
	Counts
	CaptureDropIntervals int    `json:"capture_drop_intervals"`
	Worse                uint8  `json:"worse"`
	GeneratedAt          string `json:"generated_at"`
}

// Record stores the per-host summary of a report with both bounds in loss_reports.
func Record(ctx context.Context, s chstore.Store, r *Report) error {
	if r.Period.Since == nil || r.Period.Until == nil {
		return fmt.Errorf("cannot record a report without both period bounds in loss_reports")
	}
	if len(r.Hosts) == 0 {
		return nil
	}
	const layout = "2006-01-02 15:04:05.000"
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	for _, h := range r.Hosts {
		row := lossReportRow{
			PeriodStart: r.Period.Since.UTC().Format(layout), PeriodEnd: r.Period.Until.UTC().Format(layout),
			Host: h.Host, Servers: h.Servers, Counts: h.Counts, CaptureDropIntervals: h.CaptureDropIntervals,
			GeneratedAt: r.GeneratedAt.UTC().Format(layout),
		}
		if h.Worse {
			row.Worse = 1
		}
		if err := enc.Encode(row); err != nil {
			return fmt.Errorf("cannot encode a loss_reports row: %w", err)
		}
	}
	const cols = `period_start DateTime64(3, 'UTC'), period_end DateTime64(3, 'UTC'), host String, servers Array(String),
attempts UInt64, answered UInt64, late UInt64, unanswered UInt64, unknown UInt64, capture_lossy UInt64,
unanswered_ratio Nullable(Float64), est_packet_loss Nullable(Float64),
lookups Nullable(UInt64), failed_lookups Nullable(UInt64), masked_timeouts Nullable(UInt64), retries Nullable(UInt64), time_lost_ms Nullable(Float64),
rtt_p50_ms Nullable(Float64), rtt_p95_ms Nullable(Float64), rtt_p99_ms Nullable(Float64),
capture_drop_intervals UInt32, worse UInt8, generated_at DateTime64(3, 'UTC')`
	names := []string{"period_start", "period_end", "host", "servers", "attempts", "answered", "late", "unanswered", "unknown", "capture_lossy",
		"unanswered_ratio", "est_packet_loss", "lookups", "failed_lookups", "masked_timeouts", "retries", "time_lost_ms",
		"rtt_p50_ms", "rtt_p95_ms", "rtt_p99_ms", "capture_drop_intervals", "worse", "generated_at"}
	list := strings.Join(names, ", ")
	sql := "INSERT INTO loss_reports (" + list + ") SELECT " + list +
		" FROM format(JSONEachRow, " + chstore.QuoteString(cols) + ", {rows:String})"
	if err := s.Exec(ctx, sql, chstore.Params{"rows": b.String()}); err != nil {
		return fmt.Errorf("cannot record the report of %s in loss_reports: %w", periodName(*r.Period.Since, *r.Period.Until), err)
	}
	return nil
}
