// Command dnssimeval scores the dns_lookups view against the ground truth of the dnssim traffic
// simulator (see scripts/dnssim-eval.sh, which runs it).
//
// Lookups are matched by (client address, start time in ns): the truth's start_ns is the pcap
// timestamp of the lookup's first query, the view's is toUnixTimestamp64Nano(start_ts). One
// pcap holds every simulated client, so the capture host is the same for all rows and the
// client address tells the truth's hosts apart.
//
//	dnssimeval score   -truth T.jsonl -view V.tsv [-min 0.99]
//	dnssimeval explain -truth T.jsonl -view V.tsv -attempts A.tsv [-max 10]
//
// V.tsv: client_ip, start_ns, failed (0/1), masked_timeout (0/1), one lookup a line.
// A.tsv: client_ip, lookup_start_ns, ts_ns, qname, qtype, id, client_port, server_ip, result,
// response_ns (0: none), link; one attempt a line (dns_lookup_attempts).
//
// score prints one line: lookups, failed precision/recall, masked precision/recall, PASS or
// FAIL (every figure >= -min). explain prints, for each lookup the two disagree on (false
// positives and negatives of either property), the truth's queries beside the view's attempts
// of every view lookup that overlaps it in time on that client.
package main

import (
	"bufio"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/dnsloss/dnsloss/internal/agreement"
)

func main() {
	if err := run(os.Args[1:], os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "dnssimeval:", err)
		os.Exit(1)
	}
}

type key struct {
	client string
	start  int64
}

type truthAttempt struct {
	QName  string `json:"qname"`
	QType  string `json:"qtype"`
	ID     uint16 `json:"id"`
	SPort  uint16 `json:"sport"`
	Server string `json:"server"`
	Sent   int64  `json:"sent_ns"`
	Status string `json:"status"`
	RCode  string `json:"rcode"`
	Ans    int    `json:"answers"`
	Resp   int64  `json:"resp_ns"`
	QNC    bool   `json:"query_not_captured"`
	RNC    bool   `json:"response_not_captured"`
}

type truthLookup struct {
	Type       string         `json:"type"`
	Host       int            `json:"host"`
	Profile    string         `json:"profile"`
	Client     string         `json:"client"`
	Start      int64          `json:"start_ns"`
	End        int64          `json:"end_ns"`
	Name       string         `json:"name"`
	Attempts   []truthAttempt `json:"attempts"`
	Outcome    string         `json:"outcome"`
	MaskedWire bool           `json:"masked_timeout_wire"`
}

type viewLookup struct{ failed, masked bool }

type viewAttempt struct {
	lookup            int64
	ts                int64
	qname, qtype, id  string
	port, server, res string
	resp              int64
	link              string
}

func run(args []string, w io.Writer) error {
	if len(args) == 0 || (args[0] != "score" && args[0] != "explain") {
		return errors.New("usage: dnssimeval score|explain -truth T.jsonl -view V.tsv [-attempts A.tsv] [-min 0.99] [-max 10]")
	}
	fs := flag.NewFlagSet("dnssimeval "+args[0], flag.ContinueOnError)
	truthPath := fs.String("truth", "", "dnssim truth JSONL")
	viewPath := fs.String("view", "", "dns_lookups TSV: client_ip, start_ns, failed, masked_timeout")
	attemptsPath := fs.String("attempts", "", "dns_lookup_attempts TSV (explain)")
	minScore := fs.Float64("min", 0.99, "lowest precision or recall that passes")
	maxShown := fs.Int("max", 10, "disagreeing lookups to show per kind (explain)")
	if err := fs.Parse(args[1:]); err != nil {
		return err
	}
	truth, err := readTruth(*truthPath)
	if err != nil {
		return err
	}
	view, err := readView(*viewPath)
	if err != nil {
		return err
	}
	if args[0] == "score" {
		return scoreRun(w, truth, view, *minScore)
	}
	attempts, err := readAttempts(*attemptsPath)
	if err != nil {
		return err
	}
	return explain(w, truth, view, attempts, *maxShown)
}

func readTruth(path string) ([]truthLookup, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var out []truthLookup
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<26)
	for sc.Scan() {
		var lk truthLookup
		if err := json.Unmarshal(sc.Bytes(), &lk); err != nil {
			return nil, fmt.Errorf("%s: %w", path, err)
		}
		if lk.Type == "lookup" {
			out = append(out, lk)
		}
	}
	return out, sc.Err()
}

func tsvLines(path string, fields int, each func(f []string) error) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<24)
	for n := 1; sc.Scan(); n++ {
		if sc.Text() == "" {
			continue
		}
		fl := strings.Split(sc.Text(), "\t")
		if len(fl) < fields {
			return fmt.Errorf("%s:%d: %d fields, want %d", path, n, len(fl), fields)
		}
		if err := each(fl); err != nil {
			return fmt.Errorf("%s:%d: %w", path, n, err)
		}
	}
	return sc.Err()
}

func readView(path string) (map[key]viewLookup, error) {
	view := map[key]viewLookup{}
	err := tsvLines(path, 4, func(f []string) error {
		start, err := strconv.ParseInt(f[1], 10, 64)
		if err != nil {
			return err
		}
		view[key{f[0], start}] = viewLookup{f[2] == "1", f[3] == "1"}
		return nil
	})
	return view, err
}

func readAttempts(path string) (map[string][]viewAttempt, error) {
	byClient := map[string][]viewAttempt{}
	err := tsvLines(path, 11, func(f []string) error {
		lk, err1 := strconv.ParseInt(f[1], 10, 64)
		ts, err2 := strconv.ParseInt(f[2], 10, 64)
		resp, err3 := strconv.ParseInt(f[9], 10, 64)
		if err := errors.Join(err1, err2, err3); err != nil {
			return err
		}
		byClient[f[0]] = append(byClient[f[0]], viewAttempt{lk, ts, f[3], f[4], f[5], f[6], f[7], f[8], resp, f[10]})
		return nil
	})
	for _, as := range byClient {
		slices.SortFunc(as, func(a, b viewAttempt) int { return compare(a.ts, b.ts) })
	}
	return byClient, err
}

func compare(a, b int64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

func scoreRun(w io.Writer, truth []truthLookup, view map[key]viewLookup, min float64) error {
	var failed, masked agreement.Count
	seen := map[key]bool{}
	for _, lk := range truth {
		k := key{lk.Client, lk.Start}
		v, found := view[k]
		seen[k] = true
		failed.Add(found && v.failed, lk.Outcome != "answer")
		masked.Add(found && v.masked, lk.MaskedWire)
	}
	for k, v := range view { // lookups the view made up
		if !seen[k] {
			failed.Add(v.failed, false)
			masked.Add(v.masked, false)
		}
	}
	figs := []float64{failed.Precision(), failed.Recall(), masked.Precision(), masked.Recall()}
	verdict := "PASS"
	if slices.ContainsFunc(figs, func(x float64) bool { return x < min }) {
		verdict = "FAIL"
	}
	fmt.Fprintf(w, "%6d %6d  %.4f %.4f  %.4f %.4f  %s  (failed tp/fp/fn %d/%d/%d, masked %d/%d/%d)\n",
		len(truth), len(view), figs[0], figs[1], figs[2], figs[3], verdict,
		failed.TP, failed.FP, failed.FN, masked.TP, masked.FP, masked.FN)
	return nil
}

// explain shows each disagreement: the truth's lookup (or, for a view lookup with no truth
// lookup at its start, the truth lookups around it) and the view's attempts in that time span.
func explain(w io.Writer, truth []truthLookup, view map[key]viewLookup, attempts map[string][]viewAttempt, max int) error {
	byKey := map[key]*truthLookup{}
	type sendKey struct {
		client, qname, qtype string
		sent                 int64
	}
	bySend := map[sendKey]*truthLookup{}
	for i := range truth {
		lk := &truth[i]
		byKey[key{lk.Client, lk.Start}] = lk
		for _, a := range lk.Attempts {
			bySend[sendKey{lk.Client, a.QName, a.QType, a.Sent}] = lk
		}
	}
	type case_ struct {
		kind string
		k    key
	}
	var cases []case_
	for _, lk := range truth {
		k := key{lk.Client, lk.Start}
		v, found := view[k]
		tf := lk.Outcome != "answer"
		switch {
		case !found:
			cases = append(cases, case_{"truth lookup with no view lookup at its start (failed=" + strconv.FormatBool(tf) + ", masked_wire=" + strconv.FormatBool(lk.MaskedWire) + ")", k})
		case v.failed && !tf:
			cases = append(cases, case_{"failed: false positive", k})
		case !v.failed && tf:
			cases = append(cases, case_{"failed: false negative", k})
		}
		if found && v.masked != lk.MaskedWire {
			cases = append(cases, case_{"masked: " + map[bool]string{true: "false positive", false: "false negative"}[v.masked], k})
		}
	}
	for k, v := range view {
		if byKey[k] == nil {
			cases = append(cases, case_{fmt.Sprintf("view lookup with no truth lookup at its start (failed=%v, masked=%v)", v.failed, v.masked), k})
		}
	}
	slices.SortFunc(cases, func(a, b case_) int {
		if c := strings.Compare(a.kind, b.kind); c != 0 {
			return c
		}
		if c := strings.Compare(a.k.client, b.k.client); c != 0 {
			return c
		}
		return compare(a.k.start, b.k.start)
	})
	shown := map[string]int{}
	total := map[string]int{}
	for _, c := range cases {
		total[c.kind]++
	}
	for _, c := range cases {
		if shown[c.kind] >= max {
			continue
		}
		shown[c.kind]++
		fmt.Fprintf(w, "=== %s: client %s start %d (%s)\n", c.kind, c.k.client, c.k.start, time.Unix(0, c.k.start).UTC().Format("15:04:05.000000"))
		// the truth lookups: the one starting here, else those holding an attempt of the view's lookup
		var lks []*truthLookup
		if lk := byKey[c.k]; lk != nil {
			lks = append(lks, lk)
		} else {
			for _, a := range attempts[c.k.client] {
				if a.lookup == c.k.start {
					if lk := bySend[sendKey{c.k.client, a.qname, a.qtype, a.ts}]; lk != nil && !slices.Contains(lks, lk) {
						lks = append(lks, lk)
					}
				}
			}
		}
		from, to := c.k.start, c.k.start
		names := map[string]bool{}
		for _, lk := range lks {
			from, to = min(from, lk.Start), max64(to, lk.End)
			for _, a := range lk.Attempts {
				names[a.QName] = true
			}
		}
		for _, lk := range lks {
			fmt.Fprintf(w, "truth %s host %d %s start %+.3fms: outcome %s masked_wire %v\n", lk.Profile, lk.Host, lk.Name, ms(lk.Start-c.k.start), lk.Outcome, lk.MaskedWire)
			for _, a := range lk.Attempts {
				res := a.Status
				if a.Status == "answered" {
					res = strings.ToLower(a.RCode)
					if a.RCode == "NOERROR" {
						res = map[bool]string{true: "answer", false: "nodata"}[a.Ans > 0]
					}
				}
				fmt.Fprintf(w, "   T %+10.3fms %-40s %-4s id %5d port %5d %-10s %s", ms(a.Sent-c.k.start), a.QName, a.QType, a.ID, a.SPort, a.Server, res)
				if a.Resp != 0 {
					fmt.Fprintf(w, " at %+.3fms", ms(a.Resp-c.k.start))
				}
				if a.QNC || a.RNC {
					fmt.Fprintf(w, " (not captured: query %v response %v)", a.QNC, a.RNC)
				}
				fmt.Fprintln(w)
			}
		}
		// the view's lookups: this one and those with an attempt of the truth's names in its span
		lookupsShown := map[int64]bool{c.k.start: true}
		for _, a := range attempts[c.k.client] {
			if a.ts >= from && a.ts <= to && names[a.qname] {
				lookupsShown[a.lookup] = true
			}
		}
		for _, a := range attempts[c.k.client] {
			if !lookupsShown[a.lookup] {
				continue
			}
			v := view[key{c.k.client, a.lookup}]
			fmt.Fprintf(w, "   V %+10.3fms %-40s %-4s id %5s port %5s %-10s %-8s %-9s lookup %+.3fms (failed %v masked %v)",
				ms(a.ts-c.k.start), a.qname, a.qtype, a.id, a.port, a.server, orNone(a.res), a.link, ms(a.lookup-c.k.start), v.failed, v.masked)
			if a.resp != 0 {
				fmt.Fprintf(w, " resp %+.3fms", ms(a.resp-c.k.start))
			}
			fmt.Fprintln(w)
		}
	}
	var kinds []string
	for k := range total {
		kinds = append(kinds, k)
	}
	slices.Sort(kinds)
	for _, k := range kinds {
		fmt.Fprintf(w, "total: %5d %s\n", total[k], k)
	}
	return nil
}

func max64(a, b int64) int64 { return max(a, b) }

func ms(ns int64) float64 { return float64(ns) / 1e6 }

func orNone(s string) string {
	if s == "" {
		return "(none)"
	}
	return s
}
