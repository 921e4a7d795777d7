// Package pcapfile writes classic pcap files (microsecond timestamps, host byte order little
// endian), the format `editcap -F pcap` and `mergecap -F pcap` write. It is for the benchmark
// input builders; the product reads captures with internal/pcapread.
package pcapfile

import (
	"bufio"
	"encoding/binary"
	"fmt"
	"io"
)

// Writer writes pcap records to a buffered stream. Call Flush at the end.
type Writer struct {
	w   *bufio.Writer
	hdr [16]byte
	n   int64
}

// NewWriter writes the pcap file header (link type, snaplen) to w.
func NewWriter(w io.Writer, linkType uint16, snaplen uint32) (*Writer, error) {
	pw := &Writer{w: bufio.NewWriterSize(w, 1<<20)}
	var h [24]byte
	binary.LittleEndian.PutUint32(h[0:], 0xa1b2c3d4)
	binary.LittleEndian.PutUint16(h[4:], 2)
	binary.LittleEndian.PutUint16(h[6:], 4)
	binary.LittleEndian.PutUint32(h[16:], snaplen)
	binary.LittleEndian.PutUint32(h[20:], uint32(linkType))
	if _, err := pw.w.Write(h[:]); err != nil {
		return nil, fmt.Errorf("cannot write the pcap file header: %w", err)
	}
	return pw, nil
}

// Write appends one record: ts in nanoseconds since the epoch (truncated to microseconds), the
// captured bytes, and the length on the wire (len(data) when 0).
func (pw *Writer) Write(ts int64, data []byte, wireLen int) error {
	if wireLen == 0 {
		wireLen = len(data)
	}
	binary.LittleEndian.PutUint32(pw.hdr[0:], uint32(ts/1e9))
	binary.LittleEndian.PutUint32(pw.hdr[4:], uint32(ts%1e9/1e3))
	binary.LittleEndian.PutUint32(pw.hdr[8:], uint32(len(data)))
	binary.LittleEndian.PutUint32(pw.hdr[12:], uint32(wireLen))
	if _, err := pw.w.Write(pw.hdr[:]); err != nil {
		return fmt.Errorf("cannot write pcap record %d: %w", pw.n+1, err)
	}
	if _, err := pw.w.Write(data); err != nil {
		return fmt.Errorf("cannot write pcap record %d: %w", pw.n+1, err)
	}
	pw.n++
	return nil
}

// Records is the number of records written.
func (pw *Writer) Records() int64 { return pw.n }

// Flush writes what is buffered.
func (pw *Writer) Flush() error {
	if err := pw.w.Flush(); err != nil {
		return fmt.Errorf("cannot write pcap records: %w", err)
	}
	return nil
}
