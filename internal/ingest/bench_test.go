package ingest

import (
	"context"
	"io"
	"testing"

	"github.com/dnsloss/dnsloss/internal/chstore"
)

// discardStore is a store that takes every block and keeps nothing, so that a benchmark of
// File measures the Go side of an ingest: read, decode, Append, EncodeNative, write.
type discardStore struct{}

func (discardStore) Exec(context.Context, string, chstore.Params) error { return nil }
func (discardStore) Query(context.Context, string, chstore.Params, string) ([]byte, error) {
	return []byte("0\n"), nil
}
func (discardStore) InsertNative(_ context.Context, _, _ string, write func(io.Writer) error) error {
	return write(io.Discard)
}
func (discardStore) Describe() string { return "discard" }
func (discardStore) Close() error     { return nil }

// BenchmarkFile ingests the loss20 lab capture (1519 Ethernet/IPv4/UDP packets) into a store
// that discards the blocks: the whole pipeline without the engine, per packet.
func BenchmarkFile(b *testing.B) {
	const path = "../../testdata/lab/loss20.pcap"
	ctx := context.Background()
	var packets int64
	b.ReportAllocs()
	for b.Loop() {
		res, err := File(ctx, discardStore{}, path, Options{Replace: true})
		if err != nil {
			b.Fatal(err)
		}
		packets += res.Packets
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(packets), "ns/packet")
}
