package bigcap

import (
	"errors"
	"io"
	"path/filepath"
	"testing"

	"github.com/dnsloss/dnsloss/internal/pcapread"
)

// The counts come from the issue text (1519 packets in loss20.pcap, 659 copies -> 1,001,021) and
// from tcpdump -nr: the first packet is at 17:34:01.197208 and the last at 17:36:06.834403, so
// the capture lasts 125.6 s and copies are 126 s apart.
func TestBuild(t *testing.T) {
	const src = "../../testdata/lab/loss20.pcap"
	for _, tc := range []struct {
		name        string
		copies      int
		wantPackets int64
	}{
		{"one copy", 1, 1519},
		{"three copies", 3, 3 * 1519},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out := filepath.Join(t.TempDir(), "big.pcap")
			res, err := Build(src, out, tc.copies)
			if err != nil {
				t.Fatal(err)
			}
			if res.Packets != tc.wantPackets {
				t.Errorf("Build wrote %d packets, want %d", res.Packets, tc.wantPackets)
			}
			if res.ShiftSecond != 126 {
				t.Errorf("shift is %d s, want 126", res.ShiftSecond)
			}
			rd, err := pcapread.Open(out)
			if err != nil {
				t.Fatal(err)
			}
			defer rd.Close()
			var p pcapread.Packet
			var n int64
			var firstTS, prev int64
			for {
				err := rd.Next(&p)
				if errors.Is(err, io.EOF) {
					break
				}
				if err != nil {
					t.Fatal(err)
				}
				if n == 0 {
					firstTS = p.TS
				}
				if n == 1519 { // first packet of the second copy
					if got, want := p.TS-firstTS, int64(126e9); got != want {
						t.Errorf("second copy starts %d ns after the first, want %d", got, want)
					}
				}
				if p.TS < prev {
					t.Errorf("packet %d goes back in time", n+1)
				}
				prev = p.TS
				n++
			}
			if n != tc.wantPackets {
				t.Errorf("read back %d packets, want %d", n, tc.wantPackets)
			}
		})
	}
}
