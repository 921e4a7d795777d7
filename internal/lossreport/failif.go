package lossreport

import (
	"fmt"
	"regexp"
	"sort"
	"strconv"
	"strings"
)

// Threshold is an alert condition on one metric of a report line, e.g. unanswered_ratio > 0.01.
type Threshold struct {
	Metric string
	Op     string
	Value  float64
}

func (t Threshold) String() string { return t.Metric + " " + t.Op + " " + FormatFloat(t.Value) }

var thresholdSyntax = regexp.MustCompile(`^\s*([a-z0-9_]+)\s*(>=|<=|==|!=|>|<|=)\s*([-+]?[0-9]*\.?[0-9]+(?:[eE][-+]?[0-9]+)?)\s*$`)

// Metrics are the names a Threshold may test: the numeric columns of a report line.
func Metrics() []string {
	var out []string
	for _, c := range rowColumns() {
		if c.numeric {
			out = append(out, c.name)
		}
	}
	return out
}

// ParseThreshold reads "METRIC OP NUMBER" (OP one of > >= < <= == !=).
func ParseThreshold(s string) (Threshold, error) {
	m := thresholdSyntax.FindStringSubmatch(s)
	if m == nil {
		return Threshold{}, fmt.Errorf("threshold %q is not METRIC OP NUMBER (e.g. 'unanswered_ratio > 0.01')", s)
	}
	known := false
	for _, n := range Metrics() {
		known = known || n == m[1]
	}
	if !known {
		return Threshold{}, fmt.Errorf("threshold %q: unknown metric %q (want one of %s)", s, m[1], strings.Join(Metrics(), ", "))
	}
	v, err := strconv.ParseFloat(m[3], 64)
	if err != nil {
		return Threshold{}, fmt.Errorf("threshold %q: %w", s, err)
	}
	op := m[2]
	if op == "=" {
		op = "=="
	}
	return Threshold{Metric: m[1], Op: op, Value: v}, nil
}

// Crossing is a report line on which a threshold holds.
type Crossing struct {
	Host      string
	Server    string // "" for the host over all its servers
	Threshold Threshold
	Value     string
}

func (c Crossing) String() string {
	where := c.Host + " (all servers)"
	if c.Server != "" {
		where = c.Host + " via " + c.Server
	}
	return fmt.Sprintf("%s: %s = %s crosses %s", where, c.Threshold.Metric, c.Value, c.Threshold)
}

func (t Threshold) holds(v float64) bool {
	switch t.Op {
	case ">":
		return v > t.Value
	case ">=":
		return v >= t.Value
	case "<":
		return v < t.Value
	case "<=":
		return v <= t.Value
	case "==":
		return v == t.Value
	case "!=":
		return v != t.Value
	}
	return false
}

// FailIf returns the report lines (each host over all its servers, and each host and server) on
// which a threshold holds. A null value (e.g. no attempts to judge) never crosses.
func (r *Report) FailIf(ts []Threshold) []Crossing {
	var out []Crossing
	rowCols := map[string]column[Row]{}
	for _, c := range rowColumns() {
		rowCols[c.name] = c
	}
	check := func(host, server string, value string, t Threshold) {
		if value == "" {
			return
		}
		v, err := strconv.ParseFloat(value, 64)
		if err == nil && t.holds(v) {
			out = append(out, Crossing{Host: host, Server: server, Threshold: t, Value: value})
		}
	}
	for _, t := range ts {
		c := rowCols[t.Metric]
		for _, h := range r.Hosts {
			check(h.Host, "", c.value(Row{Host: h.Host, Counts: h.Counts, CaptureDropIntervals: h.CaptureDropIntervals}), t)
		}
		for _, row := range r.Rows {
			check(row.Host, row.Server, c.value(row), t)
		}
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].Host < out[j].Host })
	return out
}
