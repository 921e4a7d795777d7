package capture

import (
	"errors"
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/google/gopacket"
	"github.com/google/gopacket/afpacket"
	"github.com/google/gopacket/layers"
	"github.com/google/gopacket/pcap"
	"golang.org/x/net/bpf"

	"github.com/dnsloss/dnsloss/internal/dnswire"
)

// errTimeout is what handle.read returns when no packet came within the poll timeout.
var errTimeout = errors.New("capture: read timeout")

// handle is one capture socket (one fanout member, or the one libpcap handle of an interface).
type handle interface {
	// read returns the next packet; data is valid until the next call.
	read() (data []byte, ci gopacket.CaptureInfo, err error)
	// kernelStats returns the kernel's cumulative counters: packets that reached the socket's
	// filter, and packets dropped because the ring was full.
	kernelStats() (received, dropped uint64, err error)
	close()
}

const (
	pollTimeout  = 100 * time.Millisecond
	blockTimeout = 50 * time.Millisecond // TPACKET_V3: a partly filled block is handed over after this
)

// DefaultFilter is the BPF filter for DNS on ports: UDP and TCP on those ports, and every IP
// fragment after the first (they carry no ports; the first one matches on its UDP header).
func DefaultFilter(ports []uint16) string {
	if len(ports) == 0 {
		ports = []uint16{53}
	}
	ps := make([]string, len(ports))
	for i, p := range ports {
		ps[i] = "port " + strconv.Itoa(int(p))
	}
	return "((udp or tcp) and (" + strings.Join(ps, " or ") + ")) or (ip[6:2] & 0x1fff != 0) or (ip6[6] == 44)"
}

// linkInfo is what the capture needs to know about an interface.
type linkInfo struct {
	name     string
	index    int
	mac      net.HardwareAddr
	linkType uint16 // dnswire.LinkType*
	loopback bool
}

// ARPHRD_* device types (include/uapi/linux/if_arp.h).
const (
	arphrdEther    = 1
	arphrdLoopback = 772
	arphrdNone     = 65534 // tun, wireguard
	arphrdIPIP     = 768
	arphrdTunnel6  = 769
	arphrdSIT      = 776
	arphrdIPGRE    = 778
)

// lookupLink describes the interface named name (or with index idx when name is "").
func lookupLink(name string, idx int) (linkInfo, error) {
	var ifc *net.Interface
	var err error
	if name != "" {
		ifc, err = net.InterfaceByName(name)
	} else {
		ifc, err = net.InterfaceByIndex(idx)
	}
	if err != nil {
		if name != "" {
			return linkInfo{}, fmt.Errorf("no network interface %q (see `ip link`): %w", name, err)
		}
		return linkInfo{}, fmt.Errorf("no network interface with index %d: %w", idx, err)
	}
	li := linkInfo{name: ifc.Name, index: ifc.Index, mac: ifc.HardwareAddr, linkType: dnswire.LinkTypeEthernet,
		loopback: ifc.Flags&net.FlagLoopback != 0}
	b, err := os.ReadFile("/sys/class/net/" + ifc.Name + "/type")
	if err == nil {
		if t, err := strconv.Atoi(strings.TrimSpace(string(b))); err == nil {
			switch t {
			case arphrdEther, arphrdLoopback:
				li.linkType = dnswire.LinkTypeEthernet
			case arphrdNone, arphrdIPIP, arphrdTunnel6, arphrdSIT, arphrdIPGRE:
				li.linkType = dnswire.LinkTypeRaw
			default:
				li.linkType = 0xffff // not decoded; counted as unsupported
			}
		}
	}
	return li, nil
}

// compileBPF compiles a tcpdump filter expression for link type lt with libpcap.
func compileBPF(lt uint16, snaplen int, expr string) ([]bpf.RawInstruction, error) {
	plt := layers.LinkTypeEthernet
	if lt == dnswire.LinkTypeRaw {
		plt = layers.LinkTypeRaw
	}
	ins, err := pcap.CompileBPFFilter(plt, snaplen, expr)
	if err != nil {
		return nil, fmt.Errorf("cannot compile capture filter %q: %w", expr, err)
	}
	raw := make([]bpf.RawInstruction, len(ins))
	for i, in := range ins {
		raw[i] = bpf.RawInstruction{Op: in.Code, Jt: in.Jt, Jf: in.Jf, K: in.K}
	}
	return raw, nil
}

// packetOutgoing is PACKET_OUTGOING, the packet type (sll_pkttype, skb->pkt_type) of a packet a
// packet socket sees as it leaves this host (include/uapi/linux/if_packet.h).
const packetOutgoing = 4

// loopbackIndexes returns the indexes of the loopback interfaces, for skipOutgoingLoopback on a
// socket that captures on every interface.
func loopbackIndexes() []int {
	ifs, err := net.Interfaces()
	if err != nil {
		return nil
	}
	var idx []int
	for _, ifc := range ifs {
		if ifc.Flags&net.FlagLoopback != 0 {
			idx = append(idx, ifc.Index)
		}
	}
	return idx
}

// skipOutgoingLoopback puts in front of filter a test that refuses, in the kernel, the outgoing
// copy of a loopback packet: a packet socket is handed every packet sent on a loopback interface
// twice, once as it leaves (PACKET_OUTGOING) and once as it comes back in (PACKET_HOST), and
// recording both would double every query and response and make each query look retried.
// libpcap does the same in user space (pcap-linux.c skips PACKET_OUTGOING on the loopback
// ifindex). The copy refused is the same packet as the one kept, not a packet lost, so it is
// counted nowhere: not as a drop, and not in the socket's packet counter either (the kernel
// counts only what passes the filter), which thus agrees with the rows.
//
// allLoopback says every packet the socket sees is on a loopback interface (it is bound to one);
// otherwise only outgoing packets on the interfaces with loIndexes are refused. The rest goes to
// filter with the accumulator reset (as the kernel starts a filter), or is accepted whole when
// filter is empty.
func skipOutgoingLoopback(filter []bpf.RawInstruction, allLoopback bool, loIndexes []int) ([]bpf.RawInstruction, error) {
	if !allLoopback && len(loIndexes) == 0 {
		return filter, nil
	}
	var prog []bpf.Instruction
	if allLoopback {
		prog = []bpf.Instruction{
			bpf.LoadExtension{Num: bpf.ExtType},
			bpf.JumpIf{Cond: bpf.JumpNotEqual, Val: packetOutgoing, SkipTrue: 1},
			bpf.RetConstant{Val: 0},
		}
	} else {
		// ld pkttype; jne OUTGOING → keep; ld ifindex; jeq lo1 → drop; jeq lo2 → drop; ...; ja keep; drop: ret 0; keep:
		n := len(loIndexes)
		prog = []bpf.Instruction{
			bpf.LoadExtension{Num: bpf.ExtType},
			bpf.JumpIf{Cond: bpf.JumpNotEqual, Val: packetOutgoing, SkipTrue: uint8(n + 3)},
			bpf.LoadExtension{Num: bpf.ExtInterfaceIndex},
		}
		for i, idx := range loIndexes {
			prog = append(prog, bpf.JumpIf{Cond: bpf.JumpEqual, Val: uint32(idx), SkipTrue: uint8(n - i)})
		}
		prog = append(prog, bpf.Jump{Skip: 1}, bpf.RetConstant{Val: 0})
	}
	prog = append(prog, bpf.LoadConstant{Dst: bpf.RegA, Val: 0})
	if len(filter) == 0 {
		prog = append(prog, bpf.RetConstant{Val: 0x40000})
	}
	raw, err := bpf.Assemble(prog)
	if err != nil {
		return nil, fmt.Errorf("cannot assemble the loopback filter: %w", err)
	}
	return append(raw, filter...), nil
}

// permissionHint turns "operation not permitted" into advice.
func permissionHint(err error) error {
	if errors.Is(err, syscall.EPERM) || errors.Is(err, syscall.EACCES) || strings.Contains(err.Error(), "not permitted") {
		return fmt.Errorf("%w (live capture needs CAP_NET_RAW, and CAP_NET_ADMIN for fanout: run as root, "+
			"or `setcap cap_net_raw,cap_net_admin+eip collector`, or AmbientCapabilities= in the systemd unit)", err)
	}
	return err
}

// afpacketHandle is one TPACKET_V3 ring.
type afpacketHandle struct{ tp *afpacket.TPacket }

type afpacketOptions struct {
	iface      string // "" for every interface
	blockSize  int
	numBlocks  int
	filter     []bpf.RawInstruction
	fanoutID   uint16
	fanout     bool
	blockTimeo time.Duration
}

func openAfpacket(o afpacketOptions) (*afpacketHandle, error) {
	opts := []any{
		afpacket.TPacketVersion3,
		afpacket.OptFrameSize(afpacket.DefaultFrameSize),
		afpacket.OptBlockSize(o.blockSize),
		afpacket.OptNumBlocks(o.numBlocks),
		afpacket.OptPollTimeout(pollTimeout),
		afpacket.OptBlockTimeout(o.blockTimeo),
	}
	if o.iface != "" {
		opts = append(opts, afpacket.OptInterface(o.iface))
	}
	tp, err := afpacket.NewTPacket(opts...)
	if err != nil {
		return nil, permissionHint(fmt.Errorf("cannot open an AF_PACKET ring on %s: %w", ifaceLabel(o.iface), err))
	}
	if len(o.filter) > 0 {
		if err := tp.SetBPF(o.filter); err != nil {
			tp.Close()
			return nil, fmt.Errorf("cannot attach the capture filter on %s: %w", ifaceLabel(o.iface), err)
		}
	}
	if o.fanout {
		// Hash on the flow (addresses and ports), after the kernel reassembles IP fragments, so
		// that a query, its retries, its response and its fragments reach the same worker.
		if err := tp.SetFanout(afpacket.FanoutHash|afpacket.FanoutHashWithDefrag, o.fanoutID); err != nil {
			tp.Close()
			return nil, permissionHint(fmt.Errorf("cannot join fanout group %d on %s: %w", o.fanoutID, ifaceLabel(o.iface), err))
		}
	}
	return &afpacketHandle{tp: tp}, nil
}

func ifaceLabel(iface string) string {
	if iface == "" {
		return "all interfaces"
	}
	return "interface " + iface
}

func (h *afpacketHandle) read() ([]byte, gopacket.CaptureInfo, error) {
	data, ci, err := h.tp.ZeroCopyReadPacketData()
	if err == afpacket.ErrTimeout {
		return nil, ci, errTimeout
	}
	return data, ci, err
}

func (h *afpacketHandle) kernelStats() (uint64, uint64, error) {
	_, v3, err := h.tp.SocketStats()
	if err != nil {
		return 0, 0, err
	}
	// tp_packets counts every packet that passed the filter, those dropped included.
	return uint64(v3.Packets()), uint64(v3.Drops()), nil
}

func (h *afpacketHandle) close() { h.tp.Close() }

// pcapHandle is a libpcap handle.
type pcapHandle struct {
	h *pcap.Handle
}

func openPcap(iface string, snaplen, bufBytes int, filter string) (*pcapHandle, uint16, error) {
	in, err := pcap.NewInactiveHandle(iface)
	if err != nil {
		return nil, 0, fmt.Errorf("cannot open %s with libpcap: %w", iface, err)
	}
	defer in.CleanUp()
	for _, err := range []error{in.SetSnapLen(snaplen), in.SetPromisc(false), in.SetTimeout(pollTimeout), in.SetBufferSize(bufBytes)} {
		if err != nil {
			return nil, 0, fmt.Errorf("cannot set up libpcap on %s: %w", iface, err)
		}
	}
	h, err := in.Activate()
	if err != nil {
		return nil, 0, permissionHint(fmt.Errorf("cannot start libpcap capture on %s: %w", iface, err))
	}
	if err := h.SetBPFFilter(filter); err != nil {
		h.Close()
		return nil, 0, fmt.Errorf("cannot set capture filter %q on %s: %w", filter, iface, err)
	}
	return &pcapHandle{h: h}, uint16(h.LinkType()), nil
}

func (h *pcapHandle) read() ([]byte, gopacket.CaptureInfo, error) {
	data, ci, err := h.h.ZeroCopyReadPacketData()
	if err == pcap.NextErrorTimeoutExpired {
		return nil, ci, errTimeout
	}
	return data, ci, err
}

func (h *pcapHandle) kernelStats() (uint64, uint64, error) {
	st, err := h.h.Stats()
	if err != nil {
		return 0, 0, err
	}
	return uint64(st.PacketsReceived), uint64(st.PacketsDropped) + uint64(st.PacketsIfDropped), nil
}

func (h *pcapHandle) close() { h.h.Close() }
