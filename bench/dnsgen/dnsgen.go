// Package dnsgen generates the fleet-sized benchmark input: one pcap per client host, as a
// capture on that host sees its DNS traffic (every query it sends, the responses that reach it).
//
// Each host runs a glibc-like stub resolver (ndots 1, search svc.corp.example corp.example, two
// or three nameservers, A and AAAA in parallel from one socket, a retry resends the same packets
// to the next nameserver) on one to four client addresses. Names come from a fleet-wide pool with
// Zipf popularity: names that exist (some with AAAA, some without: NODATA), short names that
// exist only under a search suffix, and names that do not exist (NXDOMAIN for every candidate).
// Queries and responses are lost at random with the given probabilities, so some lookups time
// out, retry, fail over, or fall through the search list. It is deterministic for a seed.
//
// It is a load generator, not a ground truth: ../shared/bench/dnssim models resolvers closely
// and writes what really happened.
package dnsgen

import (
	"encoding/binary"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/dnsloss/dnsloss/bench/pcapfile"
)

// Config says what to generate.
type Config struct {
	Hosts    int           // capture hosts, one pcap each; default 50
	Messages int           // about this many DNS messages in all; default 10,000,000
	QLoss    float64       // probability that a query is lost (after the capture point)
	RLoss    float64       // probability that a response is lost (before the capture point)
	Seed     uint64        //
	Start    time.Time     // first lookup; default 2026-01-05 00:00 UTC
	Duration time.Duration // lookups start within this time; default 1 h
}

// Result counts what Generate wrote.
type Result struct {
	Files    []string
	Messages int64
	Lookups  int64
}

// Generate writes cfg.Hosts captures named host-NNN.pcap into dir.
func Generate(cfg Config, dir string) (Result, error) {
	if cfg.Hosts <= 0 {
		cfg.Hosts = 50
	}
	if cfg.Messages <= 0 {
		cfg.Messages = 10_000_000
	}
	if cfg.Start.IsZero() {
		cfg.Start = time.Date(2026, 1, 5, 0, 0, 0, 0, time.UTC)
	}
	if cfg.Duration <= 0 {
		cfg.Duration = time.Hour
	}
	var res Result
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return res, fmt.Errorf("cannot create %q: %w", dir, err)
	}
	pool := newNamePool(rand.New(rand.NewPCG(cfg.Seed, 0)))
	for h := range cfg.Hosts {
		path := filepath.Join(dir, fmt.Sprintf("host-%03d.pcap", h+1))
		g := newHost(cfg, h, pool)
		want := cfg.Messages / cfg.Hosts
		if h < cfg.Messages%cfg.Hosts {
			want++
		}
		g.run(want)
		if err := g.write(path); err != nil {
			return res, err
		}
		res.Files = append(res.Files, path)
		res.Messages += int64(len(g.pkts))
		res.Lookups += g.lookups
	}
	return res, nil
}

type kind uint8

const (
	exists      kind = iota // A, and AAAA when withAAAA
	shortName               // exists only as name.corp.example
	nonExistent             // NXDOMAIN everywhere
)

type poolName struct {
	name     string
	kind     kind
	withAAAA bool
}

type namePool struct {
	names []poolName
}

func newNamePool(r *rand.Rand) *namePool {
	p := &namePool{}
	words := []string{"api", "www", "auth", "db", "cache", "queue", "mail", "cdn", "search", "metrics", "logs", "pay", "img", "static", "login"}
	zones := []string{"example.com", "example.net", "example.org", "corp.example", "cloud.example"}
	for i := range 5000 {
		w := words[i%len(words)]
		switch x := r.IntN(100); {
		case x < 80:
			p.names = append(p.names, poolName{name: fmt.Sprintf("%s-%d.%s", w, i, zones[r.IntN(len(zones))]), kind: exists, withAAAA: r.IntN(2) == 0})
		case x < 90:
			p.names = append(p.names, poolName{name: fmt.Sprintf("%s%d", w, i), kind: shortName})
		default:
			p.names = append(p.names, poolName{name: fmt.Sprintf("%s-%d.invalid-%d.example", w, i, r.IntN(50)), kind: nonExistent})
		}
	}
	return p
}

var searchList = []string{"svc.corp.example", "corp.example"}

// answer says how the resolver answers name/qtype: rcode 0 with answers, 0 without (NODATA), or 3.
func (n *poolName) answer(cand string, qtype uint16) (rcode uint8, answers bool) {
	switch n.kind {
	case exists:
		if cand != n.name {
			return 3, false
		}
		return 0, qtype == 1 || n.withAAAA
	case shortName:
		if cand != n.name+".corp.example" {
			return 3, false
		}
		return 0, qtype == 1
	}
	return 3, false
}

type packet struct {
	ts       int64
	off, len int32
}

type host struct {
	r          *rand.Rand
	cfg        Config
	pool       *namePool
	zipf       *rand.Zipf
	clients    [][4]byte
	servers    [][4]byte
	timeout    int64 // ns
	attempts   int
	arena      []byte
	pkts       []packet
	lookups    int64
	scratch    []byte
	mac, gwMAC [6]byte
}

func newHost(cfg Config, h int, pool *namePool) *host {
	r := rand.New(rand.NewPCG(cfg.Seed, uint64(h)+1))
	g := &host{r: r, cfg: cfg, pool: pool, attempts: 2}
	g.zipf = rand.NewZipf(r, 1.1, 4, uint64(len(pool.names)-1))
	for k := range 1 + h%4 {
		g.clients = append(g.clients, [4]byte{10, byte(h >> 8), byte(h), byte(10 + k)})
	}
	for k := range 2 + h%2 {
		g.servers = append(g.servers, [4]byte{10, 255, byte(h % 4), byte(53 + k)})
	}
	if h%2 == 0 {
		g.timeout = 5e9 // glibc's default
	} else {
		g.timeout = 1e9 // options timeout:1
	}
	g.mac = [6]byte{0x02, 0, 0, 0, byte(h >> 8), byte(h)}
	g.gwMAC = [6]byte{0x02, 0xff, 0, 0, 0, 1}
	return g
}

func (g *host) run(want int) {
	start := g.cfg.Start.UnixNano()
	// About five messages per lookup: spread the lookups over the duration.
	gap := float64(g.cfg.Duration.Nanoseconds()) * 5 / float64(max(want, 1))
	t := start
	for len(g.pkts) < want {
		t += int64(g.r.ExpFloat64() * gap)
		g.lookup(t)
		g.lookups++
	}
	slices.SortStableFunc(g.pkts, func(a, b packet) int {
		switch {
		case a.ts < b.ts:
			return -1
		case a.ts > b.ts:
			return 1
		}
		return 0
	})
}

// lookup runs one getaddrinfo(name, AF_UNSPEC) at t.
func (g *host) lookup(t int64) {
	n := &g.pool.names[g.zipf.Uint64()]
	client := g.clients[g.r.IntN(len(g.clients))]
	var cands []string
	if strings.Contains(n.name, ".") { // ndots 1: as-is first
		cands = append(cands, n.name)
		for _, s := range searchList {
			cands = append(cands, n.name+"."+s)
		}
	} else {
		for _, s := range searchList {
			cands = append(cands, n.name+"."+s)
		}
		cands = append(cands, n.name)
	}
	for _, cand := range cands {
		var ok bool
		t, ok = g.exchange(t, n, client, cand)
		if ok {
			return
		}
	}
}

// exchange sends the A and AAAA queries for cand and waits, retrying through the nameservers;
// it returns when the exchange ended and whether an address was found.
func (g *host) exchange(t int64, n *poolName, client [4]byte, cand string) (int64, bool) {
	sport := uint16(32768 + g.r.IntN(28232))
	ids := [2]uint16{uint16(g.r.Uint32()), uint16(g.r.Uint32())}
	qtypes := [2]uint16{1, 28}
	var got [2]bool
	var found bool
	for a := range g.attempts {
		for _, srv := range g.servers {
			end := t
			for i := range 2 {
				if got[i] {
					continue
				}
				qt := t + int64(i)*int64(20_000+g.r.IntN(60_000))
				g.query(qt, client, srv, sport, ids[i], cand, qtypes[i])
				if g.r.Float64() < g.cfg.QLoss {
					continue
				}
				rt := qt + int64(200_000+g.r.IntN(20_000_000))
				rcode, answers := n.answer(cand, qtypes[i])
				if g.r.Float64() >= g.cfg.RLoss {
					g.response(rt, client, srv, sport, ids[i], cand, qtypes[i], rcode, answers)
					got[i] = true
					found = found || answers
					end = max(end, rt)
				}
			}
			if got[0] && got[1] {
				return end, found
			}
			// glibc: the wait for nameserver n > 0 is (timeout << attempt) / nscount.
			wait := g.timeout
			if a > 0 {
				wait = (g.timeout << a) / int64(len(g.servers))
			}
			t += wait
		}
	}
	return t, found
}

func (g *host) query(ts int64, client, srv [4]byte, sport, id uint16, name string, qtype uint16) {
	dns := g.scratch[:0]
	dns = binary.BigEndian.AppendUint16(dns, id)
	dns = append(dns, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0)
	dns = appendName(dns, name)
	dns = binary.BigEndian.AppendUint16(dns, qtype)
	dns = append(dns, 0, 1)
	g.scratch = dns
	g.frame(ts, g.mac, g.gwMAC, client, srv, sport, 53, dns)
}

func (g *host) response(ts int64, client, srv [4]byte, sport, id uint16, name string, qtype uint16, rcode uint8, answers bool) {
	dns := g.scratch[:0]
	dns = binary.BigEndian.AppendUint16(dns, id)
	an := byte(0)
	if answers {
		an = 1
	}
	dns = append(dns, 0x81, 0x80|rcode, 0, 1, 0, an, 0, 0, 0, 0)
	dns = appendName(dns, name)
	dns = binary.BigEndian.AppendUint16(dns, qtype)
	dns = append(dns, 0, 1)
	if answers {
		dns = append(dns, 0xc0, 12)
		dns = binary.BigEndian.AppendUint16(dns, qtype)
		dns = append(dns, 0, 1, 0, 0, 1, 0x2c) // class IN, TTL 300
		if qtype == 1 {
			dns = append(dns, 0, 4, 192, 0, 2, byte(len(name)))
		} else {
			dns = append(dns, 0, 16, 0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, byte(len(name)))
		}
	}
	g.scratch = dns
	g.frame(ts, g.gwMAC, g.mac, srv, client, 53, sport, dns)
}

func appendName(b []byte, name string) []byte {
	for l := range strings.SplitSeq(name, ".") {
		b = append(b, byte(len(l)))
		b = append(b, l...)
	}
	return append(b, 0)
}

// frame appends an Ethernet/IPv4/UDP frame carrying dns to the arena.
func (g *host) frame(ts int64, srcMAC, dstMAC [6]byte, src, dst [4]byte, sport, dport uint16, dns []byte) {
	off := len(g.arena)
	b := g.arena
	b = append(b, dstMAC[:]...)
	b = append(b, srcMAC[:]...)
	b = append(b, 0x08, 0x00)
	ip := len(b)
	total := 20 + 8 + len(dns)
	b = append(b, 0x45, 0)
	b = binary.BigEndian.AppendUint16(b, uint16(total))
	b = append(b, 0, 0, 0x40, 0, 64, 17, 0, 0)
	b = append(b, src[:]...)
	b = append(b, dst[:]...)
	var sum uint32
	for i := ip; i < ip+20; i += 2 {
		sum += uint32(b[i])<<8 | uint32(b[i+1])
	}
	for sum > 0xffff {
		sum = sum&0xffff + sum>>16
	}
	binary.BigEndian.PutUint16(b[ip+10:], ^uint16(sum))
	b = binary.BigEndian.AppendUint16(b, sport)
	b = binary.BigEndian.AppendUint16(b, dport)
	b = binary.BigEndian.AppendUint16(b, uint16(8+len(dns)))
	b = append(b, 0, 0) // no UDP checksum (allowed over IPv4)
	b = append(b, dns...)
	g.arena = b
	g.pkts = append(g.pkts, packet{ts: ts, off: int32(off), len: int32(len(b) - off)})
}

func (g *host) write(path string) error {
	f, err := os.Create(path)
	if err != nil {
		return fmt.Errorf("cannot create %q: %w", path, err)
	}
	defer f.Close()
	w, err := pcapfile.NewWriter(f, 1, 262144)
	if err != nil {
		return fmt.Errorf("cannot write %q: %w", path, err)
	}
	for _, p := range g.pkts {
		if err := w.Write(p.ts, g.arena[p.off:p.off+p.len], 0); err != nil {
			return fmt.Errorf("cannot write %q: %w", path, err)
		}
	}
	if err := w.Flush(); err != nil {
		return fmt.Errorf("cannot write %q: %w", path, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("cannot write %q: %w", path, err)
	}
	return nil
}
