package lossreport_test

import (
	"bytes"
	"context"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/dnsloss/dnsloss/internal/chstore"
	"github.com/dnsloss/dnsloss/internal/chtest"
	"github.com/dnsloss/dnsloss/internal/dnsrow"
	"github.com/dnsloss/dnsloss/internal/ingest"
	"github.com/dnsloss/dnsloss/internal/lossreport"
	"github.com/dnsloss/dnsloss/internal/tabular"
)

func TestMain(m *testing.M) { os.Exit(chtest.Main(m)) }

// base is 2026-01-01 00:00:00 UTC.
var base = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

func ip(s string) [16]byte { return netip.MustParseAddr(s).As16() }

// fixture builds query attempts: per host and hour, how many were sent and how many of them got
// no response. Answered attempts get their response after 10 ms. Each host also sends one
// answered query at 03:30, so that the capture goes on long past every unanswered query.
type fixture struct {
	host       string
	hour       int
	attempts   int
	unanswered int
}

func insertFixture(t *testing.T, s chstore.Store, fx []fixture) {
	t.Helper()
	var msgs []dnsrow.Message
	port := map[string]uint16{}
	add := func(host string, at time.Time, answered bool) {
		port[host]++
		p := 1000 + port[host]
		q := dnsrow.Message{Host: []byte(host), TS: at.UnixNano(), Transport: dnsrow.TransportUDP, ID: p, QName: []byte("www.example.com"),
			QType: 1, QClass: 1, QDCount: 1, IPVersion: 4, SrcIP: ip("::ffff:10.0.0.2"), DstIP: ip("::ffff:10.0.0.1"), SrcPort: p, DstPort: 53}
		msgs = append(msgs, q)
		if answered {
			r := q
			r.QR, r.TS, r.ANCount = 1, at.Add(10*time.Millisecond).UnixNano(), 1
			r.SrcIP, r.DstIP, r.SrcPort, r.DstPort = q.DstIP, q.SrcIP, 53, p
			msgs = append(msgs, r)
		}
	}
	hosts := map[string]bool{}
	for _, f := range fx {
		hosts[f.host] = true
		start := base.Add(time.Duration(f.hour) * time.Hour)
		for i := 0; i < f.attempts; i++ {
			add(f.host, start.Add(time.Duration(i)*time.Minute), i >= f.unanswered)
		}
	}
	for h := range hosts {
		add(h, base.Add(3*time.Hour+30*time.Minute), true)
	}
	chtest.Insert(t, s, msgs)
}

var hourly = []fixture{
	{"web-1", 0, 10, 0}, {"web-1", 1, 10, 4}, {"web-1", 2, 10, 1},
	{"web-2", 0, 5, 0}, {"web-2", 1, 5, 0}, {"web-2", 2, 5, 0},
}

func hour(h int) time.Time { return base.Add(time.Duration(h) * time.Hour) }

func f64(v float64) *float64 { return &v }

func str(p *float64) string {
	if p == nil {
		return "null"
	}
	return lossreport.FormatFloat(*p)
}

func TestPeriodCounts(t *testing.T) {
	s := chtest.Fresh(t)
	insertFixture(t, s, hourly)
	// web-2 lost 7 packets in its capture between 01:10 and 01:20 (it sent nothing then); web-1
	// lost 3 between 01:00:30 and 01:01:30, when it sent its second query of the hour (unanswered).
	if err := s.Exec(context.Background(), `INSERT INTO capture_stats (host, source, start_ts, end_ts, packets, kernel_drops, tool_drops)
VALUES ('web-2', 'eth0', '2026-01-01 01:10:00', '2026-01-01 01:20:00', 100, 7, 0),
       ('web-1', 'eth0', '2026-01-01 01:00:30', '2026-01-01 01:01:30', 10, 0, 3)`, nil); err != nil {
		t.Fatal(err)
	}
	type want struct {
		attempts, unanswered int64
		ratio, loss          *float64
		drops                int
		worse                bool
	}
	tests := []struct {
		name         string
		since, until time.Time
		hosts        map[string]want
		worseHosts   []string
	}{
		{"first hour", hour(0), hour(1), map[string]want{
			"web-1": {10, 0, f64(0), f64(0), 0, false},
			"web-2": {5, 0, f64(0), f64(0), 0, false},
		}, nil},
		// 4 of 10 unanswered, one of them during capture drops: 3 of 9, 1 - sqrt(1 - 1/3) =
		// 0.18350342 per packet.
		{"second hour", hour(1), hour(2), map[string]want{
			"web-1": {10, 4, f64(0.3333), f64(0.1835), 1, true},
			"web-2": {5, 0, f64(0), f64(0), 1, false},
		}, []string{"web-1"}},
		// 1 of 10: 1 - sqrt(0.9) = 0.05131670.
		{"third hour", hour(2), hour(3), map[string]want{
			"web-1": {10, 1, f64(0.1), f64(0.0513), 0, false},
			"web-2": {5, 0, f64(0), f64(0), 0, false},
		}, nil},
		{"half open", hour(2), time.Time{}, map[string]want{
			"web-1": {11, 1, f64(0.0909), f64(0.0465), 0, false},
			"web-2": {6, 0, f64(0), f64(0), 0, false},
		}, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r, err := lossreport.Build(context.Background(), s, lossreport.Options{Since: tc.since, Until: tc.until, Compare: true})
			if err != nil {
				t.Fatal(err)
			}
			if len(r.Hosts) != len(tc.hosts) {
				t.Fatalf("hosts: got %d, want %d", len(r.Hosts), len(tc.hosts))
			}
			for _, h := range r.Hosts {
				w := tc.hosts[h.Host]
				if h.Attempts != w.attempts || h.Unanswered != w.unanswered {
					t.Errorf("%s attempts, unanswered: got %d, %d, want %d, %d", h.Host, h.Attempts, h.Unanswered, w.attempts, w.unanswered)
				}
				if str(h.UnansweredRatio) != str(w.ratio) || str(h.EstPacketLoss) != str(w.loss) {
					t.Errorf("%s ratio, est loss: got %s, %s, want %s, %s", h.Host, str(h.UnansweredRatio), str(h.EstPacketLoss), str(w.ratio), str(w.loss))
				}
				if h.CaptureDropIntervals != w.drops {
					t.Errorf("%s capture drop intervals: got %d, want %d", h.Host, h.CaptureDropIntervals, w.drops)
				}
				if h.Worse != w.worse {
					t.Errorf("%s worse: got %v (%v), want %v", h.Host, h.Worse, h.Changes, w.worse)
				}
				if h.RTTP50Ms == nil || *h.RTTP50Ms != 10 {
					t.Errorf("%s rtt p50: got %s, want 10", h.Host, str(h.RTTP50Ms))
				}
			}
			if fmt.Sprint(r.WorseHosts) != fmt.Sprint(append([]string{}, tc.worseHosts...)) {
				t.Errorf("worse hosts: got %v, want %v", r.WorseHosts, tc.worseHosts)
			}
			if tc.until.IsZero() != (r.Previous == nil) {
				t.Errorf("previous period: got %v, want one only when both bounds are set", r.Previous)
			}
			// the hour before the second holds the first hour's attempts: web-1's at 0-9 min
			if p := r.Previous; tc.name == "second hour" && (p == nil || p.FirstAttempt == nil || p.LastAttempt == nil ||
				!p.FirstAttempt.Equal(hour(0)) || !p.LastAttempt.Equal(hour(0).Add(9*time.Minute))) {
				t.Errorf("previous period: got %+v, want its first and last attempts at 00:00 and 00:09", p)
			}
			if p := r.Previous; tc.name == "first hour" && (p == nil || p.FirstAttempt != nil) {
				t.Errorf("previous period of the first hour: got %+v, want one without attempts", p)
			}
			var answered int64
			for _, b := range r.RTTHistogram {
				answered += b.Answered
				if b.Answered > 0 && (b.LeMs == nil || *b.LeMs != 10) {
					t.Errorf("rtt of 10 ms counted in bucket <= %s", str(b.LeMs))
				}
			}
			if answered != r.Total.Answered {
				t.Errorf("rtt histogram: got %d answered, want %d", answered, r.Total.Answered)
			}
			var timeline int64
			for _, sr := range r.Timeline.Series {
				for _, v := range sr.Attempts {
					timeline += v
				}
			}
			if timeline != r.Total.Attempts {
				t.Errorf("timeline: got %d attempts, want %d", timeline, r.Total.Attempts)
			}
		})
	}
}

// TestSameAsLossByHost checks that the report over the whole store has loss_by_host's numbers on
// the lab captures, and the lab's known facts.
func TestSameAsLossByHost(t *testing.T) {
	s := chtest.Fresh(t)
	ctx := context.Background()
	for _, f := range []string{"drop-name.pcap", "baseline.pcap", "loss20.pcap"} {
		if _, err := ingest.File(ctx, s, filepath.Join("..", "..", "testdata", "lab", f), ingest.Options{}); err != nil {
			t.Fatal(err)
		}
	}
	r, err := lossreport.Build(ctx, s, lossreport.Options{})
	if err != nil {
		t.Fatal(err)
	}
	view, err := tabular.Query(ctx, s, "SELECT * FROM loss_by_host", nil)
	if err != nil {
		t.Fatal(err)
	}
	var js bytes.Buffer
	if err := r.JSON(&js); err != nil {
		t.Fatal(err)
	}
	var doc struct{ Rows []map[string]json.RawMessage }
	if err := json.Unmarshal(js.Bytes(), &doc); err != nil {
		t.Fatal(err)
	}
	if len(doc.Rows) != len(view.Rows) {
		t.Fatalf("rows: got %d, want %d (loss_by_host)", len(doc.Rows), len(view.Rows))
	}
	for i, vr := range view.Rows {
		for j, col := range view.Columns {
			got, want := strings.Trim(string(doc.Rows[i][col]), `"`), tabular.Cell(vr[j])
			if got != want {
				t.Errorf("row %d %s: got %s, want %s (loss_by_host)", i, col, got, want)
			}
		}
	}
	// loss20 lost 20% of packets each way (testdata/lab/README.md).
	for _, row := range r.Rows {
		if row.Host == "loss20" && (row.EstPacketLoss == nil || *row.EstPacketLoss < 0.17 || *row.EstPacketLoss > 0.23) {
			t.Errorf("loss20 estimated packet loss: got %s, want about 0.2", str(row.EstPacketLoss))
		}
	}
}

func TestScheduler(t *testing.T) {
	s := chtest.Fresh(t, "loss_reports")
	insertFixture(t, s, hourly)
	ctx := context.Background()
	dir := t.TempDir()
	opt := lossreport.ScheduleOptions{Every: time.Hour, OutDir: dir, Formats: []string{"json", "html"},
		Now: func() time.Time { return hour(10) }}
	// Periods 00-01, 01-02, 02-03 and 03-04 (the closing query at 03:30) hold attempts; 04-10 none.
	done, err := lossreport.RunOnce(ctx, s, opt)
	if err != nil {
		t.Fatal(err)
	}
	if len(done) != 4 {
		t.Fatalf("first run: got %d reports, want 4", len(done))
	}
	if p := done[1].Report.Period; p.Since != nil && p.Until != nil && p.Since.Equal(hour(1)) && p.Until.Equal(hour(2)) {
		hourlyPeriod = done[1].Report
	}
	files, _ := filepath.Glob(filepath.Join(dir, "*"))
	for i := range files {
		files[i] = filepath.Base(files[i])
	}
	wantFiles := []string{
		"loss-report-20260101T000000Z-20260101T010000Z.html", "loss-report-20260101T000000Z-20260101T010000Z.json",
		"loss-report-20260101T010000Z-20260101T020000Z.html", "loss-report-20260101T010000Z-20260101T020000Z.json",
		"loss-report-20260101T020000Z-20260101T030000Z.html", "loss-report-20260101T020000Z-20260101T030000Z.json",
		"loss-report-20260101T030000Z-20260101T040000Z.html", "loss-report-20260101T030000Z-20260101T040000Z.json",
	}
	if fmt.Sprint(files) != fmt.Sprint(wantFiles) {
		t.Errorf("files: got %v, want %v", files, wantFiles)
	}
	const rows = "SELECT toString(period_start), host, attempts, unanswered, unanswered_ratio, worse FROM loss_reports ORDER BY period_start, host"
	want := "2026-01-01 00:00:00.000\tweb-1\t10\t0\t0\t0\n" +
		"2026-01-01 00:00:00.000\tweb-2\t5\t0\t0\t0\n" +
		"2026-01-01 01:00:00.000\tweb-1\t10\t4\t0.4\t1\n" +
		"2026-01-01 01:00:00.000\tweb-2\t5\t0\t0\t0\n" +
		"2026-01-01 02:00:00.000\tweb-1\t10\t1\t0.1\t0\n" +
		"2026-01-01 02:00:00.000\tweb-2\t5\t0\t0\t0\n" +
		"2026-01-01 03:00:00.000\tweb-1\t1\t0\t0\t0\n" +
		"2026-01-01 03:00:00.000\tweb-2\t1\t0\t0\t0\n"
	if got := chtest.Query(t, s, rows, nil); got != want {
		t.Errorf("loss_reports:\ngot\n%s\nwant\n%s", got, want)
	}
	// A second run finds nothing new and records nothing twice.
	done, err = lossreport.RunOnce(ctx, s, opt)
	if err != nil {
		t.Fatal(err)
	}
	if len(done) != 0 {
		t.Errorf("second run: got %d reports, want 0", len(done))
	}
	if got := chtest.Query(t, s, rows, nil); got != want {
		t.Errorf("loss_reports after a second run:\ngot\n%s\nwant\n%s", got, want)
	}
	// --keep 2 keeps the files of the two newest periods.
	opt.Keep = 2
	if _, err := lossreport.RunOnce(ctx, s, opt); err != nil {
		t.Fatal(err)
	}
	files, _ = filepath.Glob(filepath.Join(dir, "*"))
	if len(files) != 4 || !strings.Contains(files[0], "T020000Z-") {
		t.Errorf("after --keep 2: got %v, want the files of 02-03 and 03-04", files)
	}
}

// hourlyPeriod is the report of 01:00-02:00 on the hourly fixture, compared with the hour before:
// TestFormatsAgree, TestThresholds and TestJSONKeys only read it, so it is built once (a report
// plans the lookup views several times over, tens of seconds). TestScheduler, whose second
// period it is, keeps the one it built.
var hourlyPeriod *lossreport.Report

func hourlyReport(t *testing.T) *lossreport.Report {
	t.Helper()
	if hourlyPeriod == nil {
		s := chtest.Fresh(t)
		insertFixture(t, s, hourly)
		r, err := lossreport.Build(context.Background(), s, lossreport.Options{Since: hour(1), Until: hour(2), Compare: true})
		if err != nil {
			t.Fatal(err)
		}
		hourlyPeriod = r
	}
	return hourlyPeriod
}

// TestFormatsAgree checks that CSV and text show the JSON report's numbers.
func TestFormatsAgree(t *testing.T) {
	r := hourlyReport(t)
	var js, cs, txt bytes.Buffer
	for f, w := range map[string]*bytes.Buffer{"json": &js, "csv": &cs, "table": &txt} {
		if err := r.Render(w, f); err != nil {
			t.Fatalf("%s: %v", f, err)
		}
	}
	var doc struct {
		Schema string
		Rows   []map[string]json.RawMessage
	}
	if err := json.Unmarshal(js.Bytes(), &doc); err != nil {
		t.Fatal(err)
	}
	if doc.Schema != "dnsloss.loss-report/1" {
		t.Errorf("schema: got %q, want dnsloss.loss-report/1", doc.Schema)
	}
	recs, err := csv.NewReader(&cs).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	if len(recs) != len(doc.Rows)+1 {
		t.Fatalf("csv records: got %d, want %d", len(recs), len(doc.Rows)+1)
	}
	if recs[1][0] != "2026-01-01T01:00:00Z" || recs[1][1] != "2026-01-01T02:00:00Z" {
		t.Errorf("csv period: got %s %s, want 2026-01-01T01:00:00Z 2026-01-01T02:00:00Z", recs[1][0], recs[1][1])
	}
	for i, row := range doc.Rows {
		line := ""
		for j, col := range recs[0][2:] {
			want := strings.Trim(string(row[col]), `"`)
			if want == "null" {
				want = ""
			}
			if got := recs[i+1][j+2]; got != want {
				t.Errorf("csv row %d %s: got %q, want %q (JSON)", i, col, got, want)
			}
			if want == "" {
				continue
			}
			line += regexp.QuoteMeta(want) + " "
		}
		// The text table holds the same values, in the same order, on one line.
		fields := strings.Join(strings.Fields(line), `\s+`)
		if !regexp.MustCompile(fields).MatchString(txt.String()) {
			t.Errorf("text report lacks the line %q:\n%s", line, txt.String())
		}
	}
	if !strings.Contains(txt.String(), "Got worse than in the previous period: web-1 (unanswered ratio 0 -> 0.4, failed lookups 0 -> 4)") {
		t.Errorf("text report does not name the host that got worse:\n%s", txt.String())
	}
}

func TestThresholds(t *testing.T) {
	r := hourlyReport(t)
	tests := []struct {
		expr string
		want []string // host/server lines that cross, sorted
		err  bool
	}{
		{"unanswered_ratio > 0.01", []string{"web-1 (all servers)", "web-1 via 10.0.0.1"}, false},
		{"unanswered_ratio>0.4", nil, false},
		{"unanswered_ratio >= 0.4", []string{"web-1 (all servers)", "web-1 via 10.0.0.1"}, false},
		{"attempts < 6", []string{"web-2 (all servers)", "web-2 via 10.0.0.1"}, false},
		{"capture_drop_intervals = 0", []string{"web-1 (all servers)", "web-1 via 10.0.0.1", "web-2 (all servers)", "web-2 via 10.0.0.1"}, false},
		// web-1's four unanswered attempts are four one-attempt lookups that failed
		{"failed_lookups > 0", []string{"web-1 (all servers)", "web-1 via 10.0.0.1"}, false},
		{"failed_lookups > 4", nil, false},
		{"rtt_p50_ms > 0", []string{"web-1 (all servers)", "web-1 via 10.0.0.1", "web-2 (all servers)", "web-2 via 10.0.0.1"}, false},
		{"loss > 1", nil, true},
		{"unanswered_ratio >> 1", nil, true},
		{"unanswered_ratio > one", nil, true},
	}
	for _, tc := range tests {
		t.Run(tc.expr, func(t *testing.T) {
			th, err := lossreport.ParseThreshold(tc.expr)
			if tc.err {
				if err == nil {
					t.Fatalf("got %v, want an error", th)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, c := range r.FailIf([]lossreport.Threshold{th}) {
				got = append(got, strings.SplitN(c.String(), ":", 2)[0])
			}
			sort.Strings(got)
			if fmt.Sprint(got) != fmt.Sprint(tc.want) {
				t.Errorf("got %v, want %v", got, tc.want)
			}
		})
	}
}

func TestTimelineStep(t *testing.T) {
	tests := []struct {
		span time.Duration
		want int64
	}{
		{30 * time.Second, 1000},
		{time.Minute, 1000},
		{61 * time.Second, 2000},
		{time.Hour - time.Nanosecond, 60000},
		{24*time.Hour - time.Nanosecond, 1800000},
		{7 * 24 * time.Hour, 3 * 3600000},
	}
	for _, tc := range tests {
		t.Run(tc.span.String(), func(t *testing.T) {
			if got := lossreport.TimelineStep(tc.span); got != tc.want {
				t.Errorf("got %d ms, want %d", got, tc.want)
			}
		})
	}
}

// TestJSONKeys pins the JSON layout that scripts read (schema dnsloss.loss-report/1): keys may be
// added, never renamed or removed.
func TestJSONKeys(t *testing.T) {
	r := hourlyReport(t)
	var js bytes.Buffer
	if err := r.JSON(&js); err != nil {
		t.Fatal(err)
	}
	keys := func(raw json.RawMessage) string {
		dec := json.NewDecoder(bytes.NewReader(raw))
		dec.Token()
		var k []string
		for dec.More() {
			tok, _ := dec.Token()
			k = append(k, tok.(string))
			var skip json.RawMessage
			dec.Decode(&skip)
		}
		return strings.Join(k, " ")
	}
	var doc struct {
		Rows, Hosts      []json.RawMessage
		Timeline, Period json.RawMessage
	}
	if err := json.Unmarshal(js.Bytes(), &doc); err != nil {
		t.Fatal(err)
	}
	var worst struct {
		W []json.RawMessage `json:"worst_lookups"`
	}
	json.Unmarshal(js.Bytes(), &worst)
	counts := "attempts answered late unanswered unknown capture_lossy unanswered_ratio est_packet_loss lookups failed_lookups masked_timeouts retries time_lost_ms rtt_p50_ms rtt_p95_ms rtt_p99_ms"
	tests := []struct {
		name string
		raw  json.RawMessage
		want string
	}{
		{"report", js.Bytes(), "schema period previous_period lookups_available total hosts rows worse_hosts worst_lookups advice capture_drops timeline rtt_histogram notes"},
		{"period", doc.Period, "since until first_attempt last_attempt"},
		{"rows", doc.Rows[0], "host server_ip " + counts + " capture_drop_intervals"},
		{"hosts", doc.Hosts[0], "host servers " + counts + " capture_drop_intervals previous worse changes"},
		{"worst_lookups", worst.W[0], "host client server name qtype start duration_ms attempts unanswered outcome line"},
		{"timeline", doc.Timeline, "step_ms buckets_ms series"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := keys(tc.raw); got != tc.want {
				t.Errorf("got keys\n%s\nwant\n%s", got, tc.want)
			}
		})
	}
}
