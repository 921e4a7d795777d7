package capture

import (
	"testing"

	"golang.org/x/net/bpf"
)

// runExt runs a classic BPF program that reads no packet bytes, only the packet type and the
// interface index extensions (x/net/bpf's VM knows neither), and returns what it returns.
func runExt(t *testing.T, raw []bpf.RawInstruction, pkttype, ifindex uint32) uint32 {
	t.Helper()
	prog, ok := bpf.Disassemble(raw)
	if !ok {
		t.Fatalf("cannot disassemble %v", raw)
	}
	var a uint32
	for pc := 0; pc < len(prog); pc++ {
		switch in := prog[pc].(type) {
		case bpf.LoadExtension:
			switch in.Num {
			case bpf.ExtType:
				a = pkttype
			case bpf.ExtInterfaceIndex:
				a = ifindex
			default:
				t.Fatalf("unexpected extension %v", in.Num)
			}
		case bpf.LoadConstant:
			a = in.Val
		case bpf.ALUOpConstant:
			if in.Op != bpf.ALUOpAdd {
				t.Fatalf("unexpected instruction %v", in)
			}
			a += in.Val
		case bpf.JumpIf:
			match := a == in.Val
			if in.Cond == bpf.JumpNotEqual {
				match = !match
			} else if in.Cond != bpf.JumpEqual {
				t.Fatalf("unexpected jump %v", in)
			}
			if match {
				pc += int(in.SkipTrue)
			} else {
				pc += int(in.SkipFalse)
			}
		case bpf.Jump:
			pc += int(in.Skip)
		case bpf.RetConstant:
			return in.Val
		case bpf.RetA:
			return a
		default:
			t.Fatalf("unexpected instruction %v at %d", in, pc)
		}
	}
	t.Fatal("the program ran off its end")
	return 0
}

// skipOutgoingLoopback refuses the outgoing copy of a loopback packet and nothing else, and hands
// the rest to the filter with the accumulator reset.
func TestSkipOutgoingLoopback(t *testing.T) {
	const (
		host     = 0 // PACKET_HOST
		outgoing = 4 // PACKET_OUTGOING
		keep     = 0x40000
	)
	// The "filter": return A, which must be 0 when it starts, plus 7.
	filter, err := bpf.Assemble([]bpf.Instruction{bpf.ALUOpConstant{Op: bpf.ALUOpAdd, Val: 7}, bpf.RetA{}})
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name        string
		filter      []bpf.RawInstruction
		allLoopback bool
		lo          []int
		pkttype     uint32
		ifindex     uint32
		want        uint32
	}{
		{"lo outgoing", filter, true, nil, outgoing, 1, 0},
		{"lo incoming", filter, true, nil, host, 1, 7},
		{"any, lo outgoing", filter, false, []int{1}, outgoing, 1, 0},
		{"any, lo incoming", filter, false, []int{1}, host, 1, 7},
		{"any, eth0 outgoing", filter, false, []int{1}, outgoing, 2, 7},
		{"any, second loopback outgoing", filter, false, []int{1, 5, 9}, outgoing, 9, 0},
		{"any, first of three loopbacks outgoing", filter, false, []int{1, 5, 9}, outgoing, 1, 0},
		{"any, not among three loopbacks", filter, false, []int{1, 5, 9}, outgoing, 6, 7},
		{"any, three loopbacks, incoming", filter, false, []int{1, 5, 9}, host, 5, 7},
		{"no filter, lo incoming", nil, true, nil, host, 1, keep},
		{"no filter, any, lo outgoing", nil, false, []int{1}, outgoing, 1, 0},
		{"no filter, any, eth0 outgoing", nil, false, []int{1}, outgoing, 2, keep},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			prog, err := skipOutgoingLoopback(tc.filter, tc.allLoopback, tc.lo)
			if err != nil {
				t.Fatal(err)
			}
			if got := runExt(t, prog, tc.pkttype, tc.ifindex); got != tc.want {
				t.Errorf("got %#x, want %#x", got, tc.want)
			}
		})
	}
	if prog, err := skipOutgoingLoopback(filter, false, nil); err != nil || len(prog) != len(filter) {
		t.Errorf("no loopback interface: got %d instructions (%v), want the filter unchanged", len(prog), err)
	}
}
