// Command bigcap builds the large benchmark capture from a small one: time-shifted copies,
// as ../shared/bench/make-big.sh does with editcap and mergecap, with no Wireshark tools.
//
//	go run ./bench/cmd/bigcap -src testdata/lab/loss20.pcap -copies 659 -out out/bench/big.pcap
package main

import (
	"flag"
	"fmt"
	"os"

	"github.com/dnsloss/dnsloss/bench/bigcap"
)

func main() {
	src := flag.String("src", "testdata/lab/loss20.pcap", "source capture")
	out := flag.String("out", "out/bench/big.pcap", "output pcap")
	copies := flag.Int("copies", 659, "number of copies")
	flag.Parse()
	res, err := bigcap.Build(*src, *out, *copies)
	if err != nil {
		fmt.Fprintln(os.Stderr, "bigcap:", err)
		os.Exit(1)
	}
	fmt.Printf("%s: %d packets (%d copies of %d, %d s apart)\n", *out, res.Packets, *copies, res.SrcPackets, res.ShiftSecond)
}
