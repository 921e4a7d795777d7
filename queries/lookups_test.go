package queries_test

import (
	"testing"

	"github.com/dnsloss/dnsloss/internal/chtest"
	"github.com/dnsloss/dnsloss/internal/dnsrow"
)

// wire builds the messages of one client's traffic. Times are seconds after base.
type wire struct {
	host, client string
	msgs         []dnsrow.Message
}

const (
	tA    = 1
	tAAAA = 28
)

// opt marks a query with EDNS (dig, Go): another resolver library than plain glibc.
type opt struct{ edns bool }

func (w *wire) q(at float64, server string, port, id uint16, qname string, qtype uint16, o ...opt) {
	m := dnsrow.Message{Host: []byte(w.host), TS: base + int64(at*1e9), Transport: dnsrow.TransportUDP, ID: id,
		QName: []byte(qname), QType: qtype, QClass: 1, QDCount: 1, IPVersion: 4, RD: 1,
		SrcIP: ip("::ffff:" + w.client), DstIP: ip("::ffff:" + server), SrcPort: port, DstPort: 53}
	if len(o) > 0 && o[0].edns {
		m.EDNS, m.EDNSUDPSize, m.ARCount = 1, 1232, 1
	}
	w.msgs = append(w.msgs, m)
}

// r adds the response to a query: rcode 0 with answers > 0 is positive, without is NODATA.
func (w *wire) r(at float64, server string, port, id uint16, qname string, qtype uint16, rcode, answers uint16) {
	w.msgs = append(w.msgs, dnsrow.Message{Host: []byte(w.host), TS: base + int64(at*1e9), Transport: dnsrow.TransportUDP,
		ID: id, QR: 1, QName: []byte(qname), QType: qtype, QClass: 1, QDCount: 1, IPVersion: 4, RD: 1, RA: 1,
		Rcode: rcode, ANCount: answers,
		SrcIP: ip("::ffff:" + server), DstIP: ip("::ffff:" + w.client), SrcPort: 53, DstPort: port})
}

const (
	ns1 = "10.53.0.1"
	ns2 = "10.53.0.2"
)

// dropName is drop-name.pcap (lab: glibc 2.36, search in.corp.example, timeout 5 attempts 2,
// the resolver drops www.example.com), rewritten from `tcpdump -nr`, seconds after 17:38:05.
func dropName() []dnsrow.Message {
	w := &wire{host: "lab", client: "10.53.0.2"}
	w.q(0.726273, ns1, 39982, 30715, "www.example.com", tA)
	w.q(0.726710, ns1, 39982, 1525, "www.example.com", tAAAA)
	w.q(5.728909, ns1, 39982, 30715, "www.example.com", tA)
	w.q(5.730605, ns1, 39982, 1525, "www.example.com", tAAAA)
	w.q(10.732482, ns1, 36496, 35687, "www.example.com.in.corp.example", tA)
	w.q(10.732538, ns1, 36496, 53603, "www.example.com.in.corp.example", tAAAA)
	w.r(10.735652, ns1, 36496, 35687, "www.example.com.in.corp.example", tA, 3, 0)
	w.r(10.735896, ns1, 36496, 53603, "www.example.com.in.corp.example", tAAAA, 3, 0)
	w.q(10.769198, ns1, 51311, 59482, "www.example.com", tA)
	w.q(10.769279, ns1, 51311, 32343, "www.example.com", tAAAA)
	w.q(15.775380, ns1, 51311, 59482, "www.example.com", tA)
	w.q(15.775406, ns1, 51311, 32343, "www.example.com", tAAAA)
	w.q(20.778210, ns1, 40232, 29153, "www.example.com.in.corp.example", tA)
	w.q(20.778252, ns1, 40232, 8933, "www.example.com.in.corp.example", tAAAA)
	w.r(20.782463, ns1, 40232, 29153, "www.example.com.in.corp.example", tA, 3, 0)
	w.r(20.782751, ns1, 40232, 8933, "www.example.com.in.corp.example", tAAAA, 3, 0)
	w.q(20.790610, ns1, 39251, 58512, "api.example.com", tA)
	w.r(20.790692, ns1, 39251, 58512, "api.example.com", tA, 0, 1)
	w.q(20.790744, ns1, 39251, 18323, "api.example.com", tAAAA)
	w.r(20.790923, ns1, 39251, 18323, "api.example.com", tAAAA, 0, 0)
	w.q(20.850206, ns1, 48996, 24824, "www.example.com", tA, opt{true}) // dig
	w.q(25.852220, ns1, 35452, 24824, "www.example.com", tA, opt{true})
	w.q(30.925795, ns1, 38697, 4919, "www.example.com", tA)
	w.r(30.926953, ns1, 38697, 4919, "www.example.com", tA, 0, 1)
	w.q(30.927553, ns1, 38697, 17460, "www.example.com", tAAAA)
	w.r(30.927583, ns1, 38697, 17460, "www.example.com", tAAAA, 0, 1)
	return w.msgs
}

const lookupCols = `client_ip, name, arrayStringConcat(qtypes, '/'), round((toUnixTimestamp64Nano(start_ts) - ` + "1767225600000000000" + `) / 1e9, 3),
	round(duration_ms / 1000, 1), attempts, arrayStringConcat(names_tried, ','), arrayStringConcat(servers, ','), retries,
	search_fallbacks, outcome, masked_timeout, round(time_lost_ms / 1000, 1)`

func TestDropName(t *testing.T) {
	s := chtest.Fresh(t, "search_domains")
	chtest.Insert(t, s, dropName())
	got := chtest.Query(t, s, `SELECT `+lookupCols+` FROM dns_lookups ORDER BY start_ts`, nil)
	// Both glibc lookups: 4 unanswered attempts, then 2 NXDOMAIN for the suffixed name, 10 s.
	// dig (EDNS, same id from a new port) is its own lookup of 2 attempts; the last is answered.
	want := "" +
		"10.53.0.2\twww.example.com\tA/AAAA\t0.726\t10\t6\twww.example.com,www.example.com.in.corp.example\t10.53.0.1\t2\t1\ttimeout\t1\t10\n" +
		"10.53.0.2\twww.example.com\tA/AAAA\t10.769\t10\t6\twww.example.com,www.example.com.in.corp.example\t10.53.0.1\t2\t1\ttimeout\t1\t10\n" +
		"10.53.0.2\tapi.example.com\tA/AAAA\t20.791\t0\t2\tapi.example.com\t10.53.0.1\t0\t0\tanswered\t0\t0\n" +
		"10.53.0.2\twww.example.com\tA\t20.85\t10\t2\twww.example.com\t10.53.0.1\t1\t0\ttimeout\t0\t10\n" +
		"10.53.0.2\twww.example.com\tA/AAAA\t30.926\t0\t2\twww.example.com\t10.53.0.1\t0\t0\tanswered\t0\t0\n"
	if got != want {
		t.Errorf("dns_lookups:\ngot\n%s\nwant\n%s", got, want)
	}
}
