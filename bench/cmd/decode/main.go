// Command decode is the decode-only benchmark: it reads a capture file with internal/pcapread and
// decodes every frame with internal/dnswire into dnsrow.Messages, which are discarded (or, with
// -native, appended to a dnsrow.Batch and encoded as Native blocks that are discarded). It prints
// only the counts, so it can be timed beside `tcpdump -nr FILE > /dev/null`.
//
//	decode [-native [-o FILE]] [-cpuprofile FILE] FILE...
package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"runtime/pprof"

	"github.com/dnsloss/dnsloss/internal/dnsrow"
	"github.com/dnsloss/dnsloss/internal/dnswire"
	"github.com/dnsloss/dnsloss/internal/pcapread"
)

func main() {
	native := flag.Bool("native", false, "also build Native blocks of 65536 rows (encoded, then discarded)")
	cpuprofile := flag.String("cpuprofile", "", "write a CPU profile to this file")
	out := flag.String("o", "", "with -native, write the Native blocks to this file")
	flag.Parse()
	if flag.NArg() == 0 {
		fmt.Fprintln(os.Stderr, "usage: decode [-native] [-cpuprofile FILE] FILE...")
		os.Exit(2)
	}
	if *cpuprofile != "" {
		f, err := os.Create(*cpuprofile)
		if err != nil {
			fmt.Fprintln(os.Stderr, "decode:", err)
			os.Exit(1)
		}
		if err := pprof.StartCPUProfile(f); err != nil {
			fmt.Fprintln(os.Stderr, "decode:", err)
			os.Exit(1)
		}
		defer pprof.StopCPUProfile()
	}
	for _, path := range flag.Args() {
		if err := decode(path, *native, *out); err != nil {
			fmt.Fprintln(os.Stderr, "decode:", err)
			pprof.StopCPUProfile()
			os.Exit(1)
		}
	}
}

func decode(path string, native bool, out string) error {
	rd, err := pcapread.Open(path)
	if err != nil {
		return err
	}
	defer rd.Close()
	w := io.Discard
	if out != "" {
		f, err := os.Create(out)
		if err != nil {
			return err
		}
		defer f.Close()
		w = f
	}
	dec := dnswire.NewDecoder(dnswire.Config{Host: "bench", Source: path})
	batch := dnsrow.NewBatch()
	var buf []byte
	var blocks, bytes int
	emit := func(*dnsrow.Message) {}
	if native {
		emit = func(m *dnsrow.Message) { batch.Append(m) }
	}
	flush := func() error {
		if batch.Rows() == 0 {
			return nil
		}
		var err error
		if buf, err = batch.EncodeNative(buf[:0]); err != nil {
			return err
		}
		blocks++
		bytes += len(buf)
		if _, err := w.Write(buf); err != nil {
			return err
		}
		batch.Reset()
		return nil
	}
	var p pcapread.Packet
	var f dnswire.Frame
	for {
		err := rd.Next(&p)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return err
		}
		f = dnswire.Frame{LinkType: p.LinkType, TS: p.TS, Data: p.Data, WireLen: p.WireLen, Iface: p.Iface}
		dec.Decode(&f, emit)
		if batch.Rows() >= 65536 {
			if err := flush(); err != nil {
				return err
			}
		}
	}
	dec.Flush(emit) // messages still held by IP or TCP reassembly, as ingest does
	if err := flush(); err != nil {
		return err
	}
	st := dec.Stats()
	fmt.Printf("%s\tpackets %d\tdns %d\tmalformed %d\tnon_dns %d\terrors %d\tnative_blocks %d\tnative_bytes %d\n",
		path, st.Packets, st.DNSMessages, st.Malformed, st.NonDNS+st.ShortDNS+st.UnsupportedLink, st.DecodeErrors, blocks, bytes)
	return nil
}
