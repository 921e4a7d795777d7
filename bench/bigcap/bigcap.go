// Package bigcap builds the large benchmark capture: time-shifted copies of a small capture
// concatenated so that timestamps keep increasing, exactly as ../shared/bench/make-big.sh does
// with editcap and mergecap. Copy i is shifted by i*D seconds, where D is the capture's duration
// in whole seconds plus one (capinfos' "Capture duration" through awk's int(), plus 1).
package bigcap

import (
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/dnsloss/dnsloss/bench/pcapfile"
	"github.com/dnsloss/dnsloss/internal/pcapread"
)

type record struct {
	ts      int64
	data    []byte
	wireLen int
}

// Result describes what Build wrote.
type Result struct {
	Packets     int64 // records written
	SrcPackets  int   // records in the source capture
	ShiftSecond int64 // D: copy i is shifted by i*D seconds
}

// Build writes copies time-shifted copies of the capture src to out as a classic pcap.
func Build(src, out string, copies int) (Result, error) {
	var res Result
	if copies < 1 {
		return res, fmt.Errorf("copies is %d, want at least 1", copies)
	}
	rd, err := pcapread.Open(src)
	if err != nil {
		return res, err
	}
	defer rd.Close()
	var recs []record
	var link uint16
	first, last := int64(0), int64(0)
	var p pcapread.Packet
	for {
		err := rd.Next(&p)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return res, err
		}
		if len(recs) == 0 {
			link, first, last = p.LinkType, p.TS, p.TS
		} else if p.LinkType != link {
			return res, fmt.Errorf("capture %q mixes link types %d and %d; a pcap holds one", src, link, p.LinkType)
		}
		first, last = min(first, p.TS), max(last, p.TS)
		recs = append(recs, record{ts: p.TS, data: append([]byte(nil), p.Data...), wireLen: p.WireLen})
	}
	if len(recs) == 0 {
		return res, fmt.Errorf("capture %q holds no packets", src)
	}
	res.SrcPackets = len(recs)
	res.ShiftSecond = (last-first)/1e9 + 1

	f, err := os.Create(out)
	if err != nil {
		return res, fmt.Errorf("cannot create %q: %w", out, err)
	}
	defer f.Close()
	w, err := pcapfile.NewWriter(f, link, 262144)
	if err != nil {
		return res, fmt.Errorf("cannot write %q: %w", out, err)
	}
	for i := range copies {
		shift := int64(i) * res.ShiftSecond * 1e9
		for _, r := range recs {
			if err := w.Write(r.ts+shift, r.data, r.wireLen); err != nil {
				return res, fmt.Errorf("cannot write %q: %w", out, err)
			}
		}
	}
	if err := w.Flush(); err != nil {
		return res, fmt.Errorf("cannot write %q: %w", out, err)
	}
	res.Packets = w.Records()
	if err := f.Close(); err != nil {
		return res, fmt.Errorf("cannot write %q: %w", out, err)
	}
	return res, nil
}
