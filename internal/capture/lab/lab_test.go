package lab

import (
	"bytes"
	"context"
	"encoding/hex"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// The lab's addresses (only inside its own namespaces).
const (
	clientIP   = "10.53.0.2"
	resolverIP = "10.53.0.1"
	searchDom  = "in.corp.example"
)

// lab is one set of namespaces, named after the test process so that parallel runs do not meet.
type lab struct {
	t          *testing.T
	dir        string
	nsC, nsR   string // client and resolver network namespaces
	ifC, ifR   string // the veth ends
	etcCreated bool
}

// run runs a command and returns its combined output.
func run(name string, args ...string) (string, error) {
	out, err := exec.Command(name, args...).CombinedOutput()
	return strings.TrimSpace(string(out)), err
}

func (l *lab) must(name string, args ...string) string {
	l.t.Helper()
	out, err := run(name, args...)
	if err != nil {
		l.t.Fatalf("%s %s: %v: %s", name, strings.Join(args, " "), err, out)
	}
	return out
}

// in returns args prefixed to run in namespace ns.
func in(ns string, args ...string) []string { return append([]string{"netns", "exec", ns}, args...) }

// newLab builds the namespaces, the veth pair and the client's resolver configuration, and
// starts dnsmasq. Everything is torn down in t.Cleanup, failed test or not.
func newLab(t *testing.T) *lab {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("skipping the live-capture lab: it needs root (network namespaces, AF_PACKET sockets); CI runs it as root")
	}
	for _, c := range []string{"ip", "nft", "dnsmasq", "tcpdump", "ethtool", "getent"} {
		if _, err := exec.LookPath(c); err != nil {
			t.Fatalf("the live-capture lab needs %s: apt-get install iproute2 nftables dnsmasq-base tcpdump ethtool (make test installs them)", c)
		}
	}
	pid := os.Getpid()
	l := &lab{t: t, dir: t.TempDir(),
		nsC: fmt.Sprintf("dnsloss-lab-c-%d", pid), nsR: fmt.Sprintf("dnsloss-lab-r-%d", pid),
		ifC: fmt.Sprintf("dlc%d", pid), ifR: fmt.Sprintf("dlr%d", pid)}
	if out, err := run("ip", "netns", "add", l.nsC); err != nil {
		t.Skipf("skipping the live-capture lab: network namespaces are not available here (ip netns add: %v: %s)", err, out)
	}
	t.Cleanup(func() { run("ip", "netns", "del", l.nsC) })
	l.must("ip", "netns", "add", l.nsR)
	t.Cleanup(func() { run("ip", "netns", "del", l.nsR) })
	l.must("ip", "link", "add", l.ifC, "netns", l.nsC, "type", "veth", "peer", "name", l.ifR, "netns", l.nsR)
	for _, s := range []struct{ ns, ifc, addr string }{{l.nsC, l.ifC, clientIP}, {l.nsR, l.ifR, resolverIP}} {
		l.must("ip", in(s.ns, "ip", "link", "set", "lo", "up")...)
		l.must("ip", in(s.ns, "ip", "addr", "add", s.addr+"/24", "dev", s.ifc)...)
		// veth computes no UDP checksums unless told to: captured packets would look corrupt.
		l.must("ip", in(s.ns, "ethtool", "-K", s.ifc, "tx", "off")...)
		l.must("ip", in(s.ns, "ip", "link", "set", s.ifc, "up")...)
	}
	// `ip netns exec` bind-mounts /etc/netns/NS/* over /etc/*.
	if _, err := os.Stat("/etc/netns"); os.IsNotExist(err) {
		l.etcCreated = true
	}
	etc := filepath.Join("/etc/netns", l.nsC)
	if err := os.MkdirAll(etc, 0o755); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		os.RemoveAll(etc)
		if l.etcCreated {
			os.Remove("/etc/netns")
		}
	})
	files := map[string]string{
		"resolv.conf":   fmt.Sprintf("nameserver %s\nsearch %s\noptions timeout:1 attempts:2\n", resolverIP, searchDom),
		"hosts":         "127.0.0.1\tlocalhost\n::1\tlocalhost\n",
		"nsswitch.conf": "passwd: files\ngroup: files\nhosts: files dns\nservices: files\nprotocols: files\n",
	}
	for name, body := range files {
		if err := os.WriteFile(filepath.Join(etc, name), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	dnsmasq := l.start("dnsmasq", "ip", in(l.nsR, "dnsmasq", "--keep-in-foreground", "--conf-file=/dev/null",
		"--no-resolv", "--no-hosts", "--no-poll", "--user=root", "--group=root",
		"--listen-address="+resolverIP, "--bind-interfaces", "--port=53", "--local=/#/", "--local-ttl=60",
		"--host-record=www.example.com,10.53.0.10,2001:db8::10",
		"--host-record=api.example.com,10.53.0.11",
		"--host-record=mail.example.com,10.53.0.12,2001:db8::12",
		"--host-record=db.in.corp.example,10.53.0.20",
		"--cname=alias.example.com,www.example.com",
		"--pid-file="+filepath.Join(l.dir, "dnsmasq.pid"), "--log-facility="+filepath.Join(l.dir, "dnsmasq.log"))...)
	deadline := time.Now().Add(15 * time.Second)
	for {
		if code, _ := l.lookup("api.example.com"); code == 0 {
			break
		}
		if time.Now().After(deadline) || dnsmasq.exited() {
			t.Fatalf("dnsmasq does not answer in the lab: %s", dnsmasq.output())
		}
		time.Sleep(50 * time.Millisecond)
	}
	return l
}

// lookup runs `getent ahosts name` in the client namespace (glibc's resolver) and returns its
// exit status and output.
func (l *lab) lookup(name string) (int, string) {
	out, err := exec.Command("ip", in(l.nsC, "getent", "ahosts", name)...).CombinedOutput()
	if ee, ok := err.(*exec.ExitError); ok {
		return ee.ExitCode(), string(out)
	}
	if err != nil {
		return -1, err.Error()
	}
	return 0, string(out)
}

// qnameMatch is an nft payload match on the wire-format QNAME, in chunks of at most 16 bytes,
// starting after the UDP (8) and DNS (12) headers.
func qnameMatch(name string) string {
	var wire []byte
	for _, label := range strings.Split(strings.ToLower(strings.TrimSuffix(name, ".")), ".") {
		wire = append(wire, byte(len(label)))
		wire = append(wire, label...)
	}
	wire = append(wire, 0)
	var b strings.Builder
	off := 160
	for len(wire) > 0 {
		n := min(16, len(wire))
		fmt.Fprintf(&b, " @th,%d,%d 0x%s", off, n*8, hex.EncodeToString(wire[:n]))
		off += n * 8
		wire = wire[n:]
	}
	return b.String()
}

// dropQueries makes the resolver's namespace silently drop UDP queries for exactly name.
func (l *lab) dropQueries(name string) {
	rules := fmt.Sprintf(`table inet dnslosslab {
  chain pre { type filter hook prerouting priority raw; policy accept;
    udp dport 53%s counter drop
  }
}
`, qnameMatch(name))
	cmd := exec.Command("ip", in(l.nsR, "nft", "-f", "-")...)
	cmd.Stdin = strings.NewReader(rules)
	if out, err := cmd.CombinedOutput(); err != nil {
		l.t.Fatalf("nft: %v: %s", err, out)
	}
}

// proc is a background process whose output is kept.
type proc struct {
	name string
	cmd  *exec.Cmd
	mu   sync.Mutex
	buf  bytes.Buffer
	done chan struct{}
	err  error
}

func (p *proc) Write(b []byte) (int, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.buf.Write(b)
}

func (p *proc) output() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.buf.String()
}

func (p *proc) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// start starts a process (killed in t.Cleanup if still running).
func (l *lab) start(name, bin string, args ...string) *proc {
	l.t.Helper()
	p := &proc{name: name, cmd: exec.Command(bin, args...), done: make(chan struct{})}
	p.cmd.Stdout, p.cmd.Stderr = p, p
	if err := p.cmd.Start(); err != nil {
		l.t.Fatalf("cannot start %s: %v", name, err)
	}
	go func() {
		p.err = p.cmd.Wait()
		close(p.done)
	}()
	l.t.Cleanup(func() {
		if !p.exited() {
			p.cmd.Process.Kill()
			<-p.done
		}
	})
	return p
}

// waitOutput polls p's output for re until the deadline; it returns the first submatch.
func (l *lab) waitOutput(p *proc, re string, within time.Duration) string {
	l.t.Helper()
	rx := regexp.MustCompile(re)
	deadline := time.Now().Add(within)
	for {
		if m := rx.FindStringSubmatch(p.output()); m != nil {
			if len(m) > 1 {
				return m[1]
			}
			return m[0]
		}
		if p.exited() {
			l.t.Fatalf("%s exited (%v) before printing %q:\n%s", p.name, p.err, re, p.output())
		}
		if time.Now().After(deadline) {
			l.t.Fatalf("%s did not print %q within %s:\n%s", p.name, re, within, p.output())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// stop sends sig to p and waits for it to exit.
func (l *lab) stop(p *proc, sig syscall.Signal, within time.Duration) {
	l.t.Helper()
	p.cmd.Process.Signal(sig)
	select {
	case <-p.done:
	case <-time.After(within):
		l.t.Fatalf("%s did not exit within %s of %v:\n%s", p.name, within, sig, p.output())
	}
}

// httpClient returns a client whose connections are made inside network namespace ns (the
// socket is created on a thread that joined ns; the thread is thrown away afterwards). Its
// timeout only stops a hung request: a query of the lookup views takes the engine about 10 s to
// plan, several times that on a busy 2-CPU machine running other test packages beside the lab.
func httpClient(ns string) *http.Client {
	return &http.Client{Timeout: 5 * time.Minute, Transport: &http.Transport{DialContext: nsDialer(ns), DisableKeepAlives: true}}
}

// nsDialer dials inside network namespace ns.
func nsDialer(ns string) func(ctx context.Context, network, addr string) (net.Conn, error) {
	return func(ctx context.Context, network, addr string) (net.Conn, error) {
		type result struct {
			c   net.Conn
			err error
		}
		ch := make(chan result, 1)
		go func() {
			runtime.LockOSThread() // never unlocked: the thread exits with this goroutine
			f, err := os.Open("/run/netns/" + ns)
			if err != nil {
				ch <- result{nil, err}
				return
			}
			defer f.Close()
			if err := unix.Setns(int(f.Fd()), unix.CLONE_NEWNET); err != nil {
				ch <- result{nil, fmt.Errorf("setns %s: %w", ns, err)}
				return
			}
			c, err := (&net.Dialer{}).DialContext(ctx, network, addr)
			ch <- result{c, err}
		}()
		r := <-ch
		return r.c, r.err
	}
}

// query runs sql on the ClickHouse HTTP interface at addr (in the client namespace) and returns
// the TSV result.
func (l *lab) query(addr, sql string) string {
	l.t.Helper()
	out, err := l.tryQuery(addr, sql)
	if err != nil {
		l.t.Fatalf("query %q: %v", sql, err)
	}
	return out
}

func (l *lab) tryQuery(addr, sql string) (string, error) {
	u := "http://" + addr + "/?default_format=TSV&query=" + url.QueryEscape(sql)
	resp, err := httpClient(l.nsC).Post(u, "text/plain", nil)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return "", err
	}
	if resp.StatusCode != 200 {
		return "", fmt.Errorf("HTTP %d: %s", resp.StatusCode, b)
	}
	return string(b), nil
}
