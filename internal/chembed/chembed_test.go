//go:build !nochdb

package chembed_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/dnsloss/dnsloss/internal/chembed"
	"github.com/dnsloss/dnsloss/internal/chstore"
	"github.com/dnsloss/dnsloss/internal/dnsrow"
	"github.com/dnsloss/dnsloss/schema"
)

// One engine per process: every test here shares it.
var store *chembed.Store

func TestMain(m *testing.M) {
	switch os.Getenv("CHEMBED_CHILD") {
	case "panic":
		s, err := chembed.Open(os.Getenv("CHEMBED_DIR"))
		if err != nil {
			os.Stderr.WriteString(err.Error())
			os.Exit(7)
		}
		_ = s
		var p *struct{ x int }
		println(p.x) // a Go nil-pointer dereference after the engine started
		os.Exit(0)
	case "open":
		_, err := chembed.Open(os.Getenv("CHEMBED_DIR"))
		if err != nil {
			os.Stderr.WriteString(err.Error())
			os.Exit(7)
		}
		os.Exit(0)
	}
	dir, err := os.MkdirTemp("", "chembed-test-")
	if err != nil {
		panic(err)
	}
	store, err = chembed.Open(dir)
	if err != nil {
		panic(err)
	}
	code := m.Run()
	store.Close()
	os.RemoveAll(dir)
	os.Exit(code)
}

func child(t *testing.T, mode, dir string) (string, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute) // a hang is the failure mode
	defer cancel()
	cmd := exec.CommandContext(ctx, os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), "CHEMBED_CHILD="+mode, "CHEMBED_DIR="+dir)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	err := cmd.Run()
	if ctx.Err() != nil {
		t.Fatalf("child %s hung (killed after 2 minutes); stderr:\n%s", mode, stderr.String())
	}
	return stderr.String(), err
}

func TestGoPanicStillCrashesWithStackTrace(t *testing.T) {
	stderr, err := child(t, "panic", t.TempDir())
	var exit *exec.ExitError
	if !errors.As(err, &exit) || exit.ExitCode() != 2 {
		t.Fatalf("got exit %v, want exit status 2 (Go's panic exit); stderr:\n%s", err, stderr)
	}
	for _, want := range []string{"panic: runtime error: invalid memory address or nil pointer dereference", "goroutine 1", "chembed_test.TestMain"} {
		if !strings.Contains(stderr, want) {
			t.Errorf("stderr lacks %q:\n%s", want, stderr)
		}
	}
}

func TestSecondProcessGetsClearError(t *testing.T) {
	stderr, err := child(t, "open", store.Dir())
	if err == nil {
		t.Fatal("a second process opened the same data directory")
	}
	for _, want := range []string{"is in use by another process", "pid " + strconv.Itoa(os.Getpid()), store.Dir(), "stop it or use another --db"} {
		if !strings.Contains(stderr, want) {
			t.Errorf("error %q lacks %q", stderr, want)
		}
	}
	// The holder is not `analyzer serve`, so there is nothing to query through.
	if strings.Contains(stderr, "--clickhouse") {
		t.Errorf("error %q suggests --clickhouse, but the holder serves nothing", stderr)
	}
}

func TestParamsAreNotSpliced(t *testing.T) {
	ctx := context.Background()
	evil := `x'); DROP TABLE t; --\` + "\x00\n"
	out, err := store.Query(ctx, "SELECT {s:String} AS s, length({s:String})", chstore.Params{"s": evil}, "TSV")
	if err != nil {
		t.Fatal(err)
	}
	// TSV escapes \ ' \0 and newline; the length must be the byte length of the original.
	want := "x\\'); DROP TABLE t; --\\\\\\0\\n\t" + strconv.Itoa(len(evil)) + "\n"
	if string(out) != want {
		t.Errorf("got %q, want %q", out, want)
	}
}

func TestNativeInsertRoundTrip(t *testing.T) {
	ctx := context.Background()
	if _, err := schema.Apply(ctx, store); err != nil {
		t.Fatal(err)
	}
	b := dnsrow.NewBatch()
	m := dnsrow.Message{Host: []byte("h1"), TS: 1_700_000_000_123_456_789, Transport: dnsrow.TransportUDP,
		QName: []byte("WwW.Example.com"), QType: 1, QClass: 1, SrcPort: 5353, DstPort: 53, EDNSOptions: []uint16{10}}
	m.SrcIP = [16]byte{10: 0xff, 11: 0xff, 12: 10, 13: 0, 14: 0, 15: 2}
	for i := 0; i < 3; i++ {
		m.ID = uint16(i)
		b.Append(&m)
	}
	err := store.InsertNative(ctx, dnsrow.Table, b.Columns(), func(w io.Writer) error {
		buf, err := b.EncodeNative(nil)
		if err != nil {
			return err
		}
		_, err = w.Write(buf)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	out, err := store.Query(ctx, "SELECT count(), min(id), max(id), any(qname_key), any(toString(src_ip)), any(ts), any(edns_options) FROM dns_messages WHERE host = {h:String}", chstore.Params{"h": "h1"}, "TSV")
	if err != nil {
		t.Fatal(err)
	}
	want := "3\t0\t2\twww.example.com\t::ffff:10.0.0.2\t2023-11-14 22:13:20.123456789\t[10]\n"
	if string(out) != want {
		t.Errorf("got %q, want %q", out, want)
	}
}

func TestInsertIntoMissingTableFailsWithoutHanging(t *testing.T) {
	err := store.InsertNative(context.Background(), "no_such_table", "(a)", func(w io.Writer) error {
		_, err := w.Write(bytes.Repeat([]byte{0}, 1<<20))
		return err
	})
	if err == nil || !strings.Contains(err.Error(), "no_such_table") {
		t.Fatalf("got %v, want an error naming no_such_table", err)
	}
}

func TestUnwritableDirectory(t *testing.T) {
	// root writes anywhere; a path under a regular file cannot be created by anyone.
	f := filepath.Join(t.TempDir(), "file")
	os.WriteFile(f, nil, 0o644)
	stderr, err := child(t, "open", filepath.Join(f, "db"))
	if err == nil || !strings.Contains(stderr, "cannot create data directory") {
		t.Fatalf("got %v %q, want a 'cannot create data directory' error", err, stderr)
	}
}
