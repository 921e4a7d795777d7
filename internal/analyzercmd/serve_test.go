package analyzercmd_test

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// server is a running `analyzer serve`.
type server struct {
	cmd  *exec.Cmd
	addr string
	mu   sync.Mutex
	log  bytes.Buffer
	done chan struct{}
}

func (s *server) stderr() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.log.String()
}

// startServe starts `analyzer --db db serve` on a free loopback port and returns once it
// answers /ping.
func startServe(t *testing.T, db string, env ...string) *server {
	t.Helper()
	s := &server{cmd: exec.Command(analyzer, "--db", db, "serve", "--listen", "127.0.0.1:0"), done: make(chan struct{})}
	s.cmd.Env = append(os.Environ(), env...)
	pipe, err := s.cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := s.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	addrc := make(chan string, 1)
	go func() {
		defer close(s.done)
		sc := bufio.NewScanner(pipe)
		for sc.Scan() {
			line := sc.Text()
			s.mu.Lock()
			s.log.WriteString(line + "\n")
			s.mu.Unlock()
			if rest, ok := strings.CutPrefix(line, "analyzer serve: listening on http://"); ok {
				addr, _, _ := strings.Cut(rest, " ")
				addrc <- addr
			}
		}
	}()
	t.Cleanup(func() {
		if s.cmd.ProcessState == nil {
			s.cmd.Process.Kill()
			s.cmd.Wait()
		}
	})
	deadline := time.After(60 * time.Second)
	select {
	case s.addr = <-addrc:
	case <-s.done:
		t.Fatalf("analyzer serve exited before listening:\n%s", s.stderr())
	case <-deadline:
		t.Fatalf("analyzer serve did not say where it listens within 60 s:\n%s", s.stderr())
	}
	client := &http.Client{Timeout: time.Second}
	for stop := time.Now().Add(60 * time.Second); ; {
		resp, err := client.Get("http://" + s.addr + "/ping")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return s
			}
		}
		if time.Now().After(stop) {
			t.Fatalf("analyzer serve at %s did not answer /ping: %v\n%s", s.addr, err, s.stderr())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// stop sends SIGTERM and checks that serve stops cleanly.
func (s *server) stop(t *testing.T) {
	t.Helper()
	if err := s.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	err := s.cmd.Wait()
	<-s.done
	if err != nil {
		t.Fatalf("analyzer serve after SIGTERM: %v\n%s", err, s.stderr())
	}
	if !strings.Contains(s.stderr(), "analyzer serve: stopped") {
		t.Errorf("stderr: got %q, want it to say it stopped", s.stderr())
	}
}

// TestServeReportMatchesEmbedded: the commands give through serve what they give on the embedded
// engine (the lab captures analyzed once, as TestLabCaptures reads them).
func TestServeReportMatchesEmbedded(t *testing.T) {
	t.Parallel()
	files := labFiles
	local, _ := labAnalyzed(t)
	if local.code != 0 || !strings.Contains(local.stdout, "drop-name") {
		t.Fatalf("embedded analyze: exit %d: %s%s", local.code, local.stdout, local.stderr)
	}

	db := t.TempDir()
	srv := startServe(t, db, "DNSLOSS_SERVE_PASSWORD=s3cret")
	url := "http://" + srv.addr
	auth := []string{"DNSLOSS_CLICKHOUSE_PASSWORD=s3cret"}
	steps := []struct {
		name string
		args []string
	}{
		{"analyze", append([]string{"--clickhouse", url, "analyze", "--format", "json", "--quiet"}, files...)},
		{"report", []string{"--clickhouse", url, "report", "--format", "json"}},
		// The same files again, replacing their rows: identical rows must not be dropped as duplicates.
		{"analyze --replace", append([]string{"--clickhouse", url, "analyze", "--replace", "--format", "json", "--quiet"}, files...)},
	}
	for _, st := range steps {
		t.Run(st.name, func(t *testing.T) {
			r := run(t, auth, st.args...)
			if r.code != 0 {
				t.Fatalf("exit %d: %s", r.code, r.stderr)
			}
			if r.stdout != local.stdout {
				t.Errorf("report through serve:\n%s\nwant the embedded one:\n%s", r.stdout, local.stdout)
			}
		})
	}
	t.Run("sql", func(t *testing.T) {
		r := run(t, auth, "--clickhouse", url, "sql", "--format", "TSV", "--param", "h=drop-name", "SELECT count() FROM dns_messages WHERE host = {h:String}")
		if r.code != 0 || r.stdout != "26\n" {
			t.Errorf("got exit %d, %q, want 0, \"26\\n\" (%s)", r.code, r.stdout, r.stderr)
		}
	})
	t.Run("wrong password", func(t *testing.T) {
		r := run(t, []string{"DNSLOSS_CLICKHOUSE_PASSWORD=wrong"}, "--clickhouse", url, "report")
		if r.code == 0 || !strings.Contains(r.stderr, "516") {
			t.Errorf("got exit %d, %q, want a failure with code 516", r.code, r.stderr)
		}
	})
	t.Run("password in URL", func(t *testing.T) {
		r := run(t, nil, "--clickhouse", "http://default:s3cret@"+srv.addr, "report")
		if r.code == 0 || !strings.Contains(r.stderr, "DNSLOSS_CLICKHOUSE_PASSWORD") || strings.Contains(r.stderr, "s3cret") {
			t.Errorf("got exit %d, %q, want a failure naming DNSLOSS_CLICKHOUSE_PASSWORD and not showing the password", r.code, r.stderr)
		}
	})
	t.Run("directory is held", func(t *testing.T) {
		r := run(t, nil, "--db", db, "report")
		if r.code == 0 || !strings.Contains(r.stderr, "in use") {
			t.Errorf("got exit %d, %q, want the directory-in-use error", r.code, r.stderr)
		}
	})
	if strings.Contains(srv.stderr(), "s3cret") {
		t.Errorf("serve logged the password:\n%s", srv.stderr())
	}
	srv.stop(t)

	// Started again on the same directory, it serves what was stored.
	srv = startServe(t, db)
	r := run(t, nil, "--clickhouse", "http://"+srv.addr, "report", "--format", "json")
	if r.code != 0 || r.stdout != local.stdout {
		t.Errorf("report after a restart: exit %d\n%s\nwant:\n%s%s", r.code, r.stdout, local.stdout, r.stderr)
	}
	srv.stop(t)
}

// TestServeFinishesInsertOnSIGTERM stops serve while an insert is streaming its data: the insert
// completes, then serve exits, and every row is there when it starts again.
func TestServeFinishesInsertOnSIGTERM(t *testing.T) {
	t.Parallel()
	db := t.TempDir()
	srv := startServe(t, db)
	pr, pw := io.Pipe()
	req, err := http.NewRequest("POST", "http://"+srv.addr+"/?query="+url.QueryEscape("INSERT INTO dnsloss_settings (name, value) FORMAT TSV"), pr)
	if err != nil {
		t.Fatal(err)
	}
	type result struct {
		status int
		body   string
		err    error
	}
	done := make(chan result, 1)
	go func() {
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			done <- result{err: err}
			return
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		done <- result{status: resp.StatusCode, body: string(b)}
	}()
	const rows = 20000
	for i := range rows / 2 {
		fmt.Fprintf(pw, "n%d\t%d\n", i, i)
	}
	if err := srv.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	for i := rows / 2; i < rows; i++ {
		fmt.Fprintf(pw, "n%d\t%d\n", i, i)
	}
	pw.Close()
	r := <-done
	if r.err != nil || r.status != http.StatusOK {
		t.Fatalf("insert: got %d %q %v, want 200", r.status, r.body, r.err)
	}
	if err := srv.cmd.Wait(); err != nil {
		t.Fatalf("serve after SIGTERM: %v\n%s", err, srv.stderr())
	}
	<-srv.done

	srv = startServe(t, db)
	got := run(t, nil, "--clickhouse", "http://"+srv.addr, "sql", "--format", "TSV", "SELECT count(), sum(value) FROM dnsloss_settings")
	if want := fmt.Sprintf("%d\t%d\n", rows, rows*(rows-1)/2); got.stdout != want {
		t.Errorf("after restart: got %q, want %q (%s)", got.stdout, want, got.stderr)
	}
	srv.stop(t)
}
