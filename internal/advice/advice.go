// Package advice turns the DNS loss measured per capture host into resolver options: the chance
// that a lookup fails and its worst-case wait under the options in use (inferred from the
// traffic) and under better ones, and which to choose.
//
// The formula, as the seed article computes it by hand:
//
//	P(lookup fails)  = p ^ (attempts × servers)
//	worst-case wait  = timeout × attempts × servers × names
//
// p is the measured share of query attempts that got no answer (as loss_by_host: unanswered /
// (attempts - unknown), over the report's period); attempts and timeout are resolv.conf's;
// servers the nameservers the host uses; names the names a failing lookup tries (the name and its
// search suffixes). Assumptions:
// attempts are lost independently of each other (bursts make it worse); a lookup fails when the
// name as asked gets no answer on any try (a suffixed name that answers NXDOMAIN does not save it,
// it hides it); the resolver waits the full timeout for every unanswered try (glibc; Go too).
package advice

import (
	"context"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/dnsloss/dnsloss/internal/chstore"
	"github.com/dnsloss/dnsloss/queries"
)

// Options are the resolv.conf options that decide how long a resolver waits and how often.
type Options struct {
	Timeout  time.Duration
	Attempts int
	Servers  int
}

func (o Options) String() string {
	return fmt.Sprintf("timeout:%d attempts:%d (%d nameserver%s)", int(o.Timeout/time.Second), o.Attempts, o.Servers, plural(o.Servers))
}

// Measure is what the traffic of one capture host says.
type Measure struct {
	Host    string
	P       float64       // share of attempts that got no answer
	Names   int           // names a failing lookup tries: 1 + search suffixes
	Current Options       // inferred from the retry spacing and counts, or given
	RTTP99  time.Duration // 99th percentile round trip of answered attempts
}

// Choice is one set of options and what it would give.
type Choice struct {
	Options
	FailProb  float64
	WorstWait time.Duration
}

// Evaluate applies the formula to o.
func Evaluate(o Options, p float64, names int) Choice {
	tries := o.Attempts * max(o.Servers, 1)
	return Choice{Options: o, FailProb: math.Pow(p, float64(tries)),
		WorstWait: o.Timeout * time.Duration(tries*max(names, 1))}
}

// Advice compares the current options with better ones for one host.
type Advice struct {
	Measure
	Current     Choice
	Candidates  []Choice
	Recommended Choice
}

// Advise evaluates the current options and the candidates timeout:1 attempts:3, timeout:1
// attempts:5 and timeout:2 attempts:3 (a timeout is only a candidate when it is more than twice
// the 99th percentile round trip). It recommends the candidate that fails least, if it fails
// less than the current options without waiting longer in the worst case; else it keeps them.
func Advise(m Measure) Advice {
	a := Advice{Measure: m, Current: Evaluate(m.Current, m.P, m.Names)}
	a.Recommended = a.Current
	for _, o := range []Options{{time.Second, 3, m.Current.Servers}, {time.Second, 5, m.Current.Servers}, {2 * time.Second, 3, m.Current.Servers}} {
		if o.Timeout <= 2*m.RTTP99 || o == m.Current {
			continue
		}
		c := Evaluate(o, m.P, m.Names)
		a.Candidates = append(a.Candidates, c)
		best := a.Recommended
		if c.WorstWait <= a.Current.WorstWait && c.FailProb < a.Current.FailProb &&
			(c.FailProb < best.FailProb || c.FailProb == best.FailProb && c.WorstWait < best.WorstWait) {
			a.Recommended = c
		}
	}
	return a
}

// Text says the advice in a few lines, the formula included.
func (a Advice) Text() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s: %.1f%% of query attempts got no answer; a failing lookup tries %d name%s\n",
		a.Host, 100*a.P, a.Names, plural(a.Names))
	line := func(label string, c Choice) {
		fmt.Fprintf(&b, "  %-11s %-36s lookup fails %s, worst-case wait %s\n", label, c.Options, percent(c.FailProb), c.WorstWait)
	}
	line("current", a.Current)
	for _, c := range a.Candidates {
		line("candidate", c)
	}
	if a.Recommended.Options == a.Current.Options {
		b.WriteString("  recommended: keep the current options\n")
	} else {
		fmt.Fprintf(&b, "  recommended: options %s\n", strings.TrimSuffix(strings.Split(a.Recommended.Options.String(), " (")[0], " "))
	}
	b.WriteString("  (P(fail) = p^(attempts*servers), worst wait = timeout*attempts*servers*names; losses taken as independent)\n")
	return b.String()
}

func percent(p float64) string {
	switch {
	case p == 0:
		return "0%"
	case p < 0.0001:
		return fmt.Sprintf("%.1e", p)
	}
	return strconv.FormatFloat(100*p, 'g', 3, 64) + "%"
}

func plural(n int) string {
	if n == 1 {
		return ""
	}
	return "s"
}

// measureSQL infers each host's options from its lookups: the timeout is the commonest gap,
// in whole seconds, between an attempt and the next one of the same name and type in the same
// lookup; attempts are the most sends of one name and type in a lookup, divided by the
// nameservers the host used. p is loss_by_host's, over the attempts sent in [since, until).
const measureSQL = `
SELECT l.host AS host, l.p AS p, ifNull(s.suffixes, 0) + 1 AS names, g.timeout_s AS timeout_s,
    greatest(1, intDiv(g.max_sends + l.servers - 1, l.servers)) AS attempts, l.servers AS servers, l.rtt_p99_ms AS rtt_p99_ms
FROM
(
    SELECT host, sum(unanswered) / greatest(1, sum(attempts) - sum(unknown)) AS p,
        toUInt32(count()) AS servers, max(rtt_p99_ms) AS rtt_p99_ms
    FROM
    (
        SELECT host, server_ip, count() AS attempts, countIf(outcome = 'unanswered') AS unanswered,
            countIf(outcome = 'unknown') AS unknown, round(quantileExactIf(0.99)(rtt_ms, outcome = 'answered'), 3) AS rtt_p99_ms
        FROM {transactions:Identifier}
        WHERE query_ts >= {since:DateTime64(9, 'UTC')} AND query_ts < {until:DateTime64(9, 'UTC')}
        GROUP BY host, server_ip
    )
    GROUP BY host
) AS l
LEFT JOIN
(
    SELECT host, ifNull(topKIf(1)(toUInt32(round(gap / 1e9)), gap > 0)[1], 0) AS timeout_s, max(sends) AS max_sends
    FROM
    (
        SELECT host, toUnixTimestamp64Nano(ts) - lagInFrame(toUnixTimestamp64Nano(ts), 1, toUnixTimestamp64Nano(ts)) OVER w AS gap,
            row_number() OVER w AS sends
        FROM {attempts:Identifier}
        WHERE lookup_ts >= {since:DateTime64(9, 'UTC')} AND lookup_ts < {until:DateTime64(9, 'UTC')}
        WINDOW w AS (PARTITION BY host, client_ip, lib, lookup_ts, qname_key, qtype ORDER BY ts
            ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW)
    )
    GROUP BY host
) AS g ON l.host = g.host
LEFT JOIN
(
    SELECT host, toUInt32(count()) AS suffixes FROM dns_search_suffixes GROUP BY host
) AS s ON l.host = s.host
WHERE l.host = {host:String} OR {host:String} = ''
ORDER BY host`

// Scope says what Load measures: one host or all (Host ""), the query attempts sent and the
// lookups begun in [Since, Until) (a zero time leaves that side open), and where it finds the
// transactions and the linked attempts: the views dns_transactions and dns_lookup_attempts when
// empty, or tables of their rows, as queries.Link makes.
type Scope struct {
	Host                   string
	Since, Until           time.Time
	Transactions, Attempts string
}

// Load measures every capture host in scope from the store. A host whose lookups show no retry
// gets the glibc default timeout of 5 s.
func Load(ctx context.Context, store chstore.Store, sc Scope) ([]Measure, error) {
	p := queries.RangeParams(sc.Since, sc.Until)
	p["host"], p["transactions"], p["attempts"] = sc.Host, sc.Transactions, sc.Attempts
	if sc.Transactions == "" {
		p["transactions"] = "dns_transactions"
	}
	if sc.Attempts == "" {
		p["attempts"] = "dns_lookup_attempts"
	}
	out, err := store.Query(ctx, measureSQL, p, "TSV")
	if err != nil {
		return nil, fmt.Errorf("cannot measure loss per host in %s: %w", store.Describe(), err)
	}
	var ms []Measure
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		if line == "" {
			continue
		}
		f := strings.Split(line, "\t")
		if len(f) != 7 {
			return nil, fmt.Errorf("cannot read host measure %q: want 7 fields", line)
		}
		p, _ := strconv.ParseFloat(f[1], 64)
		names, _ := strconv.Atoi(f[2])
		timeout, _ := strconv.Atoi(f[3])
		attempts, _ := strconv.Atoi(f[4])
		servers, _ := strconv.Atoi(f[5])
		rtt, _ := strconv.ParseFloat(f[6], 64)
		if timeout == 0 {
			timeout = 5
		}
		ms = append(ms, Measure{Host: f[0], P: p, Names: names, RTTP99: time.Duration(rtt * float64(time.Millisecond)),
			Current: Options{Timeout: time.Duration(timeout) * time.Second, Attempts: attempts, Servers: servers}})
	}
	return ms, nil
}
