package dnsrow

import (
	"bytes"
	"fmt"
	"testing"

	"github.com/ClickHouse/ch-go/proto"
)

// TestEncodeNativeLowCardinality decodes the batch's Native block with ch-go's own decoder and
// checks the LowCardinality columns row by row, for dictionaries that need 1-byte and 2-byte keys
// and across a Reset.
func TestEncodeNativeLowCardinality(t *testing.T) {
	for _, tc := range []struct {
		name   string
		rows   int
		hosts  int // distinct host values, cycling
		resets int // batches encoded before the checked one
	}{
		{"one value", 10, 1, 0},
		{"alternating values", 10, 3, 0},
		{"two-byte keys", 1000, 300, 0},
		{"after a reset", 50, 7, 2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := NewBatch()
			want := make([][3]string, tc.rows)
			for r := 0; r <= tc.resets; r++ {
				b.Reset()
				for i := range tc.rows {
					m := Message{Host: fmt.Appendf(nil, "host-%d-%d", r, i%tc.hosts), Source: []byte("src"), Direction: uint8(i % 3)}
					if i%4 == 0 {
						m.Malformed = []byte(ReasonShortName)
					}
					b.Append(&m)
					want[i] = [3]string{string(m.Host), directionNames[m.Direction], string(m.Malformed)}
				}
			}
			buf, err := b.EncodeNative(nil)
			if err != nil {
				t.Fatal(err)
			}
			var res proto.Results
			cols := map[string]*proto.ColLowCardinality[string]{}
			for _, c := range b.Input() {
				var d proto.ColResult
				if c.Data.Type() == proto.ColumnTypeLowCardinality.Sub(proto.ColumnTypeString) {
					lc := new(proto.ColStr).LowCardinality()
					cols[c.Name] = lc
					d = lc
				} else {
					auto := &proto.ColAuto{}
					if err := auto.Infer(c.Data.Type()); err != nil {
						t.Fatalf("column %s: %v", c.Name, err)
					}
					d = auto
				}
				res = append(res, proto.ResultColumn{Name: c.Name, Data: d})
			}
			var blk proto.Block
			if err := blk.DecodeRawBlock(proto.NewReader(bytes.NewReader(buf)), 0, res); err != nil {
				t.Fatalf("ch-go cannot decode the block: %v", err)
			}
			if blk.Rows != tc.rows {
				t.Fatalf("got %d rows, want %d", blk.Rows, tc.rows)
			}
			for i, w := range want {
				got := [3]string{cols["host"].Row(i), cols["direction"].Row(i), cols["malformed"].Row(i)}
				if got != w {
					t.Fatalf("row %d: got %q, want %q", i, got, w)
				}
			}
		})
	}
}
