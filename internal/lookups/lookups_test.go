package lookups_test

import (
	"context"
	"net/netip"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/dnsloss/dnsloss/internal/chtest"
	"github.com/dnsloss/dnsloss/internal/dnsrow"
	"github.com/dnsloss/dnsloss/internal/lookups"
)

func TestMain(m *testing.M) { os.Exit(chtest.Main(m)) }

func TestLine(t *testing.T) {
	tests := []struct {
		name string
		l    lookups.Lookup
		want string
	}{
		{"masked", lookups.Lookup{Client: "10.53.0.2", Name: "www.example.com", QTypes: []string{"A", "AAAA"},
			NamesTried:  []string{"www.example.com", "www.example.com.in.corp.example"},
			NameResults: []string{"timeout", "nxdomain"},
			NameSendsMS: [][]float64{{0, 0.4, 5002.6, 5004.3}, {10006.2, 10006.3}},
			NameServers: [][]string{{"10.53.0.1"}, {"10.53.0.1"}}, MaskedTimeout: true},
			"10.53.0.2 www.example.com A/AAAA: no answer from 10.53.0.1 at +0s, +5s; tried www.example.com.in.corp.example -> NXDOMAIN at +10s (NXDOMAIN hides a timeout)"},
		{"answered after a retry", lookups.Lookup{Client: "10.0.0.2", Name: "api.example.com", QTypes: []string{"A"},
			NamesTried: []string{"api.example.com"}, NameResults: []string{"answer"}, NameSendsMS: [][]float64{{0, 1000}},
			NameServers: [][]string{{"10.0.0.1", "10.0.0.9"}}},
			"10.0.0.2 api.example.com A: answered at +1s after no answer at +0s"},
		{"short name, suffix timed out, bare NODATA", lookups.Lookup{Client: "10.0.0.2", Name: "db", QTypes: []string{"A", "AAAA"},
			NamesTried: []string{"db.in.corp.example", "db"}, NameResults: []string{"timeout", "nodata"},
			NameSendsMS: [][]float64{{0, 1500}, {3000}}, NameServers: [][]string{{"10.0.0.1"}, {"10.0.0.1"}}, MaskedTimeout: true},
			"10.0.0.2 db A/AAAA: tried db.in.corp.example -> no answer from 10.0.0.1 at +0s, +1.5s; NODATA at +3s (NODATA hides a timeout)"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := tc.l.Line(); got != tc.want {
				t.Errorf("got\n%s\nwant\n%s", got, tc.want)
			}
		})
	}
}

func TestQueryUsesParameters(t *testing.T) {
	evil := "x' OR 1=1 --"
	sql, p := lookups.Filter{Host: evil, Name: evil, Since: time.Unix(1, 0), Until: time.Unix(2, 0), Limit: 3}.Query()
	if strings.Contains(sql, evil) {
		t.Errorf("the SQL holds a filter value: %s", sql)
	}
	for _, k := range []string{"host", "name", "since", "until", "limit"} {
		if _, ok := p[k]; !ok {
			t.Errorf("parameter %s missing: got %v", k, p)
		}
	}
}

// wire returns builders of a query from client 10.53.0.2 of capture host "lab" to server
// 10.53.0.1, at seconds after base, and of the server's response (rcode, answer count).
func wire(base int64) (q func(at float64, port, id uint16, name string, qtype uint16) dnsrow.Message,
	r func(at float64, port, id uint16, name string, qtype, rcode, an uint16) dnsrow.Message) {
	client, server := netip.MustParseAddr("::ffff:10.53.0.2").As16(), netip.MustParseAddr("::ffff:10.53.0.1").As16()
	q = func(at float64, port, id uint16, name string, qtype uint16) dnsrow.Message {
		return dnsrow.Message{Host: []byte("lab"), TS: base + int64(at*1e9), Transport: dnsrow.TransportUDP, IPVersion: 4,
			ID: id, RD: 1, QName: []byte(name), QType: qtype, QClass: 1, QDCount: 1,
			SrcIP: client, DstIP: server, SrcPort: port, DstPort: 53}
	}
	r = func(at float64, port, id uint16, name string, qtype, rcode, an uint16) dnsrow.Message {
		return dnsrow.Message{Host: []byte("lab"), TS: base + int64(at*1e9), Transport: dnsrow.TransportUDP, IPVersion: 4,
			ID: id, QR: 1, RD: 1, RA: 1, Rcode: rcode, ANCount: an, QName: []byte(name), QType: qtype, QClass: 1, QDCount: 1,
			SrcIP: server, DstIP: client, SrcPort: 53, DstPort: port}
	}
	return q, r
}

// wire messages of one glibc lookup whose first name gets no answer and whose suffixed name gets
// NXDOMAIN (client 10.53.0.2, server 10.53.0.1), then an answered lookup of api.example.com.
func messages(base int64) []dnsrow.Message {
	q, r := wire(base)
	return []dnsrow.Message{
		q(0, 1000, 1, "www.example.com", 1), q(0.0004, 1000, 2, "www.example.com", 28),
		q(5.002, 1000, 1, "www.example.com", 1), q(5.003, 1000, 2, "www.example.com", 28),
		q(10.004, 1001, 3, "www.example.com.in.corp.example", 1), q(10.0041, 1001, 4, "www.example.com.in.corp.example", 28),
		r(10.006, 1001, 3, "www.example.com.in.corp.example", 1, 3, 0), r(10.0062, 1001, 4, "www.example.com.in.corp.example", 28, 3, 0),
		// the same again: a second lookup, so that the suffix is inferred (two steps)
		q(20, 1002, 5, "www.example.com", 1), q(20.0004, 1002, 6, "www.example.com", 28),
		q(25.002, 1002, 5, "www.example.com", 1), q(25.003, 1002, 6, "www.example.com", 28),
		q(30.004, 1003, 7, "www.example.com.in.corp.example", 1), q(30.0041, 1003, 8, "www.example.com.in.corp.example", 28),
		r(30.006, 1003, 7, "www.example.com.in.corp.example", 1, 3, 0), r(30.0062, 1003, 8, "www.example.com.in.corp.example", 28, 3, 0),
		q(40, 1004, 9, "api.example.com", 1), r(40.001, 1004, 9, "api.example.com", 1, 0, 1),
		q(40.002, 1004, 10, "api.example.com", 28), r(40.003, 1004, 10, "api.example.com", 28, 0, 0),
		q(55, 1005, 11, "zzz.example.com", 1), // the capture goes on
	}
}

func TestList(t *testing.T) {
	s := chtest.Fresh(t, "search_domains")
	base := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC).UnixNano()
	chtest.Insert(t, s, messages(base))
	ctx := context.Background()
	tests := []struct {
		name string
		f    lookups.Filter
		want []string // names and start offsets in seconds
	}{
		{"all", lookups.Filter{}, []string{"www.example.com@0", "www.example.com@20", "api.example.com@40", "zzz.example.com@55"}},
		{"failed", lookups.Filter{Failed: true}, []string{"www.example.com@0", "www.example.com@20", "zzz.example.com@55"}},
		{"masked", lookups.Filter{Masked: true}, []string{"www.example.com@0", "www.example.com@20"}},
		{"name", lookups.Filter{Name: "API.example.com."}, []string{"api.example.com@40"}},
		{"host", lookups.Filter{Host: "other"}, nil},
		{"range", lookups.Filter{Since: time.Unix(0, base+10e9), Until: time.Unix(0, base+41e9)}, []string{"www.example.com@20", "api.example.com@40"}},
		{"limit", lookups.Filter{Limit: 1}, []string{"www.example.com@0"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ls, err := lookups.List(ctx, s, tc.f)
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, l := range ls {
				got = append(got, l.Name+"@"+strings.TrimSuffix(strings.TrimSuffix(time.Duration(l.StartNS-base).String(), "s"), "0s"))
			}
			if strings.Join(got, " ") != strings.Join(tc.want, " ") {
				t.Errorf("got %v, want %v", got, tc.want)
			}
		})
	}
	ls, err := lookups.List(ctx, s, lookups.Filter{Masked: true, Limit: 1})
	if err != nil || len(ls) != 1 {
		t.Fatalf("got %v, %v; want one lookup", ls, err)
	}
	want := "10.53.0.2 www.example.com A/AAAA: no answer from 10.53.0.1 at +0s, +5s; tried www.example.com.in.corp.example -> NXDOMAIN at +10s (NXDOMAIN hides a timeout)"
	if got := ls[0].Line(); got != want {
		t.Errorf("Line:\ngot  %s\nwant %s", got, want)
	}
}
