package analyzercmd_test

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

// These tests run the real analyzer binary, as a user would: the embedded engine allows one per
// process, and exit codes and messages are part of the contract.

var (
	analyzer string
	tmpRoot  string // removed after the tests
)

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "analyzer-bin-")
	if err != nil {
		panic(err)
	}
	tmpRoot = dir
	analyzer = filepath.Join(dir, "analyzer")
	if out, err := exec.Command("go", "build", "-o", analyzer, "../../analyzer").CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "cannot build analyzer: %v\n%s", err, out)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

func lab(name string) string { return filepath.Join("..", "..", "testdata", "lab", name) }

type result struct {
	stdout, stderr string
	code           int
}

// run runs analyzer in the test's directory, with env added to the environment.
func run(t *testing.T, env []string, args ...string) result {
	t.Helper()
	return runIn(t, "", env, args...)
}

// Every analyzer run starts the engine and creates the views (seconds), and every report plans
// the lookup views (tens of seconds), so the tests that only read a store share one: a store is
// built once per test process, in tmpRoot, and each test gets a copy of its directory (the
// engine allows one process per directory, and the copy lets tests run in parallel).

// built is a data directory made once; err says why it could not be.
type built struct {
	once sync.Once
	dir  string
	out  result // of the command that built it
	err  string
}

var (
	builtMu sync.Mutex
	builtBy = map[string]*built{}
)

// buildOnce runs analyzer --db DIR args... the first time it is asked for these args, and
// returns the directory and what the command printed.
func buildOnce(t *testing.T, args ...string) *built {
	t.Helper()
	key := strings.Join(args, "\x00")
	builtMu.Lock()
	b := builtBy[key]
	if b == nil {
		b = &built{}
		builtBy[key] = b
	}
	n := len(builtBy)
	builtMu.Unlock()
	b.once.Do(func() {
		b.err = "the first test that asked for it stopped while building it"
		dir := filepath.Join(tmpRoot, fmt.Sprintf("store-%d", n))
		r := run(t, nil, append([]string{"--db", dir}, args...)...)
		if r.code != 0 {
			b.err = fmt.Sprintf("analyzer %s: exit %d: %s", strings.Join(args, " "), r.code, r.stderr)
			return
		}
		b.dir, b.out, b.err = dir, r, ""
	})
	if b.err != "" {
		t.Fatal(b.err)
	}
	return b
}

// copyOf returns a new data directory holding what b's holds.
func copyOf(t *testing.T, b *built) string {
	t.Helper()
	dst := filepath.Join(t.TempDir(), "db")
	err := filepath.WalkDir(b.dir, func(path string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(b.dir, path)
		to := filepath.Join(dst, rel)
		switch {
		case d.IsDir():
			return os.MkdirAll(to, 0o755)
		case d.Type()&os.ModeSymlink != 0: // the engine links tables to their store by relative links
			link, err := os.Readlink(path)
			if err != nil {
				return err
			}
			return os.Symlink(link, to)
		default:
			data, err := os.ReadFile(path)
			if err != nil {
				return err
			}
			return os.WriteFile(to, data, 0o644)
		}
	})
	if err != nil {
		t.Fatalf("cannot copy the data directory %s: %v", b.dir, err)
	}
	return dst
}

// ingested returns a new data directory into which the lab captures files were ingested.
func ingested(t *testing.T, files ...string) string {
	t.Helper()
	args := []string{"ingest", "-q"}
	for _, f := range files {
		args = append(args, lab(f))
	}
	return copyOf(t, buildOnce(t, args...))
}

// labFiles are the three lab captures whose counts are known independently.
var labFiles = []string{lab("drop-name.pcap"), lab("baseline.pcap"), lab("loss20.pcap")}

// labAnalyzed runs `analyze --format json --quiet` on the three lab captures once, and returns
// what it printed and a copy of the data directory it filled.
func labAnalyzed(t *testing.T) (result, string) {
	t.Helper()
	b := buildOnce(t, append([]string{"analyze", "--format", "json", "--quiet"}, labFiles...)...)
	return b.out, copyOf(t, b)
}

type reportRow struct {
	Host       string `json:"host"`
	Server     string `json:"server_ip"`
	Attempts   int    `json:"attempts"`
	Answered   int    `json:"answered"`
	Late       int    `json:"late"`
	Unanswered int    `json:"unanswered"`
	Unknown    int    `json:"unknown"`
}

// TestLabCaptures checks the counts that were made independently from the packets of the lab
// captures (the issue gives them): queries, and how many of them got a response. One analyze
// of the three captures gives every host's row (a report's rows are per host, so each host's row
// is the one its capture alone would give).
func TestLabCaptures(t *testing.T) {
	t.Parallel()
	r, db := labAnalyzed(t)
	var rep struct{ Rows []reportRow }
	if err := json.Unmarshal([]byte(r.stdout), &rep); err != nil {
		t.Fatalf("report is not JSON: %v\n%s", err, r.stdout)
	}
	tests := []struct {
		file                         string
		messages, attempts, answered int
	}{
		{"drop-name.pcap", 26, 18, 8},
		{"baseline.pcap", 86, 43, 43},
		{"loss20.pcap", 1519, 929, 590},
	}
	// One sql run counts every host's rows; each host is a parameter.
	args := []string{"--db", db, "sql", "--format", "TSV"}
	var ps []string
	for i, tc := range tests {
		args = append(args, "--param", fmt.Sprintf("h%d=%s", i, strings.TrimSuffix(tc.file, ".pcap")))
		ps = append(ps, fmt.Sprintf("{h%d:String}", i))
	}
	// a value with commas is one value (an array here), not three
	args = append(args, "--param", "hosts=['drop-name','baseline','loss20']")
	stored := run(t, nil, append(args, "SELECT host, count() FROM dns_messages WHERE host IN ("+strings.Join(ps, ", ")+") AND has({hosts:Array(String)}, host) GROUP BY host")...)
	for _, tc := range tests {
		t.Run(tc.file, func(t *testing.T) {
			host := strings.TrimSuffix(tc.file, ".pcap")
			var got *reportRow
			for i := range rep.Rows {
				if rep.Rows[i].Host == host {
					got = &rep.Rows[i]
				}
			}
			if got == nil {
				t.Fatalf("no report row for host %s:\n%s", host, r.stdout)
			}
			if got.Server != "10.53.0.1" {
				t.Errorf("server: got %s, want 10.53.0.1", got.Server)
			}
			if got.Attempts != tc.attempts || got.Answered != tc.answered {
				t.Errorf("attempts, answered: got %d, %d, want %d, %d", got.Attempts, got.Answered, tc.attempts, tc.answered)
			}
			// Not answered is unanswered, or unknown when the capture ended within the match window.
			if not := got.Unanswered + got.Unknown + got.Late; not != tc.attempts-tc.answered {
				t.Errorf("not answered: got %d, want %d", not, tc.attempts-tc.answered)
			}
			if want := fmt.Sprintf("\n%s\t%d\n", host, tc.messages); !strings.Contains("\n"+stored.stdout, want) {
				t.Errorf("dns_messages: got rows per host %q, want %d for %s (%s)", stored.stdout, tc.messages, host, stored.stderr)
			}
		})
	}
}

func TestIngestTwiceStoresOnce(t *testing.T) {
	t.Parallel()
	db := t.TempDir()
	for i, args := range [][]string{
		{"ingest", lab("drop-name.pcap")},
		{"ingest", lab("drop-name.pcap")},
		{"ingest", "--replace", lab("drop-name.pcap")},
	} {
		r := run(t, nil, append([]string{"--db", db}, args...)...)
		if r.code != 0 {
			t.Fatalf("run %d: exit %d: %s", i, r.code, r.stderr)
		}
		if i == 1 && !strings.Contains(r.stderr, "skipped") {
			t.Errorf("second ingest: got %q, want a note that the file was skipped", r.stderr)
		}
	}
	r := run(t, nil, "--db", db, "sql", "-f", "TSV", "SELECT count(), uniqExact(source) FROM dns_messages")
	if r.stdout != "26\t1\n" {
		t.Errorf("after three ingests: got %q, want 26 rows from 1 source", r.stdout)
	}
}

// pcapWith returns a one-packet pcap file with the given link type.
func pcapWith(t *testing.T, linkType uint32, pkt []byte) string {
	var b bytes.Buffer
	binary.Write(&b, binary.LittleEndian, []uint32{0xa1b2c3d4, 0x00040002, 0, 0, 65535, linkType})
	binary.Write(&b, binary.LittleEndian, []uint32{1700000000, 0, uint32(len(pkt)), uint32(len(pkt))})
	b.Write(pkt)
	p := filepath.Join(t.TempDir(), "x.pcap")
	os.WriteFile(p, b.Bytes(), 0o644)
	return p
}

func TestBadInput(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	text := filepath.Join(dir, "notes.txt")
	os.WriteFile(text, []byte("this is not a capture file\n"), 0o644)
	file := filepath.Join(dir, "plainfile")
	os.WriteFile(file, nil, 0o644)
	usb := pcapWith(t, 189, make([]byte, 64)) // LINKTYPE_USB_LINUX
	tests := []struct {
		name string
		env  []string
		args []string
		want []string // all must appear in stderr
	}{
		{"missing file", nil, []string{"analyze", filepath.Join(dir, "nope.pcap")}, []string{"nope.pcap", "no such file"}},
		{"not a capture", nil, []string{"analyze", text}, []string{"notes.txt", "not a pcap or pcapng"}},
		{"unsupported link type", nil, []string{"analyze", usb}, []string{"x.pcap", "link type 189", "supported"}},
		{"unwritable data directory", nil, []string{"--db", filepath.Join(file, "db"), "report"}, []string{"cannot create data directory", "--db"}},
		{"no file", nil, []string{"analyze"}, []string{"no capture FILE"}},
		{"flag after a file", nil, []string{"ingest", lab("baseline.pcap"), "--host", "web-2"}, []string{"flag --host after an argument"}},
		{"no query", nil, []string{"sql"}, []string{"sql takes one QUERY"}},
		{"unknown command", nil, []string{"bogus"}, []string{`no command "bogus"`}},
		{"report into a missing directory", nil, []string{"report", "--out", filepath.Join(dir, "missing", "r.txt")}, []string{"missing/r.txt", "no such file or directory", "create the directory"}},
		{"report into a directory", nil, []string{"report", "--out", dir}, []string{"is a directory", "give a file name"}},
		{"setting not finite", nil, []string{"settings", "set", "match_window_ms", "NaN"}, []string{"match_window_ms must be a finite number"}},
		{"unknown setting", nil, []string{"settings", "set", "pair_windows_ms", "3"}, []string{`unknown setting "pair_windows_ms"`, "pair_window_ms,", "settings list"}},
		{"missing libchdb.so", []string{"CHDB_LIB_PATH=", "HOME=" + dir, "XDG_CACHE_HOME=" + dir}, []string{"report"}, []string{"libchdb.so not found", "make setup"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			args := tc.args
			if args[0] != "--db" {
				args = append([]string{"--db", filepath.Join(t.TempDir(), "db")}, args...)
			}
			r := run(t, tc.env, args...)
			if r.code == 0 {
				t.Fatalf("exit 0, want an error; stdout %q", r.stdout)
			}
			if lines := strings.Count(strings.TrimSpace(r.stderr), "\n") + 1; lines > 2 {
				t.Errorf("error takes %d lines, want one or two:\n%s", lines, r.stderr)
			}
			for _, w := range tc.want {
				if !strings.Contains(r.stderr, w) {
					t.Errorf("stderr %q lacks %q", r.stderr, w)
				}
			}
		})
	}
	// A failed run leaves a data directory that the next run uses without trouble. (This runs
	// before the cases above, which wait for the test's function to return.)
	db := filepath.Join(t.TempDir(), "db")
	run(t, nil, "--db", db, "analyze", text)
	if r := run(t, nil, "--db", db, "analyze", lab("baseline.pcap")); r.code != 0 {
		t.Errorf("run after a failed one: exit %d: %s", r.code, r.stderr)
	}
}

// TestEveryPublicCapture: analyze exits 0 on every public capture in the repository, whatever
// its oddities (fragments, TCP, cut records, invalid names, several interfaces).
func TestEveryPublicCapture(t *testing.T) {
	t.Parallel()
	files, err := filepath.Glob(filepath.Join("..", "dnswire", "testdata", "*.pcap*"))
	if err != nil || len(files) < 25 {
		t.Fatalf("found %d public captures (%v), want 25", len(files), err)
	}
	r := run(t, nil, append([]string{"--db", t.TempDir(), "analyze", "--quiet"}, files...)...)
	if r.code != 0 || strings.Contains(r.stderr, "panic") {
		t.Fatalf("exit %d:\n%s", r.code, r.stderr)
	}
}

// TestReassembledCaptures: queries whose messages came in IP fragments or over TCP get their
// responses matched end to end (decode, reassembly, store, dns_transactions). The counts are
// tshark's: frags.pcap and dnso1tcp.pcap hold 41 queries and their 41 responses, arkime dns-tcp
// two connections of one query and one response each, 1qtcppadd one of each.
func TestReassembledCaptures(t *testing.T) {
	t.Parallel()
	db := t.TempDir()
	files := []string{
		"DNS-OARC_dnscap__frags.pcap",
		"DNS-OARC_dnscap__dnso1tcp.pcap",
		"arkime_arkime__dns-tcp.pcap",
		"DNS-OARC_dnscap__1qtcppadd.pcap",
	}
	var paths []string
	for _, f := range files {
		paths = append(paths, filepath.Join("..", "dnswire", "testdata", f))
	}
	if r := run(t, nil, append([]string{"--db", db, "ingest"}, paths...)...); r.code != 0 {
		t.Fatalf("ingest: exit %d: %s", r.code, r.stderr)
	}
	r := run(t, nil, "--db", db, "sql", "--format", "TSV",
		"SELECT host, transport, count(), countIf(outcome = 'answered') FROM dns_transactions GROUP BY host, transport ORDER BY host")
	want := "" +
		"DNS-OARC_dnscap__1qtcppadd\ttcp\t1\t1\n" +
		"DNS-OARC_dnscap__dnso1tcp\ttcp\t41\t41\n" +
		"DNS-OARC_dnscap__frags\tudp\t41\t41\n" +
		"arkime_arkime__dns-tcp\ttcp\t2\t2\n"
	if r.stdout != want {
		t.Errorf("host, transport, attempts, answered:\ngot\n%s\nwant\n%s\n%s", r.stdout, want, r.stderr)
	}
	r = run(t, nil, "--db", db, "sql", "--format", "TSV",
		"SELECT host, countIf(ip_fragmented = 1), countIf(tcp_reassembled = 1), countIf(malformed != '') FROM dns_messages GROUP BY host ORDER BY host")
	// frags.pcap has every message in fragments; in dnso1tcp each of the 41 queries spans two
	// segments (its length prefix alone, then the message: tshark's tcp.segment.count is 2) and
	// each response one.
	want = "" +
		"DNS-OARC_dnscap__1qtcppadd\t0\t0\t0\n" +
		"DNS-OARC_dnscap__dnso1tcp\t0\t41\t0\n" +
		"DNS-OARC_dnscap__frags\t82\t0\t0\n" +
		"arkime_arkime__dns-tcp\t0\t0\t0\n"
	if r.stdout != want {
		t.Errorf("host, fragmented, TCP-reassembled, malformed rows:\ngot\n%s\nwant\n%s", r.stdout, want)
	}
}

type lookupRow struct {
	Name          string `json:"name"`
	StartNS       int64  `json:"start_ns,string"`
	Outcome       string `json:"outcome"`
	Attempts      int    `json:"attempts"`
	MaskedTimeout bool   `json:"masked_timeout"`
}

func lookupsOf(t *testing.T, db, host string, extra ...string) []lookupRow {
	t.Helper()
	r := run(t, nil, append([]string{"--db", db, "lookups", "--host", host, "--limit", "0", "-f", "json"}, extra...)...)
	if r.code != 0 {
		t.Fatalf("lookups: exit %d: %s", r.code, r.stderr)
	}
	var out []lookupRow
	dec := json.NewDecoder(strings.NewReader(r.stdout))
	for dec.More() {
		var l lookupRow
		if err := dec.Decode(&l); err != nil {
			t.Fatal(err)
		}
		out = append(out, l)
	}
	return out
}

// TestLabLookups checks dns_lookups on the lab captures against what is known independently:
// the lab's scenario (drop-name) and what the application saw (loss20.log). Each host's lookups
// are read from the store that the lab captures were analyzed into.
func TestLabLookups(t *testing.T) {
	t.Parallel()
	t.Run("drop-name", func(t *testing.T) {
		t.Parallel()
		_, db := labAnalyzed(t)
		r := run(t, nil, "--db", db, "lookups", "--host", "drop-name", "--masked")
		want := "10.53.0.2 www.example.com A/AAAA: no answer from 10.53.0.1 at +0s, +5s; tried www.example.com.in.corp.example -> NXDOMAIN at +10s (NXDOMAIN hides a timeout)"
		lines := strings.Split(strings.TrimSpace(r.stdout), "\n")
		if len(lines) != 2 || !strings.HasSuffix(lines[0], want) || !strings.HasSuffix(lines[1], want) {
			t.Errorf("masked lookups:\n%s\nwant two lines ending in\n%s", r.stdout, want)
		}
		var got []string
		for _, l := range lookupsOf(t, db, "drop-name") {
			got = append(got, fmt.Sprintf("%s %s %d %v", l.Name, l.Outcome, l.Attempts, l.MaskedTimeout))
		}
		// The lab's scenario: two glibc lookups lost at the resolver and masked by the suffix's
		// NXDOMAIN (4 lost attempts + 2 NXDOMAIN), api answered, dig's lookup (one retry from a new
		// port, same id) a plain timeout, the last www lookup answered.
		wantAll := []string{"www.example.com timeout 6 true", "www.example.com timeout 6 true", "api.example.com answered 2 false",
			"www.example.com timeout 2 false", "www.example.com answered 2 false"}
		if strings.Join(got, "\n") != strings.Join(wantAll, "\n") {
			t.Errorf("lookups:\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(wantAll, "\n"))
		}
	})
	t.Run("loss20 against the application's log", func(t *testing.T) {
		t.Parallel()
		_, db := labAnalyzed(t)
		checkAgainstLog(t, db, "loss20", 28)
	})
	// glibc switches itself to single-request and then single-request-reopen after a pair timed
	// out with one answer, and lab.sh runs each name's lookups back to back (40 % loss, one
	// name a worker): failed lookups of www.example.com end with NXDOMAIN for
	// www.example.com.in.corp.example and the next lookup asks www.example.com right after it,
	// which must not make the name look tried as-is last.
	t.Run("loss40 against the application's log", func(t *testing.T) {
		t.Parallel()
		checkAgainstLog(t, logAnalyzed(t), "loss40", 36)
	})
	// options single-request-reopen: every AAAA comes from a new socket right after the
	// response to the A.
	t.Run("loss30-reopen against the application's log", func(t *testing.T) {
		t.Parallel()
		checkAgainstLog(t, logAnalyzed(t), "loss30-reopen", 20)
	})
}

// logFiles are lab captures checked only against the application's log (NAME.log).
var logFiles = []string{lab("loss40.pcap"), lab("loss30-reopen.pcap")}

// logAnalyzed returns a copy of a data directory into which logFiles were analyzed once.
func logAnalyzed(t *testing.T) string {
	t.Helper()
	return copyOf(t, buildOnce(t, append([]string{"analyze", "--format", "json", "--quiet"}, logFiles...)...))
}

// checkAgainstLog compares host's dns_lookups with the lab's log of what the application saw
// (testdata/lab/HOST.log: name outcome seconds @start_epoch detail, one getaddrinfo() a line):
// every failed lookup of a name that exists has a lookup within 50 ms of its start whose
// outcome is not answered, and at least 95 % of the view's failed lookups match a failure in
// the log (of any name) within 50 ms. wantFailed is the lab's count of failures of existing
// names (testdata/lab/README.md).
func checkAgainstLog(t *testing.T, db, host string, wantFailed int) {
	t.Helper()
	log, err := os.ReadFile(lab(host + ".log"))
	if err != nil {
		t.Fatal(err)
	}
	ls := lookupsOf(t, db, host)
	near := func(l lookupRow, start float64) bool {
		d := float64(l.StartNS)/1e9 - start
		return d > -0.05 && d < 0.05
	}
	existing := map[string]bool{"www.example.com": true, "api.example.com": true, "mail.example.com": true, "alias.example.com": true, "db": true}
	var logFailures []float64
	failedLogged := 0
	for _, line := range strings.Split(strings.TrimSpace(string(log)), "\n") {
		f := strings.Fields(line)
		if len(f) < 4 || f[1] == "OK" {
			continue
		}
		var start float64
		fmt.Sscanf(strings.TrimPrefix(f[3], "@"), "%f", &start)
		logFailures = append(logFailures, start)
		if !existing[f[0]] {
			continue
		}
		failedLogged++
		found := false
		for _, l := range ls {
			if near(l, start) && l.Outcome != "answered" {
				found = true
			}
		}
		if !found {
			t.Errorf("the application's failed lookup of %s at %.6f has no failed lookup in dns_lookups", f[0], start)
		}
	}
	if failedLogged != wantFailed {
		t.Errorf("%s.log: %d failures of existing names, the lab README says %d", host, failedLogged, wantFailed)
	}
	failed, matched := 0, 0
	for _, l := range ls {
		if l.Outcome == "answered" {
			continue
		}
		failed++
		for _, s := range logFailures {
			if near(l, s) {
				matched++
				break
			}
		}
	}
	if failed == 0 || float64(matched)/float64(failed) < 0.95 {
		t.Errorf("%d of the view's %d failed lookups match a failure in the log, want at least 95%%", matched, failed)
	}
	t.Logf("%d of %d failed lookups match a failure in the log", matched, failed)
}
