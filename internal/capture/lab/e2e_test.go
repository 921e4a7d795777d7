package lab

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/dnsloss/dnsloss/internal/dnsrow"
	"github.com/dnsloss/dnsloss/internal/dnswire"
	"github.com/dnsloss/dnsloss/internal/pcapread"
	"github.com/dnsloss/dnsloss/internal/sink"
)

const labHost = "labclient"

// build compiles ./analyzer and ./collector of this module into dir.
func build(t *testing.T, dir string) (analyzer, collector string) {
	t.Helper()
	root, err := exec.Command("go", "env", "GOMOD").Output()
	if err != nil {
		t.Fatalf("go env GOMOD: %v", err)
	}
	mod := filepath.Dir(strings.TrimSpace(string(root)))
	for _, p := range []string{"analyzer", "collector"} {
		cmd := exec.Command("go", "build", "-o", filepath.Join(dir, p), "./"+p)
		cmd.Dir = mod
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("go build ./%s: %v\n%s", p, err, out)
		}
	}
	return filepath.Join(dir, "analyzer"), filepath.Join(dir, "collector")
}

// tcpdumpTuples decodes tcpdump's capture with pcapread and dnswire, one line per DNS message:
// ts, src, src port, dst, dst port, id, qname.
func tcpdumpTuples(t *testing.T, path string) (tuples []string, queries map[string]int) {
	t.Helper()
	rd, err := pcapread.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer rd.Close()
	queries = map[string]int{}
	dec := dnswire.NewDecoder(dnswire.Config{})
	var pkt pcapread.Packet
	for {
		err := rd.Next(&pkt)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatalf("reading tcpdump's capture: %v", err)
		}
		dec.Decode(&dnswire.Frame{LinkType: pkt.LinkType, TS: pkt.TS, Data: pkt.Data, WireLen: pkt.WireLen}, func(m *dnsrow.Message) {
			tuples = append(tuples, fmt.Sprintf("%d\t%s\t%d\t%s\t%d\t%d\t%s", m.TS,
				netip.AddrFrom16(m.SrcIP), m.SrcPort, netip.AddrFrom16(m.DstIP), m.DstPort, m.ID, m.QName))
			if m.QR == 0 {
				queries[string(m.QName)]++
			}
		})
	}
	if st := dec.Stats(); st.Packets != st.DNSMessages {
		t.Fatalf("tcpdump's capture: %d packets, %d DNS messages; the lab should carry DNS only", st.Packets, st.DNSMessages)
	}
	sort.Strings(tuples)
	return tuples, queries
}

// lines splits TSV output into sorted lines.
func lines(s string) []string {
	s = strings.TrimSpace(s)
	if s == "" {
		return nil
	}
	l := strings.Split(s, "\n")
	sort.Strings(l)
	return l
}

// diff returns up to n lines of a that are not in b (both sorted, duplicates counted).
func diff(a, b []string, n int) []string {
	count := map[string]int{}
	for _, x := range b {
		count[x]++
	}
	var out []string
	for _, x := range a {
		if count[x] > 0 {
			count[x]--
			continue
		}
		if len(out) < n {
			out = append(out, x)
		}
	}
	return out
}

func atoi(t *testing.T, s string) int64 {
	t.Helper()
	v, err := strconv.ParseInt(strings.TrimSpace(s), 10, 64)
	if err != nil {
		t.Fatalf("not a number: %q", s)
	}
	return v
}

// TestLiveCaptureEndToEnd: collector capture on the client's veth ships rows to analyzer serve
// over HTTP while real glibc lookups run, one name's queries dropped by nftables. With the
// afpacket source, serve is stopped and started again in the middle. The stored rows must equal
// what tcpdump captured on the same interface: none lost, none stored twice.
func TestLiveCaptureEndToEnd(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("skipping the live-capture lab: it needs root (network namespaces, AF_PACKET sockets); CI runs it as root")
	}
	analyzer, collector := build(t, t.TempDir())
	t.Run("afpacket with serve restarted", func(t *testing.T) { liveCapture(t, analyzer, collector, "afpacket", true) })
	t.Run("pcap", func(t *testing.T) { liveCapture(t, analyzer, collector, "pcap", false) })
}

func liveCapture(t *testing.T, analyzer, collector, source string, outage bool) {
	l := newLab(t)
	const dropped = "www.example.com"
	l.dropQueries(dropped)

	db := filepath.Join(l.dir, "db")
	serveArgs := func(listen string) []string {
		return in(l.nsC, analyzer, "--db", db, "serve", "--listen", listen)
	}
	serve := l.start("analyzer serve", "ip", serveArgs("127.0.0.1:0")...)
	addr := l.waitOutput(serve, `listening on http://(\S+)`, 60*time.Second)
	// A short match window, so that the dropped name's last attempts are judged unanswered
	// rather than unknown (glibc here waits 1 s per attempt).
	l.query(addr, "INSERT INTO dnsloss_settings (name, value) VALUES ('match_window_ms', 1500)")

	pcapPath := filepath.Join(l.dir, "tcpdump.pcap")
	tcpdump := l.start("tcpdump", "ip", in(l.nsC, "tcpdump", "-i", l.ifC, "-nn", "-s", "0", "--immediate-mode", "-U",
		"--time-stamp-precision", "nano", "-Z", "root", "-w", pcapPath, "port", "53")...)
	l.waitOutput(tcpdump, `listening on`, 15*time.Second)

	spool := filepath.Join(l.dir, "spool")
	coll := l.start("collector capture", "ip", in(l.nsC, collector, "capture", "-i", l.ifC, "--host", labHost, "--source", source,
		"--clickhouse", "http://"+addr, "--workers", "2", "--ring-mb", "8", "--batch-age", "300ms",
		"--stats-interval", "2s", "--spool-dir", spool, "--flush-timeout", "30s", "--metrics-listen", "127.0.0.1:0")...)
	l.waitOutput(coll, `msg=capturing`, 15*time.Second)
	metricsURL := l.waitOutput(coll, `serving metrics.*addr=(\S+)`, 5*time.Second)

	type lookup struct {
		name string
		ok   bool
	}
	runLookups := func(phase string, ls []lookup) {
		for _, lk := range ls {
			code, out := l.lookup(lk.name)
			if (code == 0) != lk.ok {
				t.Errorf("%s: getent ahosts %s: exit %d (%s), want success %v", phase, lk.name, code, strings.TrimSpace(out), lk.ok)
			}
		}
	}
	// Phase 1: the store is up.
	runLookups("before the outage", []lookup{{"api.example.com", true}, {dropped, false}, {"mail.example.com", true}, {"nope.example.org", false}})
	deadline := time.Now().Add(20 * time.Second)
	for {
		out, err := l.tryQuery(addr, "SELECT count() FROM dns_messages WHERE host = '"+labHost+"'")
		if err == nil && strings.TrimSpace(out) != "0" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no rows reached analyzer serve (last: %q, %v); collector said:\n%s", out, err, coll.output())
		}
		time.Sleep(50 * time.Millisecond)
	}

	if outage {
		// Phase 2: analyzer serve stops; the collector spools.
		l.stop(serve, syscall.SIGTERM, 60*time.Second)
		runLookups("during the outage", []lookup{{"db", true}, {"alias.example.com", true}, {"api.example.com", true}})
		l.waitOutput(coll, `cannot insert into ClickHouse; spooling`, 30*time.Second)
		deadline = time.Now().Add(20 * time.Second)
		for {
			m, _ := filepath.Glob(filepath.Join(spool, "*.block"))
			if len(m) > 0 {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("nothing was spooled while analyzer serve was down; collector said:\n%s", coll.output())
			}
			time.Sleep(20 * time.Millisecond)
		}
		// Phase 3: analyzer serve is back on the same address; the spool drains.
		serve = l.start("analyzer serve (again)", "ip", serveArgs(addr)...)
		l.waitOutput(serve, `listening on http://`, 60*time.Second)
	}
	runLookups("later", []lookup{{dropped, false}, {"api.example.com", true}, {"mail.example.com", true}})
	if outage {
		l.waitOutput(coll, `ClickHouse is reachable again`, 60*time.Second)
	}

	metrics, err := httpClient(l.nsC).Get(metricsURL)
	if err != nil {
		t.Fatalf("metrics: %v", err)
	}
	mb, _ := io.ReadAll(metrics.Body)
	metrics.Body.Close()
	for _, want := range []string{"dnsloss_collector_packets_total{iface=\"" + l.ifC + "\",source=\"" + source + ":" + l.ifC + "\"}", "dnsloss_sink_errors_total ", "dnsloss_spool_bytes "} {
		if !strings.Contains(string(mb), want) {
			t.Errorf("metrics lack %q:\n%s", want, mb)
		}
	}

	l.stop(coll, syscall.SIGTERM, 60*time.Second)
	if coll.err != nil {
		t.Errorf("collector exited with %v:\n%s", coll.err, coll.output())
	}
	l.stop(tcpdump, syscall.SIGINT, 15*time.Second)
	if m, _ := filepath.Glob(filepath.Join(spool, "*.block")); len(m) != 0 {
		t.Errorf("spool not empty after a clean stop: %v", m)
	}

	want, queries := tcpdumpTuples(t, pcapPath)
	if len(want) == 0 {
		t.Fatal("tcpdump captured nothing")
	}
	got := lines(l.query(addr, `SELECT toUnixTimestamp64Nano(ts), toString(src_ip), src_port, toString(dst_ip), dst_port, id, qname
		FROM dns_messages WHERE host = '`+labHost+`'`))
	if len(got) != len(want) {
		t.Errorf("rows: got %d, tcpdump captured %d DNS messages", len(got), len(want))
	}
	if missing := diff(want, got, 10); len(missing) > 0 {
		t.Errorf("messages tcpdump captured that are not stored (first %d):\n%s", len(missing), strings.Join(missing, "\n"))
	}
	if extra := diff(got, want, 10); len(extra) > 0 {
		t.Errorf("stored rows tcpdump did not capture, or stored twice (first %d):\n%s", len(extra), strings.Join(extra, "\n"))
	}

	// Direction: the kernel sees queries leave the client and responses arrive.
	dirs := l.query(addr, `SELECT qr, direction, count() FROM dns_messages WHERE host = '`+labHost+`' GROUP BY qr, direction ORDER BY qr, direction`)
	nq, nr := 0, 0
	for _, n := range queries {
		nq += n
	}
	nr = len(want) - nq
	if wantDirs := fmt.Sprintf("0\tout\t%d\n1\tin\t%d\n", nq, nr); dirs != wantDirs {
		t.Errorf("directions: got\n%swant\n%s", dirs, wantDirs)
	}

	// Transactions: every query for the dropped name went unanswered, every other one answered.
	tx := l.query(addr, `SELECT qname, outcome, count() FROM dns_transactions WHERE host = '`+labHost+`' GROUP BY qname, outcome ORDER BY qname, outcome`)
	outcomes := map[string]map[string]int64{}
	for _, ln := range lines(tx) {
		f := strings.Split(ln, "\t")
		if outcomes[f[0]] == nil {
			outcomes[f[0]] = map[string]int64{}
		}
		outcomes[f[0]][f[1]] = atoi(t, f[2])
	}
	for name, n := range queries {
		t.Run("transactions/"+name, func(t *testing.T) {
			o := outcomes[name]
			if name == dropped {
				if o["answered"] != 0 || o["unanswered"] == 0 || o["unanswered"]+o["unknown"] != int64(n) {
					t.Errorf("got %v, want all %d queries unanswered (the last ones may be unknown)", o, n)
				}
				return
			}
			if o["answered"] != int64(n) {
				t.Errorf("got %v, want all %d queries answered", o, n)
			}
		})
	}
	if queries[dropped] < 4 {
		t.Errorf("queries for %s: got %d, want at least 4 (two lookups, A and AAAA, two attempts each)", dropped, queries[dropped])
	}
	if queries[dropped+"."+searchDom] == 0 {
		t.Errorf("no search-suffixed query %s.%s after the timeouts", dropped, searchDom)
	}
	loss := l.query(addr, `SELECT attempts, unanswered + unknown FROM loss_by_host WHERE host = '`+labHost+`'`)
	if wantLoss := fmt.Sprintf("%d\t%d\n", nq, queries[dropped]); loss != wantLoss {
		t.Errorf("loss_by_host attempts and unanswered+unknown: got %q, want %q", loss, wantLoss)
	}

	// Masked timeouts: each `getent ahosts www.example.com` above is one lookup that timed out
	// (its queries dropped) and whose search-suffixed name then got NXDOMAIN, and the report
	// counts both.
	masked := l.query(addr, `SELECT name, outcome, masked_timeout, count() FROM dns_lookups WHERE host = '`+labHost+`'
		AND name = '`+dropped+`' GROUP BY name, outcome, masked_timeout`)
	if want := dropped + "\ttimeout\t1\t2\n"; masked != want {
		t.Errorf("lookups of %s: got %q, want %q (two masked timeouts)", dropped, masked, want)
	}
	if got := l.query(addr, `SELECT sum(masked_timeouts) FROM loss_by_host WHERE host = '`+labHost+`'`); got != "2\n" {
		t.Errorf("loss_by_host masked_timeouts: got %q, want 2", got)
	}

	// Capture accounting: the intervals add up to what was captured, and nothing was lost.
	st := l.query(addr, `SELECT count(), sum(dns_messages), sum(packets), sum(kernel_drops), sum(tool_drops), sum(rows_dropped)
		FROM capture_stats WHERE host = '`+labHost+`'`)
	f := strings.Fields(st)
	if len(f) != 6 {
		t.Fatalf("capture_stats: %q", st)
	}
	if n := atoi(t, f[0]); n < 3 {
		t.Errorf("capture_stats rows: got %d, want several 2-second intervals", n)
	}
	if atoi(t, f[1]) != int64(len(want)) || atoi(t, f[2]) < int64(len(want)) {
		t.Errorf("capture_stats: %s DNS messages in %s packets, want %d messages", f[1], f[2], len(want))
	}
	if f[3] != "0" || f[4] != "0" || f[5] != "0" {
		t.Errorf("capture_stats drops: kernel %s, tool %s, rows %s; want none", f[3], f[4], f[5])
	}
	gaps := l.query(addr, `SELECT count() FROM (SELECT start_ts, lagInFrame(end_ts) OVER (ORDER BY start_ts) AS prev_end,
		row_number() OVER (ORDER BY start_ts) AS n FROM capture_stats WHERE host = '`+labHost+`') WHERE n > 1 AND start_ts != prev_end`)
	if strings.TrimSpace(gaps) != "0" {
		t.Errorf("capture_stats intervals with a gap or overlap: %s", gaps)
	}
	if outage {
		checkDedupToken(t, l, addr)
	}
	if t.Failed() {
		t.Logf("collector output:\n%s", coll.output())
	}
	os.Remove(pcapPath)
}

// checkDedupToken inserts one block three times through the sink's clickhouse-go inserter, twice
// with the same deduplication token (a retry after a lost answer) and once with another: the
// store must keep it twice.
func checkDedupToken(t *testing.T, l *lab, addr string) {
	dial := nsDialer(l.nsC)
	ch, err := sink.OpenClickHouse(sink.ServerConfig{URL: "http://" + addr, DialContext: func(ctx context.Context, a string) (net.Conn, error) {
		return dial(ctx, "tcp", a)
	}})
	if err != nil {
		t.Fatal(err)
	}
	defer ch.Close()
	b := dnsrow.NewBatch()
	for i := range 3 {
		b.Append(&dnsrow.Message{Host: []byte("dedup-check"), TS: int64(1767225600+i) * 1e9, ID: uint16(i), QName: []byte("x.example")})
	}
	data, err := b.EncodeNative(nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, tok := range []string{"dedup-check-1", "dedup-check-1", "dedup-check-2"} {
		if err := ch.Insert(context.Background(), &sink.Block{Table: dnsrow.Table, Rows: 3, Native: data, Token: tok}); err != nil {
			t.Fatalf("insert with token %s: %v", tok, err)
		}
	}
	if got := strings.TrimSpace(l.query(addr, "SELECT count() FROM dns_messages WHERE host = 'dedup-check'")); got != "6" {
		t.Errorf("rows after inserting a block with token 1, again with token 1, then with token 2: got %s, want 6", got)
	}
}
