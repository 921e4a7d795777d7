package analyzercmd_test

import (
	"bytes"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// lockedBuffer is a bytes.Buffer that a process writes while the test reads it.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// TestInterruptTwice: a statement running in the embedded engine cannot be cancelled, so the
// first interrupt says the command stops once it returns, and a second one quits at once (exit
// 130). The statement would run for hours.
func TestInterruptTwice(t *testing.T) {
	t.Parallel()
	cmd := exec.Command(analyzer, "--db", t.TempDir(), "sql", "SELECT sum(cityHash64(number)) FROM numbers(1000000000000)")
	var stderr lockedBuffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	t.Cleanup(func() { cmd.Process.Kill() })
	time.Sleep(3 * time.Second) // the engine starts and the statement runs
	if err := cmd.Process.Signal(syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	const said = "interrupt again to quit now"
	for wait := time.Now().Add(60 * time.Second); !strings.Contains(stderr.String(), said); time.Sleep(50 * time.Millisecond) {
		if time.Now().After(wait) {
			t.Fatalf("after one interrupt, stderr %q does not say %q", stderr.String(), said)
		}
	}
	if err := cmd.Process.Signal(syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-done:
		if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 130 {
			t.Errorf("after two interrupts: %v, want exit 130\n%s", err, stderr.String())
		}
	case <-time.After(60 * time.Second):
		t.Fatalf("still running 60 s after the second interrupt\n%s", stderr.String())
	}
}
