package advice_test

import (
	"context"
	"math"
	"net/netip"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/dnsloss/dnsloss/internal/advice"
	"github.com/dnsloss/dnsloss/internal/chtest"
	"github.com/dnsloss/dnsloss/internal/dnsrow"
)

func TestMain(m *testing.M) { os.Exit(chtest.Main(m)) }

func TestAdvise(t *testing.T) {
	// p = 0.2, glibc defaults with one nameserver, search list of one: the name and one suffix.
	// current: 0.2^2 = 4%, 5 s * 2 tries * 2 names = 20 s; timeout:1 attempts:3: 0.8%, 6 s;
	// timeout:1 attempts:5: 0.032%, 10 s; timeout:2 attempts:3: 0.8%, 12 s.
	m := advice.Measure{Host: "h", P: 0.2, Names: 2, RTTP99: 3 * time.Millisecond,
		Current: advice.Options{Timeout: 5 * time.Second, Attempts: 2, Servers: 1}}
	a := advice.Advise(m)
	check := func(what string, c advice.Choice, fail float64, wait time.Duration) {
		t.Helper()
		if math.Abs(c.FailProb-fail) > 1e-12 || c.WorstWait != wait {
			t.Errorf("%s: got %g, %s; want %g, %s", what, c.FailProb, c.WorstWait, fail, wait)
		}
	}
	check("current", a.Current, 0.04, 20*time.Second)
	if len(a.Candidates) != 3 {
		t.Fatalf("got %d candidates, want 3", len(a.Candidates))
	}
	check("timeout:1 attempts:3", a.Candidates[0], 0.008, 6*time.Second)
	check("timeout:1 attempts:5", a.Candidates[1], 0.00032, 10*time.Second)
	check("timeout:2 attempts:3", a.Candidates[2], 0.008, 12*time.Second)
	if got := a.Recommended.Options; got != (advice.Options{Timeout: time.Second, Attempts: 5, Servers: 1}) {
		t.Errorf("recommended %s, want timeout:1 attempts:5", got)
	}
	if txt := a.Text(); !strings.Contains(txt, "recommended: options timeout:1 attempts:5") || !strings.Contains(txt, "p^(attempts*servers)") {
		t.Errorf("text lacks the recommendation or the formula:\n%s", txt)
	}

	// A slow resolver (p99 800 ms) rules out one-second timeouts; no loss keeps the options.
	m.RTTP99 = 800 * time.Millisecond
	if got := advice.Advise(m).Recommended.Options; got != (advice.Options{Timeout: 2 * time.Second, Attempts: 3, Servers: 1}) {
		t.Errorf("slow resolver: recommended %s, want timeout:2 attempts:3", got)
	}
	m.P = 0
	if got := advice.Advise(m).Recommended.Options; got != m.Current {
		t.Errorf("no loss: recommended %s, want the current options", got)
	}
}

func TestLoad(t *testing.T) {
	s := chtest.Fresh(t, "search_domains")
	base := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC).UnixNano()
	client, server := netip.MustParseAddr("::ffff:10.53.0.2").As16(), netip.MustParseAddr("::ffff:10.53.0.1").As16()
	msg := func(at float64, qr uint8, port, id uint16, name string, qtype, rcode, an uint16) dnsrow.Message {
		m := dnsrow.Message{Host: []byte("lab"), TS: base + int64(at*1e9), Transport: dnsrow.TransportUDP, IPVersion: 4,
			ID: id, QR: qr, RD: 1, Rcode: rcode, ANCount: an, QName: []byte(name), QType: qtype, QClass: 1, QDCount: 1,
			SrcIP: client, DstIP: server, SrcPort: port, DstPort: 53}
		if qr == 1 {
			m.SrcIP, m.DstIP, m.SrcPort, m.DstPort = server, client, 53, port
		}
		return m
	}
	var msgs []dnsrow.Message
	// two drop-name lookups (glibc, timeout 5 attempts 2): 4 unanswered attempts each, then the
	// suffixed name NXDOMAIN after 2 ms; then an answered lookup; then one left unknown at the end
	for k, at := range []float64{0, 20} {
		p, id := uint16(1000+2*k), uint16(10*k)
		msgs = append(msgs,
			msg(at, 0, p, id+1, "www.example.com", 1, 0, 0), msg(at+0.0004, 0, p, id+2, "www.example.com", 28, 0, 0),
			msg(at+5.002, 0, p, id+1, "www.example.com", 1, 0, 0), msg(at+5.003, 0, p, id+2, "www.example.com", 28, 0, 0),
			msg(at+10.004, 0, p+1, id+3, "www.example.com.in.corp.example", 1, 0, 0),
			msg(at+10.0041, 0, p+1, id+4, "www.example.com.in.corp.example", 28, 0, 0),
			msg(at+10.006, 1, p+1, id+3, "www.example.com.in.corp.example", 1, 3, 0),
			msg(at+10.0062, 1, p+1, id+4, "www.example.com.in.corp.example", 28, 3, 0))
	}
	msgs = append(msgs, msg(40, 0, 1010, 50, "api.example.com", 1, 0, 0), msg(40.002, 1, 1010, 50, "api.example.com", 1, 0, 1),
		msg(55, 0, 1011, 51, "zzz.example.com", 1, 0, 0))
	chtest.Insert(t, s, msgs)
	ms, err := advice.Load(context.Background(), s, advice.Scope{})
	if err != nil {
		t.Fatal(err)
	}
	// 14 attempts, 8 unanswered, 1 unknown: p = 8/13; timeout 5 s (retry spacing), 2 sends per
	// name and type, 1 server: attempts 2; names = 1 + the inferred suffix
	want := advice.Measure{Host: "lab", P: 8.0 / 13, Names: 2, RTTP99: 2 * time.Millisecond,
		Current: advice.Options{Timeout: 5 * time.Second, Attempts: 2, Servers: 1}}
	if len(ms) != 1 {
		t.Fatalf("got %d measures, want 1: %+v", len(ms), ms)
	}
	got := ms[0]
	if got.Host != want.Host || math.Abs(got.P-want.P) > 1e-4 || got.Names != want.Names || got.Current != want.Current ||
		got.RTTP99.Round(time.Millisecond) != want.RTTP99 {
		t.Errorf("got %+v, want %+v", got, want)
	}
}
