package lookups_test

import (
	"context"
	"testing"
	"time"

	"github.com/dnsloss/dnsloss/internal/chtest"
	"github.com/dnsloss/dnsloss/internal/dnsrow"
	"github.com/dnsloss/dnsloss/internal/lookups"
)

// TestLineSaysWhatTheWireSaid: a lookup line names the query type that went unanswered when the
// other was answered and the answer was discarded (glibc went on to the next name), and a
// negative answer that came after an unanswered round says so.
func TestLineSaysWhatTheWireSaid(t *testing.T) {
	s := chtest.Fresh(t, "search_domains")
	base := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC).UnixNano()
	q, r := wire(base)
	const name, suffixed = "www.example.com", "www.example.com.in.corp.example"
	var msgs []dnsrow.Message
	// glibc, twice (so that the suffix is inferred): A answered, AAAA not, both sent again at
	// +5 s, the same; glibc drops the answer to A and tries the next name, which gets NXDOMAIN.
	for i, at := range []float64{0, 20} {
		port, id := uint16(1000+2*i), uint16(10*i+1)
		msgs = append(msgs,
			q(at, port, id, name, 1), r(at+0.001, port, id, name, 1, 0, 1), q(at+0.0004, port, id+1, name, 28),
			q(at+5.002, port, id, name, 1), r(at+5.0025, port, id, name, 1, 0, 1), q(at+5.003, port, id+1, name, 28),
			q(at+10.004, port+1, id+2, suffixed, 1), q(at+10.0041, port+1, id+3, suffixed, 28),
			r(at+10.006, port+1, id+2, suffixed, 1, 3, 0), r(at+10.0062, port+1, id+3, suffixed, 28, 3, 0))
	}
	// one query type, lost once, then NXDOMAIN for the resend
	msgs = append(msgs, q(40, 1010, 31, "nx.example.com", 1), q(45.002, 1010, 31, "nx.example.com", 1),
		r(45.003, 1010, 31, "nx.example.com", 1, 3, 0))
	chtest.Insert(t, s, msgs)

	ls, err := lookups.List(context.Background(), s, lookups.Filter{})
	if err != nil {
		t.Fatal(err)
	}
	want := []string{
		"10.53.0.2 www.example.com A/AAAA: no answer to AAAA from 10.53.0.1 at +0s, +5s (answer to A discarded); tried www.example.com.in.corp.example -> NXDOMAIN at +10s (NXDOMAIN hides a timeout)",
		"10.53.0.2 www.example.com A/AAAA: no answer to AAAA from 10.53.0.1 at +0s, +5s (answer to A discarded); tried www.example.com.in.corp.example -> NXDOMAIN at +10s (NXDOMAIN hides a timeout)",
		"10.53.0.2 nx.example.com A: NXDOMAIN at +5s after no answer at +0s",
	}
	if len(ls) != len(want) {
		t.Fatalf("got %d lookups, want %d: %+v", len(ls), len(want), ls)
	}
	for i, l := range ls {
		if got := l.Line(); got != want[i] {
			t.Errorf("lookup %d:\ngot  %s\nwant %s", i+1, got, want[i])
		}
	}
}

func TestLineCases(t *testing.T) {
	tests := []struct {
		name string
		l    lookups.Lookup
		want string
	}{
		{"both unanswered: no type named", lookups.Lookup{Client: "c", Name: "n", QTypes: []string{"A", "AAAA"},
			NamesTried: []string{"n"}, NameResults: []string{"timeout"}, NameSendsMS: [][]float64{{0, 5000}},
			NameServers: [][]string{{"s"}}, NameUnanswered: [][]string{{"A", "AAAA"}}},
			"c n A/AAAA: no answer from s at +0s, +5s"},
		{"AAAA answered, A not", lookups.Lookup{Client: "c", Name: "n", QTypes: []string{"A", "AAAA"},
			NamesTried: []string{"n"}, NameResults: []string{"timeout"}, NameSendsMS: [][]float64{{0, 5000}},
			NameServers: [][]string{{"s"}}, NameAnswered: [][]string{{"AAAA"}}, NameUnanswered: [][]string{{"A"}}},
			"c n A/AAAA: no answer to A from s at +0s, +5s (answer to AAAA discarded)"},
		{"answer taken: nothing discarded", lookups.Lookup{Client: "c", Name: "n", QTypes: []string{"A", "AAAA"},
			NamesTried: []string{"n"}, NameResults: []string{"answer"}, NameSendsMS: [][]float64{{0, 0.2}},
			NameServers: [][]string{{"s"}}, NameAnswered: [][]string{{"A"}}},
			"c n A/AAAA: answered at +0s"},
		{"SERVFAIL after a lost round", lookups.Lookup{Client: "c", Name: "n", QTypes: []string{"A"},
			NamesTried: []string{"n"}, NameResults: []string{"servfail"}, NameSendsMS: [][]float64{{0, 1000}},
			NameServers: [][]string{{"s"}}},
			"c n A: SERVFAIL at +1s after no answer at +0s"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := tc.l.Line(); got != tc.want {
				t.Errorf("got\n%s\nwant\n%s", got, tc.want)
			}
		})
	}
}
