package queries_test

import (
	"net/netip"
	"os"
	"strconv"
	"testing"

	"github.com/dnsloss/dnsloss/internal/chstore"
	"github.com/dnsloss/dnsloss/internal/chtest"
	"github.com/dnsloss/dnsloss/internal/dnsrow"
	"github.com/dnsloss/dnsloss/queries"
	"github.com/dnsloss/dnsloss/schema"
)

func TestMain(m *testing.M) { os.Exit(chtest.Main(m)) }

const sec = int64(1e9)

// base is 2026-01-01 00:00:00 UTC.
const base = int64(1767225600) * sec

func ip(s string) [16]byte { return netip.MustParseAddr(s).As16() }

// msg builds one UDP message between client 10.0.0.2 and server 10.0.0.1.
func msg(host string, at int64, qr uint8, id, cport uint16, qname string, qtype uint16, rcode uint16) dnsrow.Message {
	m := dnsrow.Message{Host: []byte(host), TS: base + at, Transport: dnsrow.TransportUDP, ID: id, QR: qr,
		QName: []byte(qname), QType: qtype, QClass: 1, Rcode: rcode, QDCount: 1, IPVersion: 4}
	client, server := ip("::ffff:10.0.0.2"), ip("::ffff:10.0.0.1")
	if qr == 0 {
		m.SrcIP, m.DstIP, m.SrcPort, m.DstPort = client, server, cport, 53
	} else {
		m.SrcIP, m.DstIP, m.SrcPort, m.DstPort = server, client, 53, cport
		m.ANCount = 1
	}
	return m
}

func TestTransactions(t *testing.T) {
	s := chtest.Fresh(t)
	chtest.Insert(t, s, []dnsrow.Message{
		// answered after 20 ms
		msg("h", 0, 0, 1, 1000, "a.example", 1, 0),
		msg("h", 20e6, 1, 1, 1000, "a.example", 1, 0),
		// glibc retry: the same packet again at +5 s; the answer at +5.01 s belongs to the retry
		msg("h", 1*sec, 0, 2, 1001, "b.example", 1, 0),
		msg("h", 6*sec, 0, 2, 1001, "b.example", 1, 0),
		msg("h", 6*sec+10e6, 1, 2, 1001, "b.example", 1, 3),
		// duplicate responses: one transaction, answered by the first
		msg("h", 2*sec, 0, 3, 1002, "c.example", 28, 0),
		msg("h", 2*sec+5e6, 1, 3, 1002, "c.example", 28, 0),
		msg("h", 2*sec+6e6, 1, 3, 1002, "c.example", 28, 0),
		// 0x20 mixed case in the query, lower case in the response
		msg("h", 3*sec, 0, 4, 1003, "WwW.ExAmple.com", 1, 0),
		msg("h", 3*sec+1e6, 1, 4, 1003, "www.example.com", 1, 0),
		// never answered, capture goes on for 30 s more
		msg("h", 4*sec, 0, 5, 1004, "lost.example", 1, 0),
		// answered after the 10 s window: late
		msg("h", 5*sec, 0, 6, 1005, "slow.example", 1, 0),
		msg("h", 17*sec, 1, 6, 1005, "slow.example", 1, 0),
		// a response for another id does not answer
		msg("h", 7*sec, 0, 7, 1006, "d.example", 1, 0),
		msg("h", 7*sec+1e6, 1, 8, 1006, "d.example", 1, 0),
		// a response before the query does not answer it
		msg("h", 8*sec, 1, 9, 1007, "e.example", 1, 0),
		msg("h", 8*sec+1e6, 0, 9, 1007, "e.example", 1, 0),
		// near the end of this host's capture (ends at 34 s): unknown
		msg("h", 30*sec, 0, 10, 1008, "end.example", 1, 0),
		// sent again near the end: the first copy's wait ended with the second (unanswered), the
		// second is unknown
		msg("h", 31*sec, 0, 12, 1010, "retry.example", 1, 0),
		msg("h", 32*sec, 0, 12, 1010, "retry.example", 1, 0),
		msg("h", 34*sec, 0, 11, 1009, "last.example", 1, 0),
		msg("h", 34*sec+1e6, 1, 11, 1009, "last.example", 1, 0),
		// another host's identical query is not answered by host h's response
		msg("other", 0, 0, 1, 1000, "a.example", 1, 0),
	})
	got := chtest.Query(t, s, `SELECT host, toUnixTimestamp64Nano(query_ts) - `+itoa(base)+`, qname, outcome, rtt_ms, rcode
		FROM dns_transactions ORDER BY host, query_ts`, nil)
	want := "" +
		"h\t0\ta.example\tanswered\t20\t0\n" +
		"h\t1000000000\tb.example\tunanswered\t\\N\t\\N\n" +
		"h\t2000000000\tc.example\tanswered\t5\t0\n" +
		"h\t3000000000\tWwW.ExAmple.com\tanswered\t1\t0\n" +
		"h\t4000000000\tlost.example\tunanswered\t\\N\t\\N\n" +
		"h\t5000000000\tslow.example\tlate\t12000\t0\n" +
		"h\t6000000000\tb.example\tanswered\t10\t3\n" +
		"h\t7000000000\td.example\tunanswered\t\\N\t\\N\n" +
		"h\t8001000000\te.example\tunanswered\t\\N\t\\N\n" +
		"h\t30000000000\tend.example\tunknown\t\\N\t\\N\n" +
		"h\t31000000000\tretry.example\tunanswered\t\\N\t\\N\n" +
		"h\t32000000000\tretry.example\tunknown\t\\N\t\\N\n" +
		"h\t34000000000\tlast.example\tanswered\t1\t0\n" +
		"other\t0\ta.example\tunknown\t\\N\t\\N\n"
	if got != want {
		t.Errorf("dns_transactions:\ngot\n%s\nwant\n%s", got, want)
	}

	got = chtest.Query(t, s, `SELECT host, server_ip, attempts, answered, late, unanswered, unknown, unanswered_ratio FROM loss_by_host`, nil)
	want = "h\t10.0.0.1\t13\t5\t1\t5\t2\t0.4545\nother\t10.0.0.1\t1\t0\t0\t0\t1\t\\N\n"
	if got != want {
		t.Errorf("loss_by_host:\ngot\n%s\nwant\n%s", got, want)
	}
}

func TestMatchWindowSetting(t *testing.T) {
	s := chtest.Fresh(t)
	chtest.Insert(t, s, []dnsrow.Message{
		msg("h", 0, 0, 1, 1000, "a.example", 1, 0),
		msg("h", 3*sec, 1, 1, 1000, "a.example", 1, 0),
		msg("h", 60*sec, 0, 2, 1001, "z.example", 1, 0),
	})
	q := `SELECT outcome FROM dns_transactions WHERE qname = 'a.example'`
	if got := chtest.Query(t, s, q, nil); got != "answered\n" {
		t.Errorf("default window: got %q, want answered", got)
	}
	chtest.Query(t, s, `INSERT INTO dnsloss_settings (name, value) VALUES ('match_window_ms', 2000)`, nil)
	if got := chtest.Query(t, s, q, nil); got != "late\n" {
		t.Errorf("2 s window: got %q, want late", got)
	}
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }

// Every view has a cluster form (ON CLUSTER).
func TestViewsHaveAClusterForm(t *testing.T) {
	names, sqls, err := queries.Views()
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range names {
		for _, st := range schema.Statements(sqls[n]) {
			if _, err := (schema.Cluster{Name: "dns"}).Rewrite(st); err != nil {
				t.Errorf("%s: %v", n, err)
			}
		}
	}
}

// tcp turns a message built by msg into one over TCP from client port cport.
func tcp(m dnsrow.Message, cport uint16) dnsrow.Message {
	m.Transport = dnsrow.TransportTCP
	if m.QR == 0 {
		m.SrcPort = cport
	} else {
		m.DstPort = cport
	}
	return m
}

func TestTransactionsTCPAndSkew(t *testing.T) {
	s := chtest.Fresh(t)
	tc := func(m dnsrow.Message) dnsrow.Message { m.TC = 1; m.ANCount = 0; return m }
	chtest.Insert(t, s, []dnsrow.Message{
		// over TCP: matched on the connection's ports, transport tcp
		tcp(msg("h", 0, 0, 1, 0, "tcp.example", 1, 0), 40001),
		tcp(msg("h", 30e6, 1, 1, 0, "tcp.example", 1, 0), 40001),
		// a UDP response does not answer a TCP query with the same id and ports
		tcp(msg("h", 1*sec, 0, 2, 0, "mixed.example", 1, 0), 40002),
		msg("h", 1*sec+1e6, 1, 2, 40002, "mixed.example", 1, 0),
		// response stamped 0.3 ms before its query: within the default skew of 0.5 ms
		msg("h", 2*sec+300e3, 0, 3, 1003, "skew.example", 1, 0),
		msg("h", 2*sec, 1, 3, 1003, "skew.example", 1, 0),
		// response 2 ms before: outside the default skew
		msg("h", 3*sec+2e6, 0, 4, 1004, "skew2.example", 1, 0),
		msg("h", 3*sec, 1, 4, 1004, "skew2.example", 1, 0),
		// truncated UDP answer, then the client retries over TCP from another port: the UDP
		// attempt is answered, marked truncated_response, linked to the TCP query
		msg("h", 4*sec, 0, 5, 1005, "big.example", 16, 0),
		tc(msg("h", 4*sec+10e6, 1, 5, 1005, "big.example", 16, 0)),
		tcp(msg("h", 4*sec+12e6, 0, 6, 0, "BIG.example", 16, 0), 40005),
		tcp(msg("h", 4*sec+40e6, 1, 6, 0, "big.example", 16, 0), 40005),
		// truncated answer and no TCP retry (a TCP query for another type does not count)
		msg("h", 5*sec, 0, 7, 1007, "big2.example", 16, 0),
		tc(msg("h", 5*sec+10e6, 1, 7, 1007, "big2.example", 16, 0)),
		tcp(msg("h", 5*sec+12e6, 0, 8, 0, "big2.example", 1, 0), 40007),
		tcp(msg("h", 5*sec+20e6, 1, 8, 0, "big2.example", 1, 0), 40007),
		// the capture goes on
		msg("h", 60*sec, 0, 9, 1009, "end.example", 1, 0),
	})
	got := chtest.Query(t, s, `SELECT toUnixTimestamp64Nano(query_ts) - `+itoa(base)+`, transport, qname, qtype, outcome, rtt_ms,
		truncated_response, toUnixTimestamp64Nano(tcp_retry_ts) - `+itoa(base)+`
		FROM dns_transactions WHERE qname != 'end.example' ORDER BY query_ts`, nil)
	want := "" +
		"0\ttcp\ttcp.example\t1\tanswered\t30\t0\t\\N\n" +
		"1000000000\ttcp\tmixed.example\t1\tunanswered\t\\N\t0\t\\N\n" +
		"2000300000\tudp\tskew.example\t1\tanswered\t0\t0\t\\N\n" +
		"3002000000\tudp\tskew2.example\t1\tunanswered\t\\N\t0\t\\N\n" +
		"4000000000\tudp\tbig.example\t16\tanswered\t10\t1\t4012000000\n" +
		"4012000000\ttcp\tBIG.example\t16\tanswered\t28\t0\t\\N\n" +
		"5000000000\tudp\tbig2.example\t16\tanswered\t10\t1\t\\N\n" +
		"5012000000\ttcp\tbig2.example\t1\tanswered\t8\t0\t\\N\n"
	if got != want {
		t.Errorf("dns_transactions:\ngot\n%s\nwant\n%s", got, want)
	}

	// A wider tolerance takes in the response 2 ms early.
	chtest.Query(t, s, `INSERT INTO dnsloss_settings (name, value) VALUES ('match_skew_ms', 5)`, nil)
	if got := chtest.Query(t, s, `SELECT outcome, rtt_ms FROM dns_transactions WHERE qname = 'skew2.example'`, nil); got != "answered\t0\n" {
		t.Errorf("5 ms skew: got %q, want answered with rtt 0", got)
	}
}

// An attempt made while the capture dropped packets is flagged and left out of the ratio.
func TestLossByHostExcludesCaptureLoss(t *testing.T) {
	s := chtest.Fresh(t)
	chtest.Insert(t, s, []dnsrow.Message{
		msg("h", 1*sec, 0, 1, 1000, "a.example", 1, 0),  // in the lossy interval [0 s, 10 s): unanswered
		msg("h", 11*sec, 0, 2, 1001, "b.example", 1, 0), // clean interval: unanswered
		msg("h", 12*sec, 0, 3, 1002, "c.example", 1, 0), // clean: answered
		msg("h", 12*sec+1e6, 1, 3, 1002, "c.example", 1, 0),
		msg("h", 13*sec, 0, 4, 1003, "d.example", 1, 0), // clean: answered
		msg("h", 13*sec+1e6, 1, 4, 1003, "d.example", 1, 0),
		msg("h", 60*sec, 0, 5, 1004, "z.example", 1, 0), // unknown (end of capture)
	})
	chtest.Query(t, s, `INSERT INTO capture_stats (host, source, iface, start_ts, end_ts, packets, kernel_drops, tool_drops)
		SELECT 'h', 'afpacket:eth0', 'eth0', fromUnixTimestamp64Nano(toInt64(`+itoa(base)+` + n * 10e9), 'UTC'),
		fromUnixTimestamp64Nano(toInt64(`+itoa(base)+` + (n + 1) * 10e9), 'UTC'), 100, if(n = 0, 7, 0), 0
		FROM (SELECT arrayJoin([0, 1, 2, 3, 4, 5, 6]) AS n)`, nil)
	got := chtest.Query(t, s, `SELECT attempts, answered, unanswered, unknown, unanswered_ratio, capture_lossy FROM loss_by_host`, nil)
	// 5 attempts: 2 answered, 2 unanswered, 1 unknown; 1 lossy. Ratio: 1 unanswered / 3 judged.
	if want := "5\t2\t2\t1\t0.3333\t1\n"; got != want {
		t.Errorf("loss_by_host: got %q, want %q", got, want)
	}
}

// TestSettingsAtTheirMaximum: the views compute with every setting at the largest value
// `settings set` accepts: no overflow of the nanosecond arithmetic (an answer 3 s after its query
// stays answered) and no conversion error.
func TestSettingsAtTheirMaximum(t *testing.T) {
	s := chtest.Fresh(t)
	chtest.Insert(t, s, []dnsrow.Message{
		msg("h", 0, 0, 1, 1000, "a.example", 1, 0),
		msg("h", 3*sec, 1, 1, 1000, "a.example", 1, 0),
		msg("h", 60*sec, 0, 2, 1001, "z.example", 1, 0),
	})
	for _, st := range queries.Settings {
		chtest.Query(t, s, `INSERT INTO dnsloss_settings (name, value) VALUES ({n:String}, {v:Float64})`,
			chstore.Params{"n": st.Name, "v": strconv.FormatFloat(st.Max, 'f', -1, 64)})
	}
	if got := chtest.Query(t, s, `SELECT outcome FROM dns_transactions WHERE qname = 'a.example'`, nil); got != "answered\n" {
		t.Errorf("a.example with every setting at its maximum: got %q, want answered", got)
	}
	if got := chtest.Query(t, s, `SELECT count() FROM dns_lookups`, nil); got != "2\n" {
		t.Errorf("dns_lookups with every setting at its maximum: got %q rows, want 2", got)
	}
	chtest.Query(t, s, `SELECT * FROM loss_by_host`, nil)
}
