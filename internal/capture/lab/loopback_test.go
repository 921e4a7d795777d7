package lab

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"reflect"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/dnsloss/dnsloss/internal/capture"
	"github.com/dnsloss/dnsloss/internal/dnsrow"
	"github.com/dnsloss/dnsloss/internal/sink"
)

// loopbackChildEnv, when set ("SOURCE IFACE N M"), makes TestLoopbackCapturedOnce the child that
// runs inside the test's network namespace: it captures, sends the queries, and prints its counts.
const loopbackChildEnv = "DNSLOSS_LOOPBACK_CHILD"

// loopbackCounts is what the child prints on a line of its own after loopbackResultPrefix.
type loopbackCounts struct {
	Rows     map[string]int // dns_messages rows by "ZONE KIND": loopback or veth, query or response
	Packets  uint64         // packets the collector received
	Answered int            // queries the test's resolver answered
}

const loopbackResultPrefix = "LOOPBACK-RESULT "

// The veth pair of the loopback test's namespace.
const (
	vethLocalIP = "10.53.99.1"
	vethPeerIP  = "10.53.99.2"
	vethPeerMAC = "02:00:00:00:53:02"
)

// TestLoopbackCapturedOnce: on a loopback interface the kernel hands a packet socket every packet
// twice, once as it leaves (PACKET_OUTGOING) and once as it arrives (PACKET_HOST). The capture
// must record it once, as libpcap does, or every query looks like a retry and every loopback
// resolver's traffic doubles. N queries to a resolver on 127.0.0.1, inside a network namespace
// of the test's own, must give exactly N query rows and N response rows, with each source, on lo
// and on any. On any, the outgoing packets of other interfaces must still be kept: M queries sent
// out of one end of a veth pair (both ends in the namespace) must be recorded 2M times, once as
// they leave that end and once as they arrive at the other.
func TestLoopbackCapturedOnce(t *testing.T) {
	if spec := os.Getenv(loopbackChildEnv); spec != "" {
		loopbackChild(t, spec)
		return
	}
	if os.Geteuid() != 0 {
		t.Skip("skipping the loopback capture test: it needs root (network namespaces, AF_PACKET sockets); CI runs it as root")
	}
	if _, err := exec.LookPath("ip"); err != nil {
		t.Fatal("the loopback capture test needs ip: apt-get install iproute2 (make test installs it)")
	}
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	ns := fmt.Sprintf("dnsloss-lo-%d", os.Getpid())
	if out, err := run("ip", "netns", "add", ns); err != nil {
		t.Skipf("skipping the loopback capture test: network namespaces are not available here (ip netns add: %v: %s)", err, out)
	}
	t.Cleanup(func() { run("ip", "netns", "del", ns) })
	// lo, and a veth pair whose far end has the MAC address that the near end's static neighbour
	// entry gives the veth peer address, so that queries to it leave without ARP.
	vethA, vethB := fmt.Sprintf("dloa%d", os.Getpid()), fmt.Sprintf("dlob%d", os.Getpid())
	for _, args := range [][]string{
		{"link", "set", "lo", "up"},
		{"link", "add", vethA, "type", "veth", "peer", "name", vethB},
		{"link", "set", vethB, "address", vethPeerMAC},
		{"addr", "add", vethLocalIP + "/24", "dev", vethA},
		{"link", "set", vethA, "up"},
		{"link", "set", vethB, "up"},
		{"neigh", "add", vethPeerIP, "lladdr", vethPeerMAC, "dev", vethA},
	} {
		if out, err := run("ip", append([]string{"-n", ns}, args...)...); err != nil {
			t.Fatalf("ip -n %s %s: %v: %s", ns, strings.Join(args, " "), err, out)
		}
	}
	const n, m = 200, 20
	for _, source := range []string{capture.SourceAfpacket, capture.SourcePcap} {
		for _, ifc := range []string{"lo", "any"} {
			t.Run(source+"/"+ifc, func(t *testing.T) {
				cmd := exec.Command("ip", in(ns, self, "-test.run=^TestLoopbackCapturedOnce$", "-test.v", "-test.count=1")...)
				cmd.Env = append(os.Environ(), fmt.Sprintf("%s=%s %s %d %d", loopbackChildEnv, source, ifc, n, m))
				out, err := cmd.CombinedOutput()
				if err != nil {
					t.Fatalf("the capture inside namespace %s failed: %v\n%s", ns, err, out)
				}
				var got loopbackCounts
				found := false
				for _, ln := range strings.Split(string(out), "\n") {
					if rest, ok := strings.CutPrefix(ln, loopbackResultPrefix); ok {
						if err := json.Unmarshal([]byte(rest), &got); err != nil {
							t.Fatalf("cannot read the child's result %q: %v", rest, err)
						}
						found = true
					}
				}
				if !found {
					t.Fatalf("the child printed no result:\n%s", out)
				}
				if got.Answered != n {
					t.Fatalf("the resolver answered %d of %d queries; the test's traffic did not flow:\n%s", got.Answered, n, out)
				}
				want := map[string]int{"loopback query": n, "loopback response": n}
				if ifc == "any" {
					want["veth query"] = 2 * m
				}
				if !reflect.DeepEqual(got.Rows, want) {
					t.Errorf("%s on %s: got rows %v (%d packets), want %v: a loopback packet must be recorded once, "+
						"not as it leaves and again as it arrives, and other interfaces' packets as before",
						source, ifc, got.Rows, got.Packets, want)
				}
			})
		}
	}
}

// memSink keeps the blocks it is given.
type memSink struct {
	mu     sync.Mutex
	blocks []*sink.Block
}

func (s *memSink) Submit(b *sink.Block) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.blocks = append(s.blocks, b)
}

func (s *memSink) TakeDropped() map[string]uint64 { return nil }

// loopbackChild runs inside the namespace: a resolver on 127.0.0.1:53 that answers every query
// (its header with QR set), a capture on the interface spec names, n queries to the resolver, each
// waited for, and m queries out of the veth that nothing answers.
func loopbackChild(t *testing.T, spec string) {
	f := strings.Fields(spec)
	if len(f) != 4 {
		t.Fatalf("%s=%q: want SOURCE IFACE N M", loopbackChildEnv, spec)
	}
	source, ifc := f[0], f[1]
	n, err1 := strconv.Atoi(f[2])
	m, err2 := strconv.Atoi(f[3])
	if err := errors.Join(err1, err2); err != nil {
		t.Fatalf("%s=%q: %v", loopbackChildEnv, spec, err)
	}
	srv, err := net.ListenPacket("udp4", "127.0.0.1:53")
	if err != nil {
		t.Fatalf("cannot listen on 127.0.0.1:53 (is this the test's namespace?): %v", err)
	}
	defer srv.Close()
	go func() {
		buf := make([]byte, 512)
		for {
			k, addr, err := srv.ReadFrom(buf)
			if err != nil {
				return
			}
			if k < 12 {
				continue
			}
			buf[2] |= 0x80 // QR
			srv.WriteTo(buf[:k], addr)
		}
	}()

	ms := &memSink{}
	c, err := capture.New(capture.Config{Interfaces: []string{ifc}, Source: source, Workers: 2, RingBytes: 8 << 20,
		Host: "loopbacktest", BatchAge: 100 * time.Millisecond, StatsInterval: time.Hour, Sink: ms})
	if err != nil {
		t.Fatalf("cannot open capture on %s with %s: %v", ifc, source, err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	runErr := make(chan error, 1)
	go func() { runErr <- c.Run(ctx) }()

	cl, err := net.Dial("udp4", "127.0.0.1:53")
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	answered := 0
	resp := make([]byte, 512)
	for i := 0; i < n; i++ {
		q := dnsQuery(uint16(i+1), fmt.Sprintf("q%d.loopback.example", i))
		if _, err := cl.Write(q); err != nil {
			t.Fatalf("query %d: %v", i, err)
		}
		cl.SetReadDeadline(time.Now().Add(2 * time.Second))
		if k, err := cl.Read(resp); err == nil && k == len(q) && binary.BigEndian.Uint16(resp) == uint16(i+1) {
			answered++
		}
	}
	veth, err := net.Dial("udp4", net.JoinHostPort(vethPeerIP, "53"))
	if err != nil {
		t.Fatal(err)
	}
	defer veth.Close()
	for i := 0; i < m; i++ {
		if _, err := veth.Write(dnsQuery(uint16(i+1), fmt.Sprintf("q%d.veth.example", i))); err != nil {
			t.Fatalf("query %d out of the veth: %v", i, err)
		}
	}
	time.Sleep(300 * time.Millisecond) // past the ring's block timeout
	cancel()
	if err := <-runErr; err != nil {
		t.Fatalf("capture: %v", err)
	}
	got := loopbackCounts{Rows: map[string]int{}, Answered: answered}
	for _, st := range c.Stats() {
		got.Packets += st.Packets
	}
	ms.mu.Lock()
	defer ms.mu.Unlock()
	for _, b := range ms.blocks {
		if b.Table != dnsrow.Table {
			continue
		}
		cols, err := sink.DecodeNative(b.Native)
		if err != nil {
			t.Fatalf("cannot decode a block: %v", err)
		}
		var qr []uint8
		var qname []string
		for _, c := range cols {
			switch c.Name {
			case "qr":
				qr, _ = c.Values.([]uint8)
			case "qname":
				qname, _ = c.Values.([]string)
			}
		}
		if len(qr) != b.Rows || len(qname) != b.Rows {
			t.Fatalf("a block of %d rows with %d qr and %d qname values", b.Rows, len(qr), len(qname))
		}
		for r := range qr {
			key := "other"
			if strings.HasSuffix(qname[r], ".loopback.example") {
				key = "loopback"
			} else if strings.HasSuffix(qname[r], ".veth.example") {
				key = "veth"
			}
			if qr[r] == 0 {
				key += " query"
			} else {
				key += " response"
			}
			got.Rows[key]++
		}
	}
	js, _ := json.Marshal(got)
	fmt.Printf("\n%s%s\n", loopbackResultPrefix, js)
}

// dnsQuery is a minimal DNS query for name, type A, class IN.
func dnsQuery(id uint16, name string) []byte {
	q := binary.BigEndian.AppendUint16(nil, id)
	q = append(q, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0) // RD; one question
	for _, label := range strings.Split(name, ".") {
		q = append(q, byte(len(label)))
		q = append(q, label...)
	}
	return append(q, 0, 0, 1, 0, 1)
}
