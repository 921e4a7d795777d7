// Package simcap simulates stub resolvers looking names up across a lossy network and returns
// what a capture on each client would hold, as dnsrow.Messages, together with the truth about
// every application lookup. It exists to test the lookup linking (queries/views) against a
// known answer at any loss rate, without captures from outside the repository.
//
// Two resolver libraries are modelled, after their source:
//   - glibc (resolv/res_query.c __res_context_search, res_send.c send_dg): the name as-is first
//     when it has at least ndots dots, then each search suffix, going on after NXDOMAIN or NODATA
//     but stopping at a suffix that timed out, then the name as-is if not tried yet. A and AAAA
//     leave one socket per nameserver together; a retry resends the identical packets (same id,
//     same port); the wait for nameserver n > 0 is (timeout << n) / nscount seconds.
//   - Go (net/dnsclient_unix.go): the same candidate names, all of them until one is answered;
//     A and AAAA each on their own goroutine, every exchange from a new port with a new id, each
//     waiting the full timeout.
//
// glibc's switch to single-request mode after a half-answered pair is modelled (resend on the
// same socket, then from a new one; a round without any reply counts as none from that server).
// Not modelled: TCP fallback, SERVFAIL, capture drops, caching. Responses never arrive after a
// timeout.
package simcap

import (
	"cmp"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"slices"
	"strings"
	"time"

	"github.com/dnsloss/dnsloss/internal/dnsrow"
)

// Profile names a stub-resolver library.
type Profile string

// The resolver libraries modelled.
const (
	Glibc Profile = "glibc"
	Go    Profile = "go"
)

// Config is one simulation.
type Config struct {
	Seed      uint64
	Profile   Profile
	Hosts     int           // client hosts, each a capture host of its own
	FirstHost int           // number of the first host (h00, h01, ...), to make more in pieces
	Lookups   int           // application lookups per host
	Rate      float64       // lookups per second per host (Poisson)
	Timeout   time.Duration // resolv.conf timeout (whole seconds)
	Attempts  int           // resolv.conf attempts
	Servers   int           // nameservers, 1 to 3
	Search    []string      // search list
	NDots     int
	QLoss     float64 // probability that a query is lost on the way to the resolver
	RLoss     float64 // probability that a response is lost on the way back
	AOnly     float64 // share of lookups that ask for A only
	Start     time.Time
}

// Defaults returns a glibc configuration with resolv.conf defaults and the search list of the
// seed's story.
func Defaults() Config {
	return Config{Seed: 1, Profile: Glibc, Hosts: 4, Lookups: 100, Rate: 0.5, Timeout: 5 * time.Second,
		Attempts: 2, Servers: 2, Search: []string{"in.corp.example"}, NDots: 1, AOnly: 0.1,
		Start: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
}

// Name results and lookup outcomes, as the wire shows them.
const (
	Answer   = "answer"
	NXDomain = "nxdomain"
	NoData   = "nodata"
	Timeout  = "timeout"
)

// Lookup is the truth about one application lookup.
type Lookup struct {
	Host   string
	Client netip.Addr
	Start  int64 // ns since the epoch: when the first query left
	End    int64
	Name   string
	QTypes []uint16
	Tried  []Tried // the names tried, in order, with their results
	// Failed: no name got a positive answer.
	Failed bool
	// MaskedWire: failed, some name timed out and another got NXDOMAIN or NODATA.
	MaskedWire bool
	Attempts   int
}

// Tried is one name of the search list and what the wire said about it.
type Tried struct{ Name, Result string }

// Result is a simulation's capture and truth.
type Result struct {
	Messages []dnsrow.Message // in capture order
	Lookups  []Lookup         // in start order
}

type sim struct {
	cfg     Config
	rng     *rand.Rand
	msgs    []dnsrow.Message
	host    string
	client  netip.Addr
	servers []netip.Addr
}

// Run simulates cfg.
func Run(cfg Config) (Result, error) {
	if cfg.Servers < 1 || cfg.Servers > 3 || cfg.Attempts < 1 || cfg.Timeout < time.Second || cfg.Rate <= 0 {
		return Result{}, fmt.Errorf("simcap: want 1 to 3 servers, attempts >= 1, timeout >= 1s, rate > 0; got %+v", cfg)
	}
	s := &sim{cfg: cfg, rng: rand.New(rand.NewPCG(cfg.Seed, 0x73696d636170))}
	for i := range cfg.Servers {
		s.servers = append(s.servers, netip.AddrFrom4([4]byte{10, 53, 0, byte(i + 1)}))
	}
	var out Result
	for h := cfg.FirstHost; h < cfg.FirstHost+cfg.Hosts; h++ {
		s.host = fmt.Sprintf("h%02d", h)
		s.client = netip.AddrFrom4([4]byte{10, 1 + byte(h>>16), byte(h >> 8), byte(h)})
		t := cfg.Start.UnixNano()
		for range cfg.Lookups {
			t += int64(s.rng.ExpFloat64() / cfg.Rate * 1e9)
			t -= t % 1000 // microsecond timestamps, as in a classic pcap
			out.Lookups = append(out.Lookups, s.lookup(t))
		}
	}
	out.Messages = s.msgs
	slices.SortStableFunc(out.Messages, func(a, b dnsrow.Message) int { return cmp.Compare(a.TS, b.TS) })
	slices.SortStableFunc(out.Lookups, func(a, b Lookup) int { return cmp.Compare(a.Start, b.Start) })
	return out, nil
}

// The names looked up: popular existing names, short corp names that exist under the first
// search suffix, names that exist nowhere, and A-only names (AAAA is NODATA).
func (s *sim) pickName() string {
	x := s.rng.Float64()
	n := int(s.rng.ExpFloat64() * 4)
	switch {
	case x < 0.55:
		return fmt.Sprintf("www%d.example.com", n)
	case x < 0.70:
		return fmt.Sprintf("v4only%d.example.net", n)
	case x < 0.90:
		return fmt.Sprintf("db%d", n)
	case x < 0.95:
		return fmt.Sprintf("nosuch%d.example.org", n)
	}
	return fmt.Sprintf("typo%d", n)
}

// answer is what the resolver says to a query: rcode and number of answer records.
func (s *sim) answer(qname string, qtype uint16) (rcode, answers uint16) {
	corp := ""
	if len(s.cfg.Search) > 0 {
		corp = "." + s.cfg.Search[0]
	}
	switch {
	case strings.HasPrefix(qname, "www") && strings.HasSuffix(qname, ".example.com"),
		corp != "" && strings.HasPrefix(qname, "db") && strings.HasSuffix(qname, corp) && strings.Count(qname, ".") == strings.Count(corp, "."):
		return 0, 1
	case strings.HasPrefix(qname, "v4only") && strings.HasSuffix(qname, ".example.net"):
		if qtype == 1 {
			return 0, 1
		}
		return 0, 0
	}
	return 3, 0
}

func (s *sim) lookup(t int64) Lookup {
	lk := Lookup{Host: s.host, Client: s.client, Start: t, Name: s.pickName(), QTypes: []uint16{1, 28}}
	if s.rng.Float64() < s.cfg.AOnly {
		lk.QTypes = lk.QTypes[:1]
	}
	if s.cfg.Profile == Go {
		lk.End = s.goSearch(&lk, t)
	} else {
		lk.End = s.glibcSearch(&lk, t)
	}
	lk.Failed = !slices.ContainsFunc(lk.Tried, func(n Tried) bool { return n.Result == Answer })
	lk.MaskedWire = lk.Failed && slices.ContainsFunc(lk.Tried, func(n Tried) bool { return n.Result == Timeout }) &&
		slices.ContainsFunc(lk.Tried, func(n Tried) bool { return n.Result == NXDomain || n.Result == NoData })
	return lk
}

// candidates lists the names a lookup may try, in order.
func (s *sim) candidates(name string) (names []string, asIsFirst bool) {
	asIsFirst = strings.Count(name, ".") >= s.cfg.NDots
	if asIsFirst {
		names = append(names, name)
	}
	for _, suffix := range s.cfg.Search {
		names = append(names, name+"."+suffix)
	}
	if !asIsFirst {
		names = append(names, name)
	}
	return names, asIsFirst
}

func (s *sim) glibcSearch(lk *Lookup, t int64) int64 {
	names, asIsFirst := s.candidates(lk.Name)
	for i, qname := range names {
		var r string
		r, t = s.glibcName(lk, qname, t)
		lk.Tried = append(lk.Tried, Tried{qname, r})
		if r == Answer {
			return t
		}
		suffixed := (asIsFirst && i > 0) || (!asIsFirst && i < len(names)-1)
		if r == Timeout && suffixed && !asIsFirst {
			// a suffix timed out: glibc skips the other suffixes and tries the name as-is
			qname = names[len(names)-1]
			r, t = s.glibcName(lk, qname, t)
			lk.Tried = append(lk.Tried, Tried{qname, r})
			return t
		}
		if r == Timeout && suffixed {
			return t
		}
	}
	return t
}

// glibcName sends one name's queries as res_send does and returns its result and when it ended.
func (s *sim) glibcName(lk *Lookup, qname string, t int64) (string, int64) {
	ids := []uint16{uint16(s.rng.Uint32()), uint16(s.rng.Uint32())}
	ports := make([]uint16, len(s.servers))
	for range s.cfg.Attempts {
		for ns, server := range s.servers {
			if ports[ns] == 0 {
				ports[ns] = s.port()
			}
			wait := int64(glibcWait(s.cfg.Timeout, ns, len(s.servers)))
			result, got, done := s.glibcPair(lk, server, ports[ns], ids, qname, t, wait, false)
			// only one of A and AAAA came back: send_dg switches to single-request mode and
			// resends on the same socket, then once more from a new one; a round with no reply
			// at all counts as no reply from this server, else it keeps the half it has
			for retry := 0; retry < 2 && got == 1 && len(lk.QTypes) == 2; retry++ {
				if retry == 1 {
					ports[ns] = s.port()
				}
				r, g, d := s.glibcPair(lk, server, ports[ns], ids, qname, done, wait, true)
				done = d
				if g == 0 {
					result, got = "", 0
					break
				}
				result, got = r, g
			}
			if got > 0 {
				return result, done
			}
			t = done
		}
	}
	return Timeout, t
}

// glibcPair sends a name's queries to one server at t, together or (single) each after the
// previous reply, and returns the result of the replies, how many came, and when it stopped
// waiting: at the last reply if all came, else when the wait ran out.
func (s *sim) glibcPair(lk *Lookup, server netip.Addr, port uint16, ids []uint16, qname string, t, wait int64, single bool) (string, int, int64) {
	result, got, sent, last := "", 0, t, t
	for k, qt := range lk.QTypes {
		at := sent
		if !single {
			at = t + int64(k)*30_000 // AAAA 30 µs after A, from the same socket
		}
		r, rt := s.exchange(lk, server, port, ids[k], qname, qt, at)
		if r == "" {
			if single {
				break // the next query waits for this reply
			}
			continue
		}
		got++
		last = max(last, rt)
		sent = rt
		if result != Answer {
			result = r
		}
	}
	if got < len(lk.QTypes) {
		return result, got, t + wait
	}
	return result, got, last
}

// glibcWait is send_dg's wait for nameserver ns: the timeout for the first, (timeout << ns) /
// nscount whole seconds for the others, at least one second.
func glibcWait(timeout time.Duration, ns, nscount int) time.Duration {
	secs := int(timeout/time.Second) << ns
	if ns > 0 {
		secs /= nscount
	}
	return time.Duration(max(secs, 1)) * time.Second
}

func (s *sim) goSearch(lk *Lookup, t int64) int64 {
	names, _ := s.candidates(lk.Name)
	for _, qname := range names {
		type done struct {
			result string
			at     int64
		}
		var results []done
		for _, qt := range lk.QTypes {
			r, at := s.goTryOneName(lk, qname, qt, t)
			results = append(results, done{r, at})
		}
		slices.SortStableFunc(results, func(a, b done) int { return cmp.Compare(a.at, b.at) })
		r := results[len(results)-1].result // the error that completed last
		if slices.ContainsFunc(results, func(d done) bool { return d.result == Answer }) {
			r = Answer
		}
		t = results[len(results)-1].at
		lk.Tried = append(lk.Tried, Tried{qname, r})
		if r == Answer {
			return t
		}
	}
	return t
}

func (s *sim) goTryOneName(lk *Lookup, qname string, qt uint16, t int64) (string, int64) {
	for range s.cfg.Attempts {
		for _, server := range s.servers {
			r, at := s.exchange(lk, server, s.port(), uint16(s.rng.Uint32()), qname, qt, t)
			if r != "" {
				return r, at
			}
			t += s.cfg.Timeout.Nanoseconds()
		}
	}
	return Timeout, t
}

// exchange sends one query at t and returns its result and the response time, or "" when no
// response reached the client.
func (s *sim) exchange(lk *Lookup, server netip.Addr, port, id uint16, qname string, qtype uint16, t int64) (string, int64) {
	lk.Attempts++
	edns := s.cfg.Profile == Go
	s.msgs = append(s.msgs, s.message(t, false, server, port, id, qname, qtype, 0, 0, edns))
	if s.rng.Float64() < s.cfg.QLoss {
		return "", 0
	}
	rcode, answers := s.answer(qname, qtype)
	if s.rng.Float64() < s.cfg.RLoss {
		return "", 0
	}
	at := t + int64(500+s.rng.IntN(20_000))*1000 // 0.5 to 20.5 ms
	s.msgs = append(s.msgs, s.message(at, true, server, port, id, qname, qtype, rcode, answers, edns))
	switch {
	case rcode == 3:
		return NXDomain, at
	case answers == 0:
		return NoData, at
	}
	return Answer, at
}

func (s *sim) message(ts int64, response bool, server netip.Addr, port, id uint16, qname string, qtype, rcode, answers uint16, edns bool) dnsrow.Message {
	m := dnsrow.Message{Host: []byte(s.host), TS: ts, IPVersion: 4, Transport: dnsrow.TransportUDP, ID: id, RD: 1,
		QName: []byte(qname), QType: qtype, QClass: 1, QDCount: 1, Rcode: rcode, ANCount: answers}
	client, srv := s.client.As16(), netip.AddrFrom16(server.As16()).As16()
	if response {
		m.QR, m.RA = 1, 1
		m.SrcIP, m.DstIP, m.SrcPort, m.DstPort = srv, client, 53, port
	} else {
		m.SrcIP, m.DstIP, m.SrcPort, m.DstPort = client, srv, port, 53
	}
	if edns {
		m.EDNS, m.EDNSUDPSize, m.ARCount = 1, 1232, 1
	}
	return m
}

func (s *sim) port() uint16 { return uint16(32768 + s.rng.IntN(60999-32768)) }
