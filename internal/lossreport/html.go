package lossreport

import (
	_ "embed"
	"encoding/json"
	"fmt"
	"html/template"
	"io"
	"strings"
)

// The plotting library, uPlot 1.6.32 (MIT, npm package uplot), is inlined into every HTML report
// so that the page makes no network request: reports are read on machines without internet.
var (
	//go:embed assets/uPlot.iife.min.js
	uplotJS string
	//go:embed assets/uPlot.min.css
	uplotCSS string
	//go:embed report.html.tmpl
	pageTemplate string
	//go:embed report.js
	pageJS string
)

var page = template.Must(template.New("report").Parse(pageTemplate))

// htmlTable is a table of the HTML page: cells already formatted as in every other format.
type htmlTable struct {
	ID      string
	Caption string
	Head    []htmlHead
	Rows    [][]htmlCell
}

type htmlHead struct {
	Name    string
	Numeric bool
}

type htmlCell struct {
	Col     string
	Text    string
	Numeric bool
	Class   string
}

func makeTable[T any](id, caption string, cols []column[T], lines []T, class func(T, string) string) htmlTable {
	cols = dropNullColumns(cols, lines)
	t := htmlTable{ID: id, Caption: caption}
	for _, c := range cols {
		t.Head = append(t.Head, htmlHead{Name: c.name, Numeric: c.numeric})
	}
	for _, l := range lines {
		row := make([]htmlCell, len(cols))
		for i, c := range cols {
			v := c.value(l)
			if v == "" && c.numeric {
				v = "-"
			}
			row[i] = htmlCell{Col: c.name, Text: v, Numeric: c.numeric}
			if class != nil {
				row[i].Class = class(l, c.name)
			}
		}
		t.Rows = append(t.Rows, row)
	}
	return t
}

// chartData is what the page's script plots; it is a view of the report, not new numbers.
type chartData struct {
	Hosts    []chartHost `json:"hosts"`
	Lookups  bool        `json:"lookups"`
	Timeline Timeline    `json:"timeline"`
	RTT      []RTTBucket `json:"rtt"`
}

type chartHost struct {
	Host          string `json:"host"`
	Unanswered    int64  `json:"unanswered"`
	FailedLookups int64  `json:"failed_lookups"`
}

// HTML writes the report as one self-contained HTML page: headline, plots (failures per host,
// failures over time, round-trip times), sortable tables, worst lookups and advice.
func (r *Report) HTML(w io.Writer) error {
	data := chartData{Lookups: r.LookupsAvailable, Timeline: r.Timeline, RTT: r.RTTHistogram, Hosts: []chartHost{}}
	for _, h := range r.Hosts {
		data.Hosts = append(data.Hosts, chartHost{Host: h.Host, Unanswered: h.Unanswered, FailedLookups: derefInt(h.FailedLookups)})
	}
	js, err := json.Marshal(data)
	if err != nil {
		return fmt.Errorf("cannot encode the chart data: %w", err)
	}
	hot := func(c Counts, col string) string {
		switch col {
		case "unanswered_ratio", "est_packet_loss":
			if c.UnansweredRatio != nil && *c.UnansweredRatio > 0 {
				return "bad"
			}
		case "failed_lookups":
			if c.FailedLookups != nil && *c.FailedLookups > 0 {
				return "bad"
			}
		case "masked_timeouts":
			if c.MaskedTimeouts != nil && *c.MaskedTimeouts > 0 {
				return "bad"
			}
		}
		return ""
	}
	v := struct {
		R         *Report
		Title     string
		Period    string
		Summary   []string
		Hosts     htmlTable
		Rows      htmlTable
		Drops     htmlTable
		UplotCSS  template.CSS
		UplotJS   template.JS
		PageJS    template.JS
		ChartJSON template.JS
	}{
		R:       r,
		Title:   "DNS loss report: " + r.PeriodText(),
		Period:  r.PeriodText(),
		Summary: r.Summary(),
		Hosts: makeTable("hosts", "Per host", hostColumns(r.Previous != nil), r.Hosts, func(h Host, col string) string {
			if col == "worse" && h.Worse {
				return "bad"
			}
			if col == "capture_drop_intervals" && h.CaptureDropIntervals > 0 {
				return "warn"
			}
			return hot(h.Counts, col)
		}),
		Rows: makeTable("rows", "Per host and DNS server", rowColumns(), r.Rows, func(x Row, col string) string {
			if col == "capture_drop_intervals" && x.CaptureDropIntervals > 0 {
				return "warn"
			}
			return hot(x.Counts, col)
		}),
		Drops:     makeTable("capture-drops", "Capture intervals with drops", dropColumns(), r.CaptureDrops, nil),
		UplotCSS:  template.CSS(uplotCSS),
		UplotJS:   template.JS(uplotJS),
		PageJS:    template.JS(pageJS),
		ChartJSON: template.JS(strings.ReplaceAll(string(js), "</", `<\/`)),
	}
	if err := page.Execute(w, v); err != nil {
		return fmt.Errorf("cannot write the HTML report: %w", err)
	}
	return nil
}

func dropColumns() []column[CaptureDrop] {
	return []column[CaptureDrop]{
		{"host", false, func(d CaptureDrop) string { return d.Host }},
		{"start", false, func(d CaptureDrop) string { return fmtTime(d.Start) }},
		{"end", false, func(d CaptureDrop) string { return fmtTime(d.End) }},
		intCol("packets", func(d CaptureDrop) int64 { return d.Packets }),
		intCol("kernel_drops", func(d CaptureDrop) int64 { return d.KernelDrops }),
		intCol("tool_drops", func(d CaptureDrop) int64 { return d.ToolDrops }),
		{"source", false, func(d CaptureDrop) string { return d.Source }},
	}
}
