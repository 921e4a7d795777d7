package pcapread

import (
	"bytes"
	"compress/gzip"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// readAll returns the packets of r (data copied) and the errors other than io.EOF.
func readAll(t testing.TB, r *Reader) ([]Packet, []error) {
	t.Helper()
	var pkts []Packet
	var errs []error
	var p Packet
	for i := 0; i < 1e6; i++ {
		err := r.Next(&p)
		if errors.Is(err, io.EOF) {
			return pkts, errs
		}
		if err != nil {
			errs = append(errs, err)
			continue
		}
		q := p
		q.Data = append([]byte(nil), p.Data...)
		pkts = append(pkts, q)
	}
	t.Fatal("Next never returned io.EOF")
	return nil, nil
}

func TestFiles(t *testing.T) {
	tests := []struct {
		file    string
		packets int
		link    uint16
		firstTS int64
		errs    int
	}{
		// Timestamps: the first record header's seconds and microseconds, read with xxd.
		{"DNS-OARC_dnscap__dns.pcap", 133, 1, 1476976981075993000, 0},
		{"DNS-OARC_dnscap__sll2.pcap", 2, 276, 0x67caea44*1e9 + 0x035b22*1e3, 0},
		{"zeek_zeek__pcapng-multi-interface.pcapng", 6, 1, 0x18880036e43c99fd, 0},
		{"kbandla_dpkt__truncated_dns_2.pcap", 1, 1, 1598792366561863000, 1},
	}
	for _, tc := range tests {
		t.Run(tc.file, func(t *testing.T) {
			path := filepath.Join("testdata", tc.file)
			r, err := Open(path)
			if err != nil {
				t.Fatal(err)
			}
			defer r.Close()
			pkts, errs := readAll(t, r)
			if len(pkts) != tc.packets || len(errs) != tc.errs {
				t.Fatalf("got %d packets and errors %v, want %d packets and %d errors", len(pkts), errs, tc.packets, tc.errs)
			}
			if pkts[0].LinkType != tc.link || pkts[0].TS != tc.firstTS {
				t.Errorf("first packet: got link %d ts %d, want %d %d", pkts[0].LinkType, pkts[0].TS, tc.link, tc.firstTS)
			}
			st, _ := os.Stat(path)
			if r.Offset() != st.Size() || r.Size() != st.Size() {
				t.Errorf("progress at end: got %d of %d, want %d of %d", r.Offset(), r.Size(), st.Size(), st.Size())
			}
		})
	}
}

func TestTruncatedFile(t *testing.T) {
	// truncated_dns_2.pcap ends with 7 bytes of a 16-byte record header.
	r, err := Open("testdata/kbandla_dpkt__truncated_dns_2.pcap")
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	var p Packet
	errs := []error{r.Next(&p), r.Next(&p), r.Next(&p)}
	if errs[0] != nil || !errors.Is(errs[1], ErrTruncatedFile) || !errors.Is(errs[2], io.EOF) {
		t.Fatalf("got %v, want nil, ErrTruncatedFile, io.EOF", errs)
	}
	want := `capture "testdata/kbandla_dpkt__truncated_dns_2.pcap": the last record header is cut short after 1 packets (7 of 16 bytes present): capture file ends inside a record`
	if errs[1].Error() != want {
		t.Errorf("got %q, want %q", errs[1], want)
	}
}

// TestTruncatedGzip tells a .gz file cut short (the gzip stream ends early) from a complete gzip
// stream holding a capture cut short: the packets before the cut are read either way.
func TestTruncatedGzip(t *testing.T) {
	capture, err := os.ReadFile("testdata/kbandla_dpkt__truncated_dns_2.pcap") // 1 packet, then a cut record header
	if err != nil {
		t.Fatal(err)
	}
	whole := capture[:len(capture)-7] // the packet, without the cut header
	dir := t.TempDir()
	for _, tc := range []struct {
		name string
		data []byte
		want string
	}{
		{"gzip cut", gz(whole)[:len(gz(whole))-12], "the gzip-compressed data ends early"},
		{"capture cut inside a whole gzip", gz(capture), "the last record header is cut short after 1 packets (7 of 16 bytes present)"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(dir, strings.ReplaceAll(tc.name, " ", "-")+".pcap.gz")
			if err := os.WriteFile(path, tc.data, 0o644); err != nil {
				t.Fatal(err)
			}
			r, err := Open(path)
			if err != nil {
				t.Fatal(err)
			}
			defer r.Close()
			var p Packet
			errs := []error{r.Next(&p), r.Next(&p)}
			if errs[0] != nil || !errors.Is(errs[1], ErrTruncatedFile) || !strings.Contains(errs[1].Error(), tc.want) {
				t.Errorf("got %v, want nil and ErrTruncatedFile saying %q", errs, tc.want)
			}
		})
	}
}

func TestPcapngInterfaces(t *testing.T) {
	r, err := Open("testdata/zeek_zeek__pcapng-multi-interface.pcapng")
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	pkts, _ := readAll(t, r)
	// Interface 0 (eth0) has if_tsresol 9 (ns), interface 1 if_tsresol 6 (us); the 64-bit
	// timestamps of the enhanced packet blocks, read by hand from the file.
	want := []struct {
		ts    int64
		iface string
	}{
		{0x18880036e43c99fd, "eth0"},
		{1767663089514291940, "eth0"},
		{1767663437111897 * 1000, `\Device\NPF_{5AE6EDB4-EFF9-46B3-A3C2-EE50C688A9E6}`},
		{1767663437126460 * 1000, `\Device\NPF_{5AE6EDB4-EFF9-46B3-A3C2-EE50C688A9E6}`},
		{1767663437128303 * 1000, `\Device\NPF_{5AE6EDB4-EFF9-46B3-A3C2-EE50C688A9E6}`},
		{1767663437140942 * 1000, `\Device\NPF_{5AE6EDB4-EFF9-46B3-A3C2-EE50C688A9E6}`},
	}
	if len(pkts) != len(want) {
		t.Fatalf("got %d packets, want %d", len(pkts), len(want))
	}
	for i, w := range want {
		if pkts[i].TS != w.ts || pkts[i].Iface != w.iface {
			t.Errorf("packet %d: got ts %d iface %q, want %d %q", i, pkts[i].TS, pkts[i].Iface, w.ts, w.iface)
		}
	}
	if pkts[0].CaptureLen != 96 || pkts[0].WireLen != 96 || len(pkts[0].Data) != 96 {
		t.Errorf("packet 0: got caplen %d wirelen %d data %d, want 96", pkts[0].CaptureLen, pkts[0].WireLen, len(pkts[0].Data))
	}
}

// pcapFile builds a classic pcap file with two packets.
func pcapFile(order binary.ByteOrder, nanos bool) []byte {
	var b bytes.Buffer
	magic := uint32(0xa1b2c3d4)
	if nanos {
		magic = 0xa1b23c4d
	}
	w := func(v any) { binary.Write(&b, order, v) }
	w(magic)
	w(uint16(2))
	w(uint16(4))
	w(int32(0))
	w(uint32(0))
	w(uint32(65535))
	w(uint32(101))
	for i, data := range [][]byte{{0x45, 1, 2, 3}, {0x60, 1, 2, 3, 4, 5}} {
		w(uint32(1700000000 + i))
		w(uint32(123456))
		w(uint32(len(data)))
		w(uint32(len(data) + 10))
		b.Write(data)
	}
	return b.Bytes()
}

func gz(b []byte) []byte {
	var out bytes.Buffer
	w := gzip.NewWriter(&out)
	w.Write(b)
	w.Close()
	return out.Bytes()
}

func TestCraftedPcap(t *testing.T) {
	tests := []struct {
		name  string
		data  []byte
		frac  int64 // ns of the fraction 123456
		extra string
	}{
		{"microseconds little-endian", pcapFile(binary.LittleEndian, false), 123456000, ""},
		{"microseconds big-endian", pcapFile(binary.BigEndian, false), 123456000, ""},
		{"nanoseconds little-endian", pcapFile(binary.LittleEndian, true), 123456, ""},
		{"nanoseconds big-endian", pcapFile(binary.BigEndian, true), 123456, ""},
		{"gzip nanoseconds big-endian", gz(pcapFile(binary.BigEndian, true)), 123456, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "capture.bin") // the name says nothing of the format
			if err := os.WriteFile(path, tc.data, 0o600); err != nil {
				t.Fatal(err)
			}
			r, err := Open(path)
			if err != nil {
				t.Fatal(err)
			}
			defer r.Close()
			pkts, errs := readAll(t, r)
			got := fmt.Sprint(len(pkts), errs)
			if got != "2 []" {
				t.Fatalf("got %s, want 2 packets and no errors", got)
			}
			for i, p := range pkts {
				wantTS := int64(1700000000+i)*1e9 + tc.frac
				if p.TS != wantTS || p.LinkType != 101 || p.Iface != "" || p.WireLen != p.CaptureLen+10 || p.Data[0]>>4 != []byte{4, 6}[i] {
					t.Errorf("packet %d: got %+v, want ts %d link 101", i, p, wantTS)
				}
			}
			if r.Offset() != int64(len(tc.data)) {
				t.Errorf("offset: got %d, want %d", r.Offset(), len(tc.data))
			}
		})
	}
}

// ngBlock encodes a pcapng block.
func ngBlock(order binary.ByteOrder, typ uint32, body []byte) []byte {
	for len(body)%4 != 0 {
		body = append(body, 0)
	}
	var b bytes.Buffer
	binary.Write(&b, order, typ)
	binary.Write(&b, order, uint32(12+len(body)))
	b.Write(body)
	binary.Write(&b, order, uint32(12+len(body)))
	return b.Bytes()
}

func ngOpt(order binary.ByteOrder, code uint16, v []byte) []byte {
	b := make([]byte, 4, 4+len(v)+3)
	order.PutUint16(b, code)
	order.PutUint16(b[2:], uint16(len(v)))
	b = append(b, v...)
	for len(b)%4 != 0 {
		b = append(b, 0)
	}
	return b
}

func ngFile(order binary.ByteOrder) []byte {
	u16 := func(v uint16) []byte { b := make([]byte, 2); order.PutUint16(b, v); return b }
	u32 := func(v uint32) []byte { b := make([]byte, 4); order.PutUint32(b, v); return b }
	u64 := func(v uint64) []byte { b := make([]byte, 8); order.PutUint64(b, v); return b }
	shb := ngBlock(order, 0x0a0d0d0a, cat(u32(0x1a2b3c4d), u16(1), u16(0), u64(^uint64(0))))
	idb := func(link uint16, opts ...[]byte) []byte {
		return ngBlock(order, 1, cat(u16(link), u16(0), u32(0), cat(opts...), u32(0)))
	}
	epb := func(iface uint32, ts uint64, data []byte) []byte {
		return ngBlock(order, 6, cat(u32(iface), u32(uint32(ts>>32)), u32(uint32(ts)), u32(uint32(len(data))), u32(uint32(len(data))), data))
	}
	return cat(shb,
		idb(1, ngOpt(order, 2, []byte("lan")), ngOpt(order, 9, []byte{3})), // milliseconds
		idb(276, ngOpt(order, 9, []byte{0x80 | 10})),                       // 2^-10 s, no name
		idb(101, ngOpt(order, 9, []byte{6}), ngOpt(order, 14, u64(100))),   // microseconds, +100 s
		ngBlock(order, 0x0bad, []byte{1, 2, 3}),                            // unknown block: skipped
		epb(0, 1700000000123, []byte{1}),
		epb(1, 3*1024+512, []byte{2, 2}),
		epb(2, 5_000_001, []byte{3, 3, 3}),
		ngBlock(order, 3, cat(u32(5), []byte{9, 9, 9, 9, 9})), // simple packet block: interface 0
		epb(7, 0, []byte{4}),                                  // undefined interface: skipped with an error
		epb(0, 1, []byte{5}),
	)
}

func cat(parts ...[]byte) []byte { return bytes.Join(parts, nil) }

func TestCraftedPcapng(t *testing.T) {
	for _, order := range []binary.ByteOrder{binary.LittleEndian, binary.BigEndian} {
		for _, compress := range []bool{false, true} {
			t.Run(fmt.Sprintf("%v gzip=%v", order, compress), func(t *testing.T) {
				data := ngFile(order)
				if compress {
					data = gz(data)
				}
				r, err := NewReader(bytes.NewReader(data), "x.pcapng", int64(len(data)))
				if err != nil {
					t.Fatal(err)
				}
				pkts, errs := readAll(t, r)
				want := []Packet{
					{TS: 1700000000123 * 1e6, LinkType: 1, Iface: "lan", CaptureLen: 1},
					{TS: 3*1e9 + 5e8, LinkType: 276, Iface: "1", CaptureLen: 2}, // 3.5 s
					{TS: (100+5)*1e9 + 1000, LinkType: 101, Iface: "2", CaptureLen: 3},
					{TS: 0, LinkType: 1, Iface: "lan", CaptureLen: 5},
					{TS: 1e6, LinkType: 1, Iface: "lan", CaptureLen: 1},
				}
				if len(pkts) != len(want) {
					t.Fatalf("got %d packets, want %d", len(pkts), len(want))
				}
				for i, w := range want {
					p := pkts[i]
					if p.TS != w.TS || p.LinkType != w.LinkType || p.Iface != w.Iface || p.CaptureLen != w.CaptureLen || len(p.Data) != w.CaptureLen {
						t.Errorf("packet %d: got ts %d link %d iface %q caplen %d, want ts %d link %d iface %q caplen %d",
							i, p.TS, p.LinkType, p.Iface, p.CaptureLen, w.TS, w.LinkType, w.Iface, w.CaptureLen)
					}
				}
				if len(errs) != 1 || !errors.Is(errs[0], ErrBadPacket) {
					t.Errorf("errors: got %v, want one ErrBadPacket", errs)
				}
			})
		}
	}
}

func TestOpenErrors(t *testing.T) {
	dir := t.TempDir()
	write := func(name string, b []byte) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, b, 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	tests := []struct {
		name   string
		path   string
		is     error
		substr string
	}{
		{"missing", filepath.Join(dir, "nope.pcap"), fs.ErrNotExist, "cannot open capture"},
		{"text", write("notes.pcap", []byte("hello world\n")), ErrNotCapture, `notes.pcap": not a pcap or pcapng capture (starts with bytes 68 65 6c 6c); give a capture`},
		{"empty", write("empty.pcap", nil), ErrNotCapture, "(it is empty)"},
		{"gzip text", write("t.gz", gz([]byte("hello world"))), ErrNotCapture, "starts with bytes 68 65 6c 6c after gzip decompression"},
		{"short", write("short.pcap", []byte{0xd4, 0xc3}), ErrNotCapture, "it holds only d4 c3"},
		{"pcap header cut", write("cut.pcap", pcapFile(binary.LittleEndian, false)[:10]), ErrTruncatedFile, "the file header is cut short"},
		{"fake pcapng", write("ng.pcap", []byte("\n\r\r\nabcdefgh")), ErrNotCapture, "starts with bytes 0a 0d 0d 0a"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r, err := Open(tc.path)
			if err == nil {
				r.Close()
				t.Fatal("got no error")
			}
			if !errors.Is(err, tc.is) || !strings.Contains(err.Error(), tc.substr) {
				t.Errorf("got %q, want an error wrapping %v containing %q", err, tc.is, tc.substr)
			}
		})
	}
}

func TestCorruptRecord(t *testing.T) {
	data := pcapFile(binary.LittleEndian, false)
	binary.LittleEndian.PutUint32(data[24+8:], 1<<30) // first record claims 1 GiB
	r, err := NewReader(bytes.NewReader(data), "big.pcap", 0)
	if err != nil {
		t.Fatal(err)
	}
	pkts, errs := readAll(t, r)
	if len(pkts) != 0 || len(errs) != 1 || !errors.Is(errs[0], ErrCorrupt) {
		t.Errorf("got %d packets and %v, want 0 and one ErrCorrupt", len(pkts), errs)
	}
}

func TestNoAllocs(t *testing.T) {
	data := bytes.Repeat(pcapFile(binary.LittleEndian, false)[24:], 200)
	data = append(pcapFile(binary.LittleEndian, false)[:24], data...)
	r, err := NewReader(bytes.NewReader(data), "x", 0)
	if err != nil {
		t.Fatal(err)
	}
	var p Packet
	r.Next(&p)
	if n := testing.AllocsPerRun(100, func() { r.Next(&p) }); n != 0 {
		t.Errorf("allocations per packet: got %v, want 0", n)
	}
}

func FuzzReader(f *testing.F) {
	paths, _ := filepath.Glob("testdata/*")
	for _, p := range paths {
		if b, err := os.ReadFile(p); err == nil && len(b) < 4096 {
			f.Add(b)
		}
	}
	f.Add(pcapFile(binary.BigEndian, true))
	f.Add(ngFile(binary.LittleEndian))
	f.Add(ngFile(binary.BigEndian))
	f.Add(gz(ngFile(binary.BigEndian)))
	f.Fuzz(func(t *testing.T, data []byte) {
		r, err := NewReader(bytes.NewReader(data), "fuzz", int64(len(data)))
		if err != nil {
			return
		}
		var p Packet
		for i := 0; ; i++ {
			err := r.Next(&p)
			if errors.Is(err, io.EOF) {
				return
			}
			if err == nil && p.CaptureLen != len(p.Data) {
				t.Fatalf("CaptureLen %d, len(Data) %d", p.CaptureLen, len(p.Data))
			}
			if i > len(data) {
				t.Fatal("more packets than bytes")
			}
		}
	})
}
