// Package lossreport builds the DNS loss report of a time range from a store, as one Report value,
// and renders that same value as a text table, JSON, CSV or a self-contained HTML page, so that
// every format shows the same numbers. It also evaluates alert thresholds on a report (FailIf),
// and runs reports on a schedule (Scheduler), recording each period's per-host summary in the
// loss_reports table.
package lossreport

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/dnsloss/dnsloss/internal/chstore"
	"github.com/dnsloss/dnsloss/queries"
)

// Schema names the JSON layout of a Report; it changes only when a field changes meaning or is
// removed (fields may be added within the same schema).
const Schema = "dnsloss.loss-report/1"

// Options say which report to build.
type Options struct {
	// Since and Until bound the report to the query attempts sent in [Since, Until); a zero
	// value leaves that side open.
	Since, Until time.Time
	// Compare adds the previous period of the same length (only when both bounds are set).
	Compare bool
	// Worst is how many worst lookups to list; default 10.
	Worst int
	// Now stamps the report; default time.Now.
	Now func() time.Time
}

// Report is one loss report. Every renderer reads only this value.
type Report struct {
	Schema string `json:"schema"`
	// GeneratedAt is when the report was made; text and HTML show it, JSON leaves it out so that
	// the same data and period always give the same JSON (diffable, cacheable).
	GeneratedAt time.Time `json:"-"`
	Period      Period    `json:"period"`
	// Previous is the period the report is compared with; nil when there is no comparison.
	Previous *Period `json:"previous_period"`
	// LookupsAvailable says whether the store has the lookups layer (dns_lookups); without it
	// the lookup columns are null.
	LookupsAvailable bool          `json:"lookups_available"`
	Total            Counts        `json:"total"`
	Hosts            []Host        `json:"hosts"`
	Rows             []Row         `json:"rows"`
	WorseHosts       []string      `json:"worse_hosts"`
	WorstLookups     []Lookup      `json:"worst_lookups"`
	Advice           []Advice      `json:"advice"`
	CaptureDrops     []CaptureDrop `json:"capture_drops"`
	Timeline         Timeline      `json:"timeline"`
	RTTHistogram     []RTTBucket   `json:"rtt_histogram"`
	Notes            []string      `json:"notes"`
	prevHosts        map[string]*Counts
}

// Period is a time range. Since and Until are nil on an open side; FirstAttempt and LastAttempt
// are the first and last query attempt inside it (nil when it holds none).
type Period struct {
	Since        *time.Time `json:"since"`
	Until        *time.Time `json:"until"`
	FirstAttempt *time.Time `json:"first_attempt"`
	LastAttempt  *time.Time `json:"last_attempt"`
}

// Counts are the numbers of one report line. CaptureLossy attempts were sent while the capture of
// their host was dropping packets; the ratio leaves them out. Ratios have 4 decimals, milliseconds 3. A nil
// pointer is a value that cannot be computed (no attempts to judge, no answers, or no lookups
// layer) and is null in JSON, empty in CSV and "-" in text and HTML.
type Counts struct {
	Attempts        int64    `json:"attempts"`
	Answered        int64    `json:"answered"`
	Late            int64    `json:"late"`
	Unanswered      int64    `json:"unanswered"`
	Unknown         int64    `json:"unknown"`
	CaptureLossy    int64    `json:"capture_lossy"`
	UnansweredRatio *float64 `json:"unanswered_ratio"`
	EstPacketLoss   *float64 `json:"est_packet_loss"`
	Lookups         *int64   `json:"lookups"`
	FailedLookups   *int64   `json:"failed_lookups"`
	MaskedTimeouts  *int64   `json:"masked_timeouts"`
	Retries         *int64   `json:"retries"`
	TimeLostMs      *float64 `json:"time_lost_ms"`
	RTTP50Ms        *float64 `json:"rtt_p50_ms"`
	RTTP95Ms        *float64 `json:"rtt_p95_ms"`
	RTTP99Ms        *float64 `json:"rtt_p99_ms"`
}

// Row is one host and DNS server.
type Row struct {
	Host   string `json:"host"`
	Server string `json:"server_ip"`
	Counts
	CaptureDropIntervals int `json:"capture_drop_intervals"`
}

// Host is one host over all its DNS servers, compared with the previous period.
type Host struct {
	Host    string   `json:"host"`
	Servers []string `json:"servers"`
	Counts
	CaptureDropIntervals int `json:"capture_drop_intervals"`
	// Previous holds the host's counts in the previous period; nil when there is no comparison
	// or the host sent nothing then.
	Previous *Counts `json:"previous"`
	// Worse is true when the host got worse than in the previous period; Changes say how.
	Worse   bool     `json:"worse"`
	Changes []string `json:"changes"`
}

// Lookup is one of the worst lookups, with a line a person reads.
type Lookup struct {
	Host       string    `json:"host"`
	Client     string    `json:"client"`
	Server     string    `json:"server"`
	Name       string    `json:"name"`
	QType      string    `json:"qtype"`
	Start      time.Time `json:"start"`
	DurationMs float64   `json:"duration_ms"`
	Attempts   int64     `json:"attempts"`
	Unanswered int64     `json:"unanswered"`
	Outcome    string    `json:"outcome"`
	Line       string    `json:"line"`
}

// Advice is a resolver-option recommendation for a host ("" for every host).
type Advice struct {
	Host string `json:"host"`
	Text string `json:"text"`
}

// CaptureDrop is a capture interval overlapping the period in which the capture lost packets.
type CaptureDrop struct {
	Host        string    `json:"host"`
	Source      string    `json:"source"`
	Start       time.Time `json:"start"`
	End         time.Time `json:"end"`
	Packets     int64     `json:"packets"`
	KernelDrops int64     `json:"kernel_drops"`
	ToolDrops   int64     `json:"tool_drops"`
}

// Timeline counts attempts and unanswered attempts per host in buckets of StepMs milliseconds
// starting at BucketsMs (Unix milliseconds); every series has one value per bucket.
type Timeline struct {
	StepMs    int64            `json:"step_ms"`
	BucketsMs []int64          `json:"buckets_ms"`
	Series    []TimelineSeries `json:"series"`
}

// TimelineSeries is one host's timeline.
type TimelineSeries struct {
	Host       string  `json:"host"`
	Attempts   []int64 `json:"attempts"`
	Unanswered []int64 `json:"unanswered"`
}

// RTTBucket counts answered attempts whose round-trip time is at most LeMs and above the previous
// bucket's; the last bucket has LeMs nil (everything slower).
type RTTBucket struct {
	LeMs     *float64 `json:"le_ms"`
	Answered int64    `json:"answered"`
}

// RTTEdges are the upper bounds of the round-trip-time histogram buckets, in milliseconds.
var RTTEdges = []float64{0.1, 0.2, 0.5, 1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000}

// rangeParams are the parameters of the report queries over [since, until) that read the
// transactions and lookups lk names.
func rangeParams(since, until time.Time, lk *queries.Linked) chstore.Params {
	p := queries.RangeParams(since, until)
	p["tx"], p["lookups"] = lk.Transactions, lk.Lookups
	return p
}

// queryRows runs the named report query and decodes each result row into a new T.
func queryRows[T any](ctx context.Context, s chstore.Store, name string, params chstore.Params) ([]T, error) {
	sql, err := queries.Report(name)
	if err != nil {
		return nil, err
	}
	sql += "\nSETTINGS output_format_json_quote_64bit_integers = 0, output_format_json_quote_decimals = 0"
	out, err := s.Query(ctx, sql, params, "JSONEachRow")
	if err != nil {
		return nil, fmt.Errorf("cannot run report query %s: %w", name, err)
	}
	var rows []T
	dec := json.NewDecoder(bytes.NewReader(out))
	for {
		var r T
		if err := dec.Decode(&r); err == io.EOF {
			return rows, nil
		} else if err != nil {
			return nil, fmt.Errorf("cannot decode the result of report query %s: %w", name, err)
		}
		rows = append(rows, r)
	}
}

type countsRow struct {
	Level   string `json:"level"`
	Host    string `json:"host"`
	Server  string `json:"server_ip"`
	FirstNs int64  `json:"first_ns"`
	LastNs  int64  `json:"last_ns"`
	Counts
}

// Build computes the report of opt's time range from s.
func Build(ctx context.Context, s chstore.Store, opt Options) (*Report, error) {
	now := time.Now
	if opt.Now != nil {
		now = opt.Now
	}
	if opt.Worst <= 0 {
		opt.Worst = 10
	}
	if !opt.Since.IsZero() && !opt.Until.IsZero() && !opt.Since.Before(opt.Until) {
		return nil, fmt.Errorf("report period is empty: since %s is not before until %s",
			opt.Since.UTC().Format(time.RFC3339), opt.Until.UTC().Format(time.RFC3339))
	}
	r := &Report{
		Schema:       Schema,
		GeneratedAt:  now().UTC().Truncate(time.Millisecond),
		Period:       Period{Since: timePtr(opt.Since), Until: timePtr(opt.Until)},
		Hosts:        []Host{},
		Rows:         []Row{},
		WorseHosts:   []string{},
		WorstLookups: []Lookup{},
		Advice:       []Advice{},
		CaptureDrops: []CaptureDrop{},
		RTTHistogram: []RTTBucket{},
		Notes:        []string{},
		Timeline:     Timeline{BucketsMs: []int64{}, Series: []TimelineSeries{}},
	}
	lk, lookups, err := linkLookups(ctx, s, opt)
	if err != nil {
		return nil, err
	}
	defer lk.Close()
	r.LookupsAvailable = lookups
	params := rangeParams(opt.Since, opt.Until, lk)
	if err := r.addCounts(ctx, s, params); err != nil {
		return nil, err
	}
	if err := r.addCaptureDrops(ctx, s, params); err != nil {
		return nil, err
	}
	if err := r.addUnfinishedIngests(ctx, s, params); err != nil {
		return nil, err
	}
	if err := r.addLookups(ctx, s, params, opt.Worst, lk, opt); err != nil {
		return nil, err
	}
	if err := r.addTimeline(ctx, s, opt, lk); err != nil {
		return nil, err
	}
	if err := r.addRTT(ctx, s, params); err != nil {
		return nil, err
	}
	if opt.Compare && r.Period.Since != nil && r.Period.Until != nil {
		length := opt.Until.Sub(opt.Since)
		prev := Period{Since: timePtr(opt.Since.Add(-length)), Until: timePtr(opt.Since)}
		rows, err := queryRows[countsRow](ctx, s, "loss_report_rows", rangeParams(*prev.Since, *prev.Until, lk))
		if err != nil {
			return nil, err
		}
		r.Previous = &prev
		r.prevHosts = map[string]*Counts{}
		for i := range rows {
			if rows[i].Level == "total" && rows[i].Attempts > 0 {
				prev.FirstAttempt = timePtr(time.Unix(0, rows[i].FirstNs))
				prev.LastAttempt = timePtr(time.Unix(0, rows[i].LastNs))
			}
			if rows[i].Level == "host" {
				c := rows[i].Counts
				r.prevHosts[rows[i].Host] = &c
			}
		}
		if err := r.addPreviousLookups(ctx, s, rangeParams(*prev.Since, *prev.Until, lk)); err != nil {
			return nil, err
		}
		r.compare()
	}
	return r, nil
}

// linkLookups links the transactions and lookups of the report's period, and of the previous one
// when the report compares, once (queries.Link): the report asks several questions of them. The
// bool says whether the store has the lookups layer; without it, the report reads the views.
func linkLookups(ctx context.Context, s chstore.Store, opt Options) (*queries.Linked, bool, error) {
	ok, err := hasLookups(ctx, s)
	if err != nil || !ok {
		return queries.TheViews(), false, err
	}
	since := opt.Since
	if opt.Compare && !opt.Since.IsZero() && !opt.Until.IsZero() {
		since = opt.Since.Add(-opt.Until.Sub(opt.Since))
	}
	lk, err := queries.Link(ctx, s, since, opt.Until)
	return lk, true, err
}

func timePtr(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	u := t.UTC()
	return &u
}

func (r *Report) addCounts(ctx context.Context, s chstore.Store, params chstore.Params) error {
	rows, err := queryRows[countsRow](ctx, s, "loss_report_rows", params)
	if err != nil {
		return err
	}
	hostIndex := map[string]int{}
	for _, row := range rows {
		switch row.Level {
		case "total":
			if row.Attempts == 0 {
				continue
			}
			r.Total = row.Counts
			r.Period.FirstAttempt = timePtr(time.Unix(0, row.FirstNs))
			r.Period.LastAttempt = timePtr(time.Unix(0, row.LastNs))
		case "host":
			hostIndex[row.Host] = len(r.Hosts)
			r.Hosts = append(r.Hosts, Host{Host: row.Host, Servers: []string{}, Counts: row.Counts, Changes: []string{}})
		case "server":
			r.Rows = append(r.Rows, Row{Host: row.Host, Server: row.Server, Counts: row.Counts})
		}
	}
	for _, row := range r.Rows {
		h := &r.Hosts[hostIndex[row.Host]]
		h.Servers = append(h.Servers, row.Server)
	}
	return nil
}

type dropRow struct {
	Host        string `json:"host"`
	Source      string `json:"source"`
	StartNs     int64  `json:"start_ns"`
	EndNs       int64  `json:"end_ns"`
	Packets     int64  `json:"packets"`
	KernelDrops int64  `json:"kernel_drops"`
	ToolDrops   int64  `json:"tool_drops"`
}

func (r *Report) addCaptureDrops(ctx context.Context, s chstore.Store, params chstore.Params) error {
	rows, err := queryRows[dropRow](ctx, s, "loss_report_capture_drops", params)
	if err != nil {
		return err
	}
	perHost := map[string]int{}
	for _, d := range rows {
		r.CaptureDrops = append(r.CaptureDrops, CaptureDrop{
			Host: d.Host, Source: d.Source, Start: time.Unix(0, d.StartNs).UTC(), End: time.Unix(0, d.EndNs).UTC(),
			Packets: d.Packets, KernelDrops: d.KernelDrops, ToolDrops: d.ToolDrops,
		})
		perHost[d.Host]++
	}
	for i := range r.Hosts {
		r.Hosts[i].CaptureDropIntervals = perHost[r.Hosts[i].Host]
	}
	for i := range r.Rows {
		r.Rows[i].CaptureDropIntervals = perHost[r.Rows[i].Host]
	}
	return nil
}

// addUnfinishedIngests notes the capture files whose ingest did not finish: their rows are
// counted, though the file holds more (an interrupted ingest says so, but a later report would not).
func (r *Report) addUnfinishedIngests(ctx context.Context, s chstore.Store, params chstore.Params) error {
	type row struct {
		Host     string `json:"host"`
		Source   string `json:"source"`
		Messages int64  `json:"messages"`
	}
	rows, err := queryRows[row](ctx, s, "loss_report_unfinished_ingests", params)
	if err != nil {
		return err
	}
	for _, u := range rows {
		r.Notes = append(r.Notes, fmt.Sprintf("host %s: %d DNS messages from %s, whose ingest did not finish (interrupted?), are counted here; run `analyzer ingest %q` again to store the whole file",
			u.Host, u.Messages, u.Source, u.Source))
	}
	return nil
}

type timelineRow struct {
	Host       string `json:"host"`
	BucketMs   int64  `json:"bucket_ms"`
	Attempts   int64  `json:"attempts"`
	Unanswered int64  `json:"unanswered"`
}

// timelineSteps are the bucket lengths the timeline chooses from, in milliseconds.
var timelineSteps = []int64{
	1e3, 2e3, 5e3, 10e3, 15e3, 30e3, 60e3, 120e3, 300e3, 600e3, 900e3, 1800e3,
	3600e3, 7200e3, 10800e3, 21600e3, 43200e3, 86400e3, 7 * 86400e3,
}

// TimelineStep returns the bucket length for a span: the shortest of timelineSteps that cuts
// the span into at most 60 buckets.
func TimelineStep(span time.Duration) int64 {
	ms := span.Milliseconds()
	for _, st := range timelineSteps {
		if ms/st <= 60 {
			return st
		}
	}
	return timelineSteps[len(timelineSteps)-1]
}

func (r *Report) addTimeline(ctx context.Context, s chstore.Store, opt Options, lk *queries.Linked) error {
	if r.Period.FirstAttempt == nil {
		return nil
	}
	from, to := *r.Period.FirstAttempt, *r.Period.LastAttempt
	if r.Period.Since != nil {
		from = *r.Period.Since
	}
	if r.Period.Until != nil {
		to = r.Period.Until.Add(-time.Nanosecond)
	}
	step := TimelineStep(to.Sub(from))
	params := rangeParams(opt.Since, opt.Until, lk)
	params["step_ms"] = strconv.FormatInt(step, 10)
	rows, err := queryRows[timelineRow](ctx, s, "loss_report_timeline", params)
	if err != nil {
		return err
	}
	first := floorDiv(from.UnixMilli(), step) * step
	last := floorDiv(to.UnixMilli(), step) * step
	r.Timeline.StepMs = step
	for b := first; b <= last; b += step {
		r.Timeline.BucketsMs = append(r.Timeline.BucketsMs, b)
	}
	n := len(r.Timeline.BucketsMs)
	series := map[string]int{}
	for _, row := range rows {
		i, ok := series[row.Host]
		if !ok {
			i = len(r.Timeline.Series)
			series[row.Host] = i
			r.Timeline.Series = append(r.Timeline.Series, TimelineSeries{Host: row.Host, Attempts: make([]int64, n), Unanswered: make([]int64, n)})
		}
		k := (row.BucketMs - first) / step
		if k < 0 || k >= int64(n) {
			continue
		}
		r.Timeline.Series[i].Attempts[k] += row.Attempts
		r.Timeline.Series[i].Unanswered[k] += row.Unanswered
	}
	return nil
}

func floorDiv(a, b int64) int64 {
	q := a / b
	if (a%b != 0) && ((a < 0) != (b < 0)) {
		q--
	}
	return q
}

type rttRow struct {
	Bucket   int   `json:"bucket"`
	Answered int64 `json:"answered"`
}

func (r *Report) addRTT(ctx context.Context, s chstore.Store, params chstore.Params) error {
	edges := make([]string, len(RTTEdges))
	for i, e := range RTTEdges {
		edges[i] = strconv.FormatFloat(e, 'f', -1, 64)
	}
	params["edges"] = "[" + strings.Join(edges, ",") + "]"
	defer delete(params, "edges")
	rows, err := queryRows[rttRow](ctx, s, "loss_report_rtt", params)
	if err != nil {
		return err
	}
	if len(rows) == 0 {
		return nil
	}
	r.RTTHistogram = make([]RTTBucket, len(RTTEdges)+1)
	for i := range RTTEdges {
		e := RTTEdges[i]
		r.RTTHistogram[i].LeMs = &e
	}
	for _, row := range rows {
		if row.Bucket >= 1 && row.Bucket <= len(r.RTTHistogram) {
			r.RTTHistogram[row.Bucket-1].Answered += row.Answered
		}
	}
	return nil
}

// worseRatioStep is how much a host's unanswered ratio must rise over the previous period for
// the host to count as worse.
const worseRatioStep = 0.001

// compare marks the hosts that got worse than in the previous period.
func (r *Report) compare() {
	for i := range r.Hosts {
		h := &r.Hosts[i]
		prev := r.prevHosts[h.Host]
		if prev == nil {
			continue
		}
		h.Previous = prev
		if h.UnansweredRatio != nil && prev.UnansweredRatio != nil && *h.UnansweredRatio >= *prev.UnansweredRatio+worseRatioStep {
			h.Changes = append(h.Changes, fmt.Sprintf("unanswered ratio %s -> %s", FormatFloat(*prev.UnansweredRatio), FormatFloat(*h.UnansweredRatio)))
		}
		// More failed lookups count when more attempts went unanswered too: an NXDOMAIN for a
		// name that does not exist fails a lookup and says nothing about loss.
		if h.FailedLookups != nil && prev.FailedLookups != nil && *h.FailedLookups > *prev.FailedLookups &&
			h.Unanswered > prev.Unanswered {
			h.Changes = append(h.Changes, fmt.Sprintf("failed lookups %d -> %d", *prev.FailedLookups, *h.FailedLookups))
		}
		if h.MaskedTimeouts != nil && prev.MaskedTimeouts != nil && *h.MaskedTimeouts > *prev.MaskedTimeouts {
			h.Changes = append(h.Changes, fmt.Sprintf("masked timeouts %d -> %d", *prev.MaskedTimeouts, *h.MaskedTimeouts))
		}
		if len(h.Changes) > 0 {
			h.Worse = true
			r.WorseHosts = append(r.WorseHosts, h.Host)
		}
	}
	sort.Strings(r.WorseHosts)
}

// FormatFloat writes a report number the way every format shows it: the shortest decimal that
// reads back as the same float64 (0.5294, 3.17, 0).
func FormatFloat(v float64) string { return strconv.FormatFloat(v, 'f', -1, 64) }
