package dnsrow

import (
	"fmt"
	"testing"
)

// benchMessages returns n messages shaped like a capture's: one host and source, queries and
// responses alternating, names from a set of 500.
func benchMessages(n int) []Message {
	msgs := make([]Message, n)
	for i := range msgs {
		m := &msgs[i]
		m.Host, m.Iface, m.Source = []byte("web-1"), []byte("eth0"), []byte("/captures/web-1.pcap")
		m.TS = 1_700_000_000_000_000_000 + int64(i)*1000
		m.IPVersion, m.Transport = 4, TransportUDP
		m.SrcIP = [16]byte{10: 0xff, 11: 0xff, 12: 10, 13: 0, 14: byte(i >> 8), 15: byte(i)}
		m.DstIP = [16]byte{10: 0xff, 11: 0xff, 12: 10, 13: 53, 14: 0, 15: 1}
		m.SrcPort, m.DstPort = uint16(32768+i%28000), 53
		m.ID, m.QR, m.RD = uint16(i), uint8(i%2), 1
		m.QName = fmt.Appendf(nil, "host-%d.example.com", i%500)
		m.QType, m.QClass, m.QDCount = 1, 1, 1
		if i%2 == 1 {
			m.ANCount, m.RA = 1, 1
		}
		m.Size = 40
	}
	return msgs
}

// BenchmarkAppend: copying one decoded message into the columns (ns/row, allocations per row
// once the batch's buffers have grown).
func BenchmarkAppend(b *testing.B) {
	const block = 65536
	msgs := benchMessages(block)
	batch := NewBatch()
	b.ReportAllocs()
	n := 0
	for b.Loop() {
		if n%block == 0 {
			batch.Reset()
		}
		batch.Append(&msgs[n%block])
		n++
	}
}

// BenchmarkEncodeNative: encoding a 65536-row block (reported per row).
func BenchmarkEncodeNative(b *testing.B) {
	const block = 65536
	msgs := benchMessages(block)
	batch := NewBatch()
	for i := range msgs {
		batch.Append(&msgs[i])
	}
	var buf []byte
	b.ReportAllocs()
	for b.Loop() {
		var err error
		if buf, err = batch.EncodeNative(buf[:0]); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*block), "ns/row")
	b.ReportMetric(float64(len(buf))/block, "bytes/row")
}

// BenchmarkAppendEncode: Append then EncodeNative, as an ingest does, per row.
func BenchmarkAppendEncode(b *testing.B) {
	const block = 65536
	msgs := benchMessages(block)
	batch := NewBatch()
	var buf []byte
	b.ReportAllocs()
	n := 0
	for b.Loop() {
		batch.Append(&msgs[n%block])
		n++
		if batch.Rows() == block {
			var err error
			if buf, err = batch.EncodeNative(buf[:0]); err != nil {
				b.Fatal(err)
			}
			batch.Reset()
		}
	}
}
