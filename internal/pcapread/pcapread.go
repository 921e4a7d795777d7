// Package pcapread reads packet capture files: classic pcap (microsecond and nanosecond
// timestamps, either byte order) and pcapng (several interfaces, each with its own link type and
// timestamp resolution), optionally gzip-compressed. Compression and format are recognised by their
// magic bytes, never by the file name.
//
// It is a small reader of its own rather than gopacket/pcapgo: pcapgo v1.1.19 stores link types in a
// uint8 (LINKTYPE_LINUX_SLL2, 276, becomes 20), silently skips pcapng packets whose interface has a
// different link type than the first one unless asked not to, and panics on some corrupt pcapng
// options (a zero-length if_tsresol, a binary resolution of 2^-64 and finer). This reader never
// panics on file bytes and allocates nothing per packet.
package pcapread

import (
	"bufio"
	"compress/gzip"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math/bits"
	"os"
	"strconv"
)

// Sentinel errors, wrapped with the file name and place; test with errors.Is.
var (
	// ErrNotCapture: the file does not start with a pcap, pcapng or gzip magic number.
	ErrNotCapture = errors.New("not a pcap or pcapng capture")
	// ErrTruncatedFile: the file ends inside a record (a capture cut short, e.g. by a full disk or
	// a copy taken while the capture was running). The packets before it were returned.
	ErrTruncatedFile = errors.New("capture file ends inside a record")
	// ErrCorrupt: a record header holds values no capture tool writes (e.g. a 1 GB packet); the
	// rest of the file cannot be framed and is not read.
	ErrCorrupt = errors.New("corrupt capture record")
	// ErrBadPacket: one pcapng packet block is inconsistent (e.g. names an undefined interface);
	// it is skipped and reading continues.
	ErrBadPacket = errors.New("inconsistent packet record")
)

// Limits that tell a corrupt record header from a real one.
const (
	maxPacket = 1 << 18 // 256 KiB, libpcap's largest snaplen
	maxBlock  = 1 << 24 // 16 MiB, a pcapng block (options included)
)

// Packet is one captured packet.
type Packet struct {
	TS         int64  // nanoseconds since the Unix epoch, UTC
	Data       []byte // the captured bytes; valid until the next call to Next
	CaptureLen int    // len(Data)
	WireLen    int    // length of the packet on the wire
	LinkType   uint16 // LINKTYPE_* number (uint16: gopacket's layers.LinkType is a uint8 and cannot hold 276, SLL2)
	Iface      string // pcapng interface name, else its index in decimal; "" for pcap
}

type ngIface struct {
	link   uint16
	name   string
	binary bool   // resolution is 2^-exp seconds, else 10^-exp
	exp    uint8  // resolution exponent
	mul    uint64 // decimal: ns = ts*mul/div
	div    uint64
	offset int64 // if_tsoffset, ns
}

// Reader reads packets from one capture file. It is not safe for concurrent use.
type Reader struct {
	name    string
	file    io.Closer
	counter *countingReader
	size    int64
	gz      *gzip.Reader
	gzCut   *cutReader // the gzip stream, which tells a cut .gz from a cut capture inside it
	r       *bufio.Reader

	ng       bool
	big      bool // byte order of the file (pcap) or current section (pcapng)
	nanos    bool // pcap: nanosecond timestamps
	link     uint16
	snaplen  uint32
	ifaces   []ngIface
	hdr      [24]byte
	buf      []byte
	packets  int64
	done     bool
	compress bool
}

// cutReader notes whether the gzip stream it reads ended in the middle (io.ErrUnexpectedEOF from
// the decompressor), as opposed to a complete stream holding a capture cut short.
type cutReader struct {
	r   io.Reader
	cut bool
}

func (c *cutReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	if errors.Is(err, io.ErrUnexpectedEOF) {
		c.cut = true
	}
	return n, err
}

type countingReader struct {
	r io.Reader
	n int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	return n, err
}

// Open opens the capture file at path and reads its header.
func Open(path string) (*Reader, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("cannot open capture %q: %w", path, err)
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("cannot open capture %q: %w", path, err)
	}
	if st.IsDir() {
		f.Close()
		return nil, fmt.Errorf("cannot open capture %q: it is a directory", path)
	}
	r, err := NewReader(f, path, st.Size())
	if err != nil {
		f.Close()
		return nil, err
	}
	r.file = f
	return r, nil
}

// NewReader reads a capture from rd; name is used in error messages and size (the number of
// bytes rd holds, or 0 if unknown) for progress. Close does not close rd.
func NewReader(rd io.Reader, name string, size int64) (*Reader, error) {
	r := &Reader{name: name, size: size, counter: &countingReader{r: rd}}
	r.r = bufio.NewReaderSize(r.counter, 64<<10)
	magic, err := r.r.Peek(4)
	if len(magic) >= 2 && magic[0] == 0x1f && magic[1] == 0x8b {
		r.compress = true
		r.gz, err = gzip.NewReader(r.r)
		if err != nil {
			return nil, fmt.Errorf("cannot open capture %q: gzip header: %w", name, err)
		}
		r.gz.Multistream(true)
		r.gzCut = &cutReader{r: r.gz}
		r.r = bufio.NewReaderSize(r.gzCut, 64<<10)
		magic, err = r.r.Peek(4)
	}
	if len(magic) < 4 {
		if err != nil && !errors.Is(err, io.EOF) && !errors.Is(err, io.ErrUnexpectedEOF) {
			return nil, fmt.Errorf("cannot read capture %q: %w", name, err)
		}
		return nil, notCapture(name, r.startDesc(magic, "it holds only % x"))
	}
	switch m := binary.LittleEndian.Uint32(magic); m {
	case 0xa1b2c3d4, 0xd4c3b2a1, 0xa1b23c4d, 0x4d3cb2a1:
		r.big = m == 0xd4c3b2a1 || m == 0x4d3cb2a1
		r.nanos = m == 0xa1b23c4d || m == 0x4d3cb2a1
		if err := r.readFull(r.hdr[:24], "the file header"); err != nil {
			return nil, err
		}
		r.snaplen = r.u32(r.hdr[16:])
		r.link = uint16(r.u32(r.hdr[20:])) // the upper 16 bits carry FCS flags
	case 0x0a0d0d0a:
		r.ng = true
		// The first section header is read by Next like any other block, but check now that
		// this is a pcapng file and not some other text starting with "\n\r\r\n".
		hdr, _ := r.r.Peek(12)
		if len(hdr) < 12 || !bomOK(hdr[8:12]) {
			return nil, notCapture(name, r.startDesc(hdr, "starts with bytes % x"))
		}
	default:
		return nil, notCapture(name, r.startDesc(magic, "starts with bytes % x"))
	}
	return r, nil
}

func (r *Reader) startDesc(b []byte, format string) string {
	s := fmt.Sprintf(format, b)
	if len(b) == 0 {
		s = "it is empty"
	}
	if r.compress {
		s += " after gzip decompression"
	}
	return s
}

func bomOK(b []byte) bool {
	m := binary.LittleEndian.Uint32(b)
	return m == 0x1a2b3c4d || m == 0x4d3c2b1a
}

func (r *Reader) u16(b []byte) uint16 {
	if r.big {
		return binary.BigEndian.Uint16(b)
	}
	return binary.LittleEndian.Uint16(b)
}

func (r *Reader) u32(b []byte) uint32 {
	if r.big {
		return binary.BigEndian.Uint32(b)
	}
	return binary.LittleEndian.Uint32(b)
}

// readFull reads len(b) bytes. A clean end of file before the first byte is io.EOF; an end in the
// middle is ErrTruncatedFile.
func (r *Reader) readFull(b []byte, what string) error {
	n, err := io.ReadFull(r.r, b)
	if err == nil {
		return nil
	}
	if n == 0 && errors.Is(err, io.EOF) {
		return io.EOF
	}
	if r.gzCut != nil && r.gzCut.cut {
		return fmt.Errorf("capture %q: the gzip-compressed data ends early, in %s, after %d packets (the .gz file is incomplete: still being written, or cut short by a copy): %w",
			r.name, what, r.packets, ErrTruncatedFile)
	}
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
		return fmt.Errorf("capture %q: %s is cut short after %d packets (%d of %d bytes present): %w",
			r.name, what, r.packets, n, len(b), ErrTruncatedFile)
	}
	return fmt.Errorf("cannot read capture %q after %d packets: %w", r.name, r.packets, err)
}

// Next reads the next packet into p. It returns io.EOF at the end of the file. Any other error
// names the file and the place; after it, call Next again: it continues where it can
// (ErrBadPacket) and returns io.EOF where it cannot (ErrTruncatedFile, ErrCorrupt, read errors).
func (r *Reader) Next(p *Packet) error {
	if r.done {
		return io.EOF
	}
	var err error
	if r.ng {
		err = r.nextNg(p)
	} else {
		err = r.nextPcap(p)
	}
	if err != nil {
		if !errors.Is(err, ErrBadPacket) {
			r.done = true
		}
		return err
	}
	r.packets++
	return nil
}

func (r *Reader) nextPcap(p *Packet) error {
	h := r.hdr[:16]
	if err := r.readFull(h, "the last record header"); err != nil {
		return err
	}
	sec, frac := r.u32(h[0:]), r.u32(h[4:])
	caplen, wirelen := r.u32(h[8:]), r.u32(h[12:])
	if caplen > maxPacket {
		return fmt.Errorf("capture %q: record %d claims %d captured bytes (more than %d): %w", r.name, r.packets+1, caplen, maxPacket, ErrCorrupt)
	}
	data := r.grow(int(caplen))
	if err := r.readFull(data, "the last packet"); err != nil {
		return err
	}
	ns := int64(frac)
	if !r.nanos {
		ns *= 1000
	}
	p.TS = int64(sec)*1e9 + ns
	p.Data = data
	p.CaptureLen = int(caplen)
	p.WireLen = int(wirelen)
	p.LinkType = r.link
	p.Iface = ""
	return nil
}

func (r *Reader) grow(n int) []byte {
	if cap(r.buf) < n {
		r.buf = make([]byte, n, max(n, 2048))
	}
	return r.buf[:n]
}

// pcapng block types.
const (
	blockSHB = 0x0a0d0d0a
	blockIDB = 1
	blockPB  = 2 // obsolete Packet Block
	blockSPB = 3
	blockEPB = 6
)

func (r *Reader) nextNg(p *Packet) error {
	for {
		h := r.hdr[:8]
		if err := r.readFull(h, "the last block header"); err != nil {
			return err
		}
		typ := binary.LittleEndian.Uint32(h[0:]) // the SHB type is a palindrome
		if typ == blockSHB {
			bom, err := r.r.Peek(4)
			if len(bom) < 4 {
				if err == nil || errors.Is(err, io.EOF) {
					return r.readFull(make([]byte, 4), "the last section header")
				}
				return fmt.Errorf("cannot read capture %q: %w", r.name, err)
			}
			switch binary.LittleEndian.Uint32(bom) {
			case 0x1a2b3c4d:
				r.big = false
			case 0x4d3c2b1a:
				r.big = true
			default:
				return fmt.Errorf("capture %q: section header after %d packets has byte-order mark % x: %w", r.name, r.packets, bom, ErrCorrupt)
			}
			r.ifaces = r.ifaces[:0]
		} else {
			typ = r.u32(h[0:])
		}
		total := r.u32(h[4:])
		if total < 12 || total > maxBlock {
			return fmt.Errorf("capture %q: block of type %#x after %d packets has length %d: %w", r.name, typ, r.packets, total, ErrCorrupt)
		}
		// Body plus the trailing copy of the length; pcapng pads blocks to 4 bytes but some
		// writers do not, so take the length as written.
		body := r.grow(int(total) - 8)
		if err := r.readFull(body, "the last block"); err != nil {
			return err
		}
		body = body[:len(body)-4]
		switch typ {
		case blockSHB:
			// byte-order mark, version, section length, options: nothing we need.
		case blockIDB:
			r.addIface(body)
		case blockEPB, blockPB:
			if len(body) < 20 {
				return fmt.Errorf("capture %q: packet block %d is %d bytes, too short for its header: %w", r.name, r.packets+1, len(body), ErrBadPacket)
			}
			var id int
			if typ == blockEPB {
				id = int(r.u32(body[0:]))
			} else {
				id = int(r.u16(body[0:]))
			}
			if id >= len(r.ifaces) {
				return fmt.Errorf("capture %q: packet block %d names interface %d, but the section defines %d: %w", r.name, r.packets+1, id, len(r.ifaces), ErrBadPacket)
			}
			ts := uint64(r.u32(body[4:]))<<32 | uint64(r.u32(body[8:]))
			caplen, wirelen := r.u32(body[12:]), r.u32(body[16:])
			if uint64(caplen) > uint64(len(body)-20) {
				return fmt.Errorf("capture %q: packet block %d claims %d captured bytes but holds %d: %w", r.name, r.packets+1, caplen, len(body)-20, ErrBadPacket)
			}
			ifc := &r.ifaces[id]
			p.TS = ifc.nanos(ts)
			p.Data = body[20 : 20+caplen]
			p.CaptureLen = int(caplen)
			p.WireLen = int(wirelen)
			p.LinkType = ifc.link
			p.Iface = ifc.name
			return nil
		case blockSPB:
			if len(body) < 4 {
				return fmt.Errorf("capture %q: simple packet block %d is too short: %w", r.name, r.packets+1, ErrBadPacket)
			}
			if len(r.ifaces) == 0 {
				return fmt.Errorf("capture %q: simple packet block %d comes before any interface: %w", r.name, r.packets+1, ErrBadPacket)
			}
			wirelen := r.u32(body[0:])
			data := body[4:]
			if uint64(len(data)) > uint64(wirelen) {
				data = data[:wirelen] // padding
			}
			p.TS = 0 // a simple packet block has no timestamp
			p.Data = data
			p.CaptureLen = len(data)
			p.WireLen = int(wirelen)
			p.LinkType = r.ifaces[0].link
			p.Iface = r.ifaces[0].name
			return nil
		}
	}
}

// addIface parses an Interface Description Block body.
func (r *Reader) addIface(body []byte) {
	ifc := ngIface{exp: 6, mul: 1000, div: 1}
	idx := len(r.ifaces)
	if len(body) >= 8 {
		ifc.link = r.u16(body[0:])
		body = body[8:]
	}
	var offsetSec int64
	for len(body) >= 4 {
		code, n := r.u16(body[0:]), int(r.u16(body[2:]))
		body = body[4:]
		if code == 0 || n > len(body) {
			break
		}
		v := body[:n]
		switch {
		case code == 2 && n > 0: // if_name
			ifc.name = string(v)
		case code == 9 && n >= 1: // if_tsresol
			ifc.binary = v[0]&0x80 != 0
			ifc.exp = v[0] & 0x7f
		case code == 14 && n >= 8: // if_tsoffset, seconds
			if r.big {
				offsetSec = int64(binary.BigEndian.Uint64(v))
			} else {
				offsetSec = int64(binary.LittleEndian.Uint64(v))
			}
		}
		pad := (n + 3) &^ 3
		if pad > len(body) {
			break
		}
		body = body[pad:]
	}
	if ifc.name == "" {
		ifc.name = strconv.Itoa(idx)
	}
	ifc.offset = offsetSec * 1e9
	if !ifc.binary {
		ifc.mul, ifc.div = 1, 1
		if ifc.exp <= 9 {
			ifc.mul = pow10(9 - ifc.exp)
		} else if ifc.exp-9 <= 19 {
			ifc.div = pow10(ifc.exp - 9)
		} else {
			ifc.div = 0 // finer than 10^-28 s: every timestamp is 0 ns
		}
	}
	r.ifaces = append(r.ifaces, ifc)
}

func pow10(n uint8) uint64 {
	v := uint64(1)
	for range n {
		v *= 10
	}
	return v
}

// nanos converts a timestamp in interface units to nanoseconds since the epoch.
func (ifc *ngIface) nanos(ts uint64) int64 {
	if ifc.binary {
		// ts * 1e9 / 2^exp, in 128 bits so that no resolution overflows.
		hi, lo := bits.Mul64(ts, 1e9)
		var v uint64
		switch e := uint(ifc.exp); {
		case e == 0:
			v = lo
		case e < 64:
			v = hi<<(64-e) | lo>>e
		default:
			v = hi >> (e - 64)
		}
		return int64(v) + ifc.offset
	}
	if ifc.div == 0 {
		return ifc.offset
	}
	if ifc.div == 1 {
		return int64(ts*ifc.mul) + ifc.offset
	}
	return int64(ts/ifc.div) + ifc.offset
}

// Offset is the number of bytes of the file consumed so far (for a gzip file, compressed bytes),
// read ahead by up to 64 KiB. With Size it gives progress.
func (r *Reader) Offset() int64 { return r.counter.n }

// Size is the size of the file in bytes, or 0 if unknown.
func (r *Reader) Size() int64 { return r.size }

// Name is the file name given to Open.
func (r *Reader) Name() string { return r.name }

// Packets is the number of packets returned so far.
func (r *Reader) Packets() int64 { return r.packets }

// Close closes the file.
func (r *Reader) Close() error {
	var err error
	if r.gz != nil {
		err = r.gz.Close()
	}
	if r.file != nil {
		if cerr := r.file.Close(); cerr != nil {
			err = cerr
		}
		r.file = nil
	}
	return err
}

// notCapture says that the file name is not a capture, what it starts with, and what to give.
func notCapture(name, start string) error {
	return fmt.Errorf("%q: %w (%s); give a capture written by tcpdump -w, dumpcap or tshark, gzip-compressed or not",
		name, ErrNotCapture, start)
}
