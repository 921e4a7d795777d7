package analyzercmd_test

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/dnsloss/dnsloss/internal/pcapread"
)

// TestFailIf: the threshold flag exits non-zero on the capture with loss and zero on the one
// without. Each case reports on a store holding its capture alone.
func TestFailIf(t *testing.T) {
	t.Parallel()
	tests := []struct {
		file string
		args []string
		code int
	}{
		{"drop-name.pcap", []string{"--fail-if", "unanswered_ratio > 0.01"}, 3},
		{"baseline.pcap", []string{"--fail-if", "unanswered_ratio > 0.01"}, 0},
		{"drop-name.pcap", []string{"--fail-if", "unanswered_ratio > 0.6"}, 0},
		{"drop-name.pcap", []string{"--fail-if", "unanswered > 100", "--fail-if", "unanswered >= 9"}, 3},
		{"baseline.pcap", []string{"--fail-if", "unanswered_ratio >> 0.01"}, 2},
	}
	for _, tc := range tests {
		t.Run(tc.file+" "+strings.Join(tc.args, " "), func(t *testing.T) {
			t.Parallel()
			db := ingested(t, tc.file)
			r := run(t, nil, append([]string{"--db", db, "report", "--format", "json"}, tc.args...)...)
			if r.code != tc.code {
				t.Fatalf("exit: got %d, want %d; stderr %s", r.code, tc.code, r.stderr)
			}
			if tc.code == 3 && !strings.Contains(r.stderr, "threshold crossed: drop-name") {
				t.Errorf("stderr %q does not name the host", r.stderr)
			}
			if tc.code != 2 && !json.Valid([]byte(r.stdout)) {
				t.Errorf("the report is not JSON:\n%s", r.stdout)
			}
		})
	}
}

// writeShifted writes a nanosecond pcap with the packets of each capture in parts, each moved so
// that its first packet falls at the given time.
func writeShifted(t *testing.T, path string, parts []struct {
	file string
	at   time.Time
}) {
	t.Helper()
	var b bytes.Buffer
	var link uint16
	var recs bytes.Buffer
	for _, p := range parts {
		rd, err := pcapread.Open(lab(p.file))
		if err != nil {
			t.Fatal(err)
		}
		var pkt pcapread.Packet
		var shift int64
		first := true
		for {
			err := rd.Next(&pkt)
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				t.Fatal(err)
			}
			if first {
				shift, first, link = p.at.UnixNano()-pkt.TS, false, pkt.LinkType
			}
			ts := pkt.TS + shift
			binary.Write(&recs, binary.LittleEndian, []uint32{uint32(ts / 1e9), uint32(ts % 1e9), uint32(len(pkt.Data)), uint32(pkt.WireLen)})
			recs.Write(pkt.Data)
		}
		rd.Close()
	}
	binary.Write(&b, binary.LittleEndian, []uint32{0xa1b23c4d, 0x00040002, 0, 0, 262144, uint32(link)})
	b.Write(recs.Bytes())
	if err := os.WriteFile(path, b.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
}

// TestScheduledReports: over captures spanning three hours, scheduled mode writes one report
// per closed hour and one loss_reports row per hour and host, names the host that got worse,
// and a second run duplicates nothing.
func TestScheduledReports(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	db, out := filepath.Join(dir, "db"), filepath.Join(dir, "reports")
	h := func(n int) time.Time { return time.Date(2026, 1, 1, n, 5, 0, 0, time.UTC) }
	type part = struct {
		file string
		at   time.Time
	}
	// fleet-1: no loss, then the dropped name, then no loss again; fleet-2: no loss throughout.
	writeShifted(t, filepath.Join(dir, "fleet-1.pcap"), []part{{"baseline.pcap", h(0)}, {"drop-name.pcap", h(1)}, {"baseline.pcap", h(2)}})
	writeShifted(t, filepath.Join(dir, "fleet-2.pcap"), []part{{"baseline.pcap", h(0)}, {"baseline.pcap", h(1)}, {"baseline.pcap", h(2)}})
	if r := run(t, nil, "--db", db, "ingest", "-q", filepath.Join(dir, "fleet-1.pcap"), filepath.Join(dir, "fleet-2.pcap")); r.code != 0 {
		t.Fatalf("ingest: exit %d: %s", r.code, r.stderr)
	}
	args := []string{"--db", db, "report", "--every", "1h", "--out-dir", out, "--format", "json,html", "--once"}
	r := run(t, nil, args...)
	if r.code != 0 {
		t.Fatalf("scheduled run: exit %d: %s", r.code, r.stderr)
	}
	names := func() []string {
		es, _ := os.ReadDir(out)
		var n []string
		for _, e := range es {
			n = append(n, e.Name())
		}
		sort.Strings(n)
		return n
	}
	want := []string{
		"loss-report-20260101T000000Z-20260101T010000Z.html", "loss-report-20260101T000000Z-20260101T010000Z.json",
		"loss-report-20260101T010000Z-20260101T020000Z.html", "loss-report-20260101T010000Z-20260101T020000Z.json",
		"loss-report-20260101T020000Z-20260101T030000Z.html", "loss-report-20260101T020000Z-20260101T030000Z.json",
	}
	if got := names(); strings.Join(got, " ") != strings.Join(want, " ") {
		t.Fatalf("report files: got %v, want %v", got, want)
	}
	var rep struct {
		WorseHosts []string `json:"worse_hosts"`
		Hosts      []struct {
			Host       string
			Attempts   int
			Unanswered int
		}
	}
	b, _ := os.ReadFile(filepath.Join(out, want[3]))
	if err := json.Unmarshal(b, &rep); err != nil {
		t.Fatal(err)
	}
	// drop-name's 18 attempts, 8 answered (the lab's counts), in the 01:00 hour of fleet-1.
	if len(rep.WorseHosts) != 1 || rep.WorseHosts[0] != "fleet-1" {
		t.Errorf("01:00 report: worse hosts got %v, want [fleet-1]", rep.WorseHosts)
	}
	if len(rep.Hosts) != 2 || rep.Hosts[0].Host != "fleet-1" || rep.Hosts[0].Attempts != 18 || rep.Hosts[1].Attempts != 43 {
		t.Errorf("01:00 report hosts: got %+v, want fleet-1 with 18 attempts and fleet-2 with 43", rep.Hosts)
	}
	const q = "SELECT toString(period_start), host, attempts, worse FROM loss_reports ORDER BY period_start, host"
	wantRows := "2026-01-01 00:00:00.000\tfleet-1\t43\t0\n2026-01-01 00:00:00.000\tfleet-2\t43\t0\n" +
		"2026-01-01 01:00:00.000\tfleet-1\t18\t1\n2026-01-01 01:00:00.000\tfleet-2\t43\t0\n" +
		"2026-01-01 02:00:00.000\tfleet-1\t43\t0\n2026-01-01 02:00:00.000\tfleet-2\t43\t0\n"
	if r := run(t, nil, "--db", db, "sql", "-f", "TSV", q); r.stdout != wantRows {
		t.Errorf("loss_reports: got\n%s\nwant\n%s%s", r.stdout, wantRows, r.stderr)
	}
	// A second run: nothing new, nothing twice.
	r = run(t, nil, args...)
	if r.code != 0 {
		t.Fatalf("second run: exit %d: %s", r.code, r.stderr)
	}
	if got := names(); strings.Join(got, " ") != strings.Join(want, " ") {
		t.Errorf("report files after a second run: got %v, want %v", got, want)
	}
	if r := run(t, nil, "--db", db, "sql", "-f", "TSV", q); r.stdout != wantRows {
		t.Errorf("loss_reports after a second run: got\n%s\nwant\n%s", r.stdout, wantRows)
	}
	// --keep 1 keeps the newest period's files.
	if r := run(t, nil, append(args, "--keep", "1")...); r.code != 0 {
		t.Fatalf("run with --keep: exit %d: %s", r.code, r.stderr)
	}
	if got := names(); strings.Join(got, " ") != strings.Join(want[4:], " ") {
		t.Errorf("report files after --keep 1: got %v, want %v", got, want[4:])
	}
}

func TestReportRange(t *testing.T) {
	t.Parallel()
	// baseline.pcap was captured at 17:33:16-17:33:17 UTC, drop-name.pcap at 17:38:05-17:38:36.
	tests := []struct {
		name  string
		args  []string
		hosts string
		code  int
	}{
		{"both", []string{"--since", "2026-12-03 17:30", "--until", "2026-12-03T17:40:00Z"}, "baseline drop-name", 0},
		{"baseline only", []string{"--since", "2026-12-03 17:33", "--until", "2026-12-03 17:34"}, "baseline", 0},
		{"drop-name only", []string{"--since", "2026-12-03 17:34"}, "drop-name", 0},
		{"before both", []string{"--until", "2026-12-03 17:33"}, "", 0},
		{"last and since", []string{"--last", "1h", "--since", "2026-12-03"}, "", 2},
		{"bad time", []string{"--since", "yesterday"}, "", 2},
		{"empty range", []string{"--since", "2026-12-03 18:00", "--until", "2026-12-03 17:00"}, "", 2},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			db := ingested(t, "drop-name.pcap", "baseline.pcap")
			r := run(t, nil, append([]string{"--db", db, "report", "--format", "json"}, tc.args...)...)
			if r.code != tc.code {
				t.Fatalf("exit: got %d, want %d (%s)", r.code, tc.code, r.stderr)
			}
			if tc.code != 0 {
				return
			}
			var rep struct{ Hosts []struct{ Host string } }
			if err := json.Unmarshal([]byte(r.stdout), &rep); err != nil {
				t.Fatal(err)
			}
			var hosts []string
			for _, h := range rep.Hosts {
				hosts = append(hosts, h.Host)
			}
			if got := strings.Join(hosts, " "); got != tc.hosts {
				t.Errorf("hosts: got %q, want %q", got, tc.hosts)
			}
		})
	}
	// HTML to a file, the format told by the file name.
	db := ingested(t, "drop-name.pcap", "baseline.pcap")
	page := filepath.Join(t.TempDir(), "loss.html")
	if r := run(t, nil, "--db", db, "report", "--out", page); r.code != 0 {
		t.Fatalf("html: exit %d: %s", r.code, r.stderr)
	}
	if b, _ := os.ReadFile(page); !bytes.Contains(b, []byte("<title>DNS loss report")) || bytes.Contains(b, []byte("src=\"http")) {
		t.Errorf("html report: got %d bytes without its title, or with an external script", len(b))
	}
}
