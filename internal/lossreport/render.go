package lossreport

import (
	"encoding/csv"
	"encoding/json"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	"github.com/dnsloss/dnsloss/internal/tabular"
)

// Formats are the formats Render writes.
var Formats = []string{"table", "json", "csv", "html"}

// Render writes r in format: "table" (or ""), "json", "csv" or "html".
func (r *Report) Render(w io.Writer, format string) error {
	switch format {
	case "", "table", "text":
		return r.Text(w)
	case "json":
		return r.JSON(w)
	case "csv":
		return r.CSV(w)
	case "html":
		return r.HTML(w)
	}
	return fmt.Errorf("unknown report format %q (want one of %s)", format, strings.Join(Formats, ", "))
}

// FileExt returns the file name extension of a format.
func FileExt(format string) string {
	if format == "table" || format == "text" || format == "" {
		return "txt"
	}
	return format
}

// JSON writes the report as one indented JSON object (schema in Schema).
func (r *Report) JSON(w io.Writer) error {
	b, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return fmt.Errorf("cannot encode the report as JSON: %w", err)
	}
	b = append(b, '\n')
	_, err = w.Write(b)
	return err
}

// column is one column of a report table: its name and how a line's value reads.
type column[T any] struct {
	name    string
	numeric bool
	value   func(T) string // "" for null
}

func intCol[T any](name string, f func(T) int64) column[T] {
	return column[T]{name, true, func(x T) string { return strconv.FormatInt(f(x), 10) }}
}

func optIntCol[T any](name string, f func(T) *int64) column[T] {
	return column[T]{name, true, func(x T) string {
		if v := f(x); v != nil {
			return strconv.FormatInt(*v, 10)
		}
		return ""
	}}
}

func optFloatCol[T any](name string, f func(T) *float64) column[T] {
	return column[T]{name, true, func(x T) string {
		if v := f(x); v != nil {
			return FormatFloat(*v)
		}
		return ""
	}}
}

func countColumns[T any](c func(T) *Counts) []column[T] {
	return []column[T]{
		intCol("attempts", func(x T) int64 { return c(x).Attempts }),
		intCol("answered", func(x T) int64 { return c(x).Answered }),
		intCol("late", func(x T) int64 { return c(x).Late }),
		intCol("unanswered", func(x T) int64 { return c(x).Unanswered }),
		intCol("unknown", func(x T) int64 { return c(x).Unknown }),
		intCol("capture_lossy", func(x T) int64 { return c(x).CaptureLossy }),
		optFloatCol("unanswered_ratio", func(x T) *float64 { return c(x).UnansweredRatio }),
		optFloatCol("est_packet_loss", func(x T) *float64 { return c(x).EstPacketLoss }),
		optIntCol("lookups", func(x T) *int64 { return c(x).Lookups }),
		optIntCol("failed_lookups", func(x T) *int64 { return c(x).FailedLookups }),
		optIntCol("masked_timeouts", func(x T) *int64 { return c(x).MaskedTimeouts }),
		optIntCol("retries", func(x T) *int64 { return c(x).Retries }),
		optFloatCol("time_lost_ms", func(x T) *float64 { return c(x).TimeLostMs }),
		optFloatCol("rtt_p50_ms", func(x T) *float64 { return c(x).RTTP50Ms }),
		optFloatCol("rtt_p95_ms", func(x T) *float64 { return c(x).RTTP95Ms }),
		optFloatCol("rtt_p99_ms", func(x T) *float64 { return c(x).RTTP99Ms }),
	}
}

// rowColumns are the columns of the per host and DNS server table, in every format.
func rowColumns() []column[Row] {
	cols := []column[Row]{
		{"host", false, func(x Row) string { return x.Host }},
		{"server_ip", false, func(x Row) string { return x.Server }},
	}
	cols = append(cols, countColumns(func(x Row) *Counts { return &x.Counts })...)
	return append(cols, intCol("capture_drop_intervals", func(x Row) int64 { return int64(x.CaptureDropIntervals) }))
}

// hostColumns are the columns of the per host table (text and HTML).
func hostColumns(compared bool) []column[Host] {
	cols := []column[Host]{
		{"host", false, func(x Host) string { return x.Host }},
		{"servers", false, func(x Host) string { return strings.Join(x.Servers, " ") }},
		intCol("attempts", func(x Host) int64 { return x.Attempts }),
		intCol("unanswered", func(x Host) int64 { return x.Unanswered }),
		optFloatCol("unanswered_ratio", func(x Host) *float64 { return x.UnansweredRatio }),
	}
	if compared {
		cols = append(cols, optFloatCol("previous_ratio", func(x Host) *float64 {
			if x.Previous == nil {
				return nil
			}
			return x.Previous.UnansweredRatio
		}))
	}
	cols = append(cols,
		optFloatCol("est_packet_loss", func(x Host) *float64 { return x.EstPacketLoss }),
		optIntCol("failed_lookups", func(x Host) *int64 { return x.FailedLookups }),
		optIntCol("masked_timeouts", func(x Host) *int64 { return x.MaskedTimeouts }),
		optFloatCol("time_lost_ms", func(x Host) *float64 { return x.TimeLostMs }),
		optFloatCol("rtt_p95_ms", func(x Host) *float64 { return x.RTTP95Ms }),
		intCol("capture_drop_intervals", func(x Host) int64 { return int64(x.CaptureDropIntervals) }),
	)
	if compared {
		cols = append(cols, column[Host]{"worse", false, func(x Host) string {
			if x.Worse {
				return "WORSE"
			}
			return ""
		}})
	}
	return cols
}

// dropNullColumns leaves out the numeric columns that are null on every line (the lookup columns
// of a store without the lookups layer), for the formats that people read.
func dropNullColumns[T any](cols []column[T], lines []T) []column[T] {
	var out []column[T]
	for _, c := range cols {
		keep := !c.numeric
		for _, l := range lines {
			keep = keep || c.value(l) != ""
		}
		if keep {
			out = append(out, c)
		}
	}
	return out
}

// table turns lines into a tabular.Result (null as nil) so that text tables align like the rest
// of the analyzer's output. Columns null on every line are left out.
func table[T any](cols []column[T], lines []T) *tabular.Result {
	cols = dropNullColumns(cols, lines)
	res := &tabular.Result{}
	for _, c := range cols {
		res.Columns = append(res.Columns, c.name)
		if c.numeric {
			res.Types = append(res.Types, "Float64")
		} else {
			res.Types = append(res.Types, "String")
		}
	}
	for _, l := range lines {
		row := make([]any, len(cols))
		for i, c := range cols {
			if v := c.value(l); v != "" || !c.numeric {
				row[i] = v
			}
		}
		res.Rows = append(res.Rows, row)
	}
	return res
}

// CSV writes the per host and DNS server lines, one CSV record each, with the period's bounds in
// the first two columns (empty when open); null values are empty fields.
func (r *Report) CSV(w io.Writer) error {
	cw := csv.NewWriter(w)
	cols := rowColumns()
	head := []string{"period_since", "period_until"}
	for _, c := range cols {
		head = append(head, c.name)
	}
	if err := cw.Write(head); err != nil {
		return err
	}
	since, until := fmtTimePtr(r.Period.Since), fmtTimePtr(r.Period.Until)
	for _, row := range r.Rows {
		rec := []string{since, until}
		for _, c := range cols {
			rec = append(rec, c.value(row))
		}
		if err := cw.Write(rec); err != nil {
			return err
		}
	}
	cw.Flush()
	return cw.Error()
}

func fmtTimePtr(t *time.Time) string {
	if t == nil {
		return ""
	}
	return t.UTC().Format(time.RFC3339Nano)
}

// fmtTime writes a timestamp for people: UTC, to the millisecond.
func fmtTime(t time.Time) string { return t.UTC().Format("2006-01-02 15:04:05.000Z") }

// PeriodText describes the report's period for people.
func (r *Report) PeriodText() string {
	p := r.Period
	switch {
	case p.Since != nil && p.Until != nil:
		return fmtTime(*p.Since) + " to " + fmtTime(*p.Until)
	case p.Since != nil:
		return "since " + fmtTime(*p.Since)
	case p.Until != nil:
		return "until " + fmtTime(*p.Until)
	}
	return "everything in the store"
}

// Summary returns the report's headline sentences, the same in text and HTML.
func (r *Report) Summary() []string {
	var out []string
	if r.Total.Attempts == 0 {
		return []string{"No DNS query attempts in this period."}
	}
	s := fmt.Sprintf("%s from %s: %d unanswered", plural(r.Total.Attempts, "query attempt"), plural(len(r.Hosts), "host"), r.Total.Unanswered)
	if r.Total.UnansweredRatio != nil {
		s += fmt.Sprintf(" (unanswered ratio %s, estimated packet loss %s)", FormatFloat(*r.Total.UnansweredRatio), FormatFloat(*r.Total.EstPacketLoss))
	}
	if r.Total.FailedLookups != nil {
		s += fmt.Sprintf("; %s, %s", plural(*r.Total.FailedLookups, "failed lookup"), plural(derefInt(r.Total.MaskedTimeouts), "masked timeout"))
	}
	out = append(out, s+".")
	var lossy []string
	for _, h := range r.Hosts {
		if h.Unanswered > 0 {
			lossy = append(lossy, h.Host)
		}
	}
	if len(lossy) > 0 {
		out = append(out, fmt.Sprintf("Hosts with unanswered queries: %d of %d (%s).", len(lossy), len(r.Hosts), abbreviate(lossy, 8)))
	}
	if r.Previous != nil {
		if len(r.WorseHosts) == 0 {
			out = append(out, "No host got worse than in the previous period ("+fmtTime(*r.Previous.Since)+" to "+fmtTime(*r.Previous.Until)+").")
		} else {
			var parts []string
			for _, h := range r.Hosts {
				if h.Worse {
					parts = append(parts, h.Host+" ("+strings.Join(h.Changes, ", ")+")")
				}
			}
			out = append(out, fmt.Sprintf("Got worse than in the previous period: %s.", abbreviate(parts, 8)))
		}
	}
	if len(r.CaptureDrops) > 0 {
		hosts := map[string]bool{}
		var names []string
		for _, d := range r.CaptureDrops {
			if !hosts[d.Host] {
				hosts[d.Host] = true
				names = append(names, d.Host)
			}
		}
		out = append(out, fmt.Sprintf("Capture drops in %s (%s): loss counted there may be the capture's, not the network's.", plural(len(r.CaptureDrops), "interval"), abbreviate(names, 8)))
	} else {
		out = append(out, "No capture drops recorded in this period.")
	}
	return out
}

// plural writes n and what, with an s unless n is 1: "1 host", "2 hosts".
func plural[N ~int | ~int64](n N, what string) string {
	return plurals(n, what, what+"s")
}

// plurals writes n and one or many: "1 retry", "2 retries".
func plurals[N ~int | ~int64](n N, one, many string) string {
	if n == 1 {
		return "1 " + one
	}
	return strconv.FormatInt(int64(n), 10) + " " + many
}

func derefInt(p *int64) int64 {
	if p == nil {
		return 0
	}
	return *p
}

func abbreviate(items []string, n int) string {
	if len(items) <= n {
		return strings.Join(items, ", ")
	}
	return strings.Join(items[:n], ", ") + fmt.Sprintf(" and %d more", len(items)-n)
}

// Text writes the report for a terminal: headline, per host table, per host and server table,
// worst lookups, capture drops and advice.
func (r *Report) Text(w io.Writer) error {
	var b strings.Builder
	fmt.Fprintf(&b, "DNS loss report: %s\n", r.PeriodText())
	if r.Period.FirstAttempt != nil {
		fmt.Fprintf(&b, "attempts from %s to %s; generated %s\n", fmtTime(*r.Period.FirstAttempt), fmtTime(*r.Period.LastAttempt), fmtTime(r.GeneratedAt))
	}
	b.WriteByte('\n')
	for _, s := range r.Summary() {
		b.WriteString(s + "\n")
	}
	if len(r.Rows) > 0 {
		b.WriteString("\nPer host and DNS server:\n")
		if err := table(rowColumns(), r.Rows).Text(&b); err != nil {
			return err
		}
	}
	if r.Previous != nil && len(r.Hosts) > 0 {
		b.WriteString("\nPer host, compared with " + fmtTime(*r.Previous.Since) + " to " + fmtTime(*r.Previous.Until) + ":\n")
		if err := table(hostColumns(true), r.Hosts).Text(&b); err != nil {
			return err
		}
	}
	if len(r.WorstLookups) > 0 {
		b.WriteString("\nWorst lookups:\n")
		for _, l := range r.WorstLookups {
			b.WriteString("  " + l.Line + "\n")
		}
	}
	if len(r.CaptureDrops) > 0 {
		b.WriteString("\nCapture intervals with drops:\n")
		for _, d := range r.CaptureDrops {
			fmt.Fprintf(&b, "  %s %s to %s: %s, %s of %s (%s)\n",
				d.Host, fmtTime(d.Start), fmtTime(d.End), plural(d.KernelDrops, "kernel drop"), plural(d.ToolDrops, "tool drop"), plural(d.Packets, "packet"), d.Source)
		}
	}
	if len(r.Advice) > 0 {
		b.WriteString("\nAdvice:\n")
		for _, a := range r.Advice {
			if a.Host != "" {
				b.WriteString("  " + a.Host + ": " + a.Text + "\n")
			} else {
				b.WriteString("  " + a.Text + "\n")
			}
		}
	}
	for _, n := range r.Notes {
		b.WriteString("\nNote: " + n + "\n")
	}
	_, err := io.WriteString(w, b.String())
	return err
}
