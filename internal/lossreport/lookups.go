package lossreport

import (
	"context"
	"fmt"
	"strconv"
	"time"

	"github.com/dnsloss/dnsloss/internal/chstore"
)

type unansweredRow struct {
	Host       string `json:"host"`
	Client     string `json:"client"`
	Server     string `json:"server"`
	Name       string `json:"name"`
	QType      uint16 `json:"qtype"`
	FirstNs    int64  `json:"first_ns"`
	LastNs     int64  `json:"last_ns"`
	Attempts   int64  `json:"attempts"`
	Unanswered int64  `json:"unanswered"`
	Answered   int64  `json:"answered"`
}

// addLookups fills the worst lookups and the advice. Without the lookups layer it lists the names
// whose attempts went unanswered most often.
func (r *Report) addLookups(ctx context.Context, s chstore.Store, params chstore.Params, limit int) error {
	params["limit"] = strconv.Itoa(limit)
	defer delete(params, "limit")
	rows, err := queryRows[unansweredRow](ctx, s, "loss_report_unanswered", params)
	if err != nil {
		return err
	}
	for _, u := range rows {
		l := Lookup{
			Host: u.Host, Client: u.Client, Server: u.Server, Name: u.Name, QType: TypeName(u.QType),
			Start: time.Unix(0, u.FirstNs).UTC(), DurationMs: roundMs(float64(u.LastNs-u.FirstNs) / 1e6),
			Attempts: u.Attempts, Unanswered: u.Unanswered, Outcome: "unanswered",
		}
		if u.Answered > 0 {
			l.Outcome = "partly unanswered"
		}
		l.Line = fmt.Sprintf("%s %s: %s %s from %s to %s: %d of %d attempts unanswered over %s s",
			l.Start.Format("2006-01-02 15:04:05.000Z"), l.Host, l.Name, l.QType, l.Client, l.Server,
			l.Unanswered, l.Attempts, FormatFloat(roundMs(l.DurationMs/1000)))
		r.WorstLookups = append(r.WorstLookups, l)
	}
	r.Notes = append(r.Notes, "lookup counts (lookups, failed, masked timeouts, retries, time lost) and resolver advice need the lookups layer (view dns_lookups), which this store does not have; worst lookups list the names whose queries went unanswered most often")
	return nil
}

// addPreviousLookups adds the lookup counts of the previous period to r.prevHosts.
func (r *Report) addPreviousLookups(ctx context.Context, s chstore.Store, params chstore.Params) error {
	return nil
}

func roundMs(v float64) float64 {
	f, _ := strconv.ParseFloat(strconv.FormatFloat(v, 'f', 3, 64), 64)
	return f
}

var typeNames = map[uint16]string{
	1: "A", 2: "NS", 5: "CNAME", 6: "SOA", 12: "PTR", 15: "MX", 16: "TXT", 28: "AAAA", 33: "SRV",
	35: "NAPTR", 43: "DS", 48: "DNSKEY", 64: "SVCB", 65: "HTTPS", 255: "ANY",
}

// TypeName returns the mnemonic of a DNS query type, or TYPEn (RFC 3597).
func TypeName(t uint16) string {
	if n, ok := typeNames[t]; ok {
		return n
	}
	return "TYPE" + strconv.Itoa(int(t))
}
