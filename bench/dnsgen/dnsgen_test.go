package dnsgen

import (
	"errors"
	"io"
	"testing"

	"github.com/dnsloss/dnsloss/internal/dnsrow"
	"github.com/dnsloss/dnsloss/internal/dnswire"
	"github.com/dnsloss/dnsloss/internal/pcapread"
)

type counts struct{ packets, queries, responses, nxdomain, malformed int }

// decodeAll reads the files back with the product's own reader and decoder.
func decodeAll(t *testing.T, files []string) counts {
	t.Helper()
	var c counts
	for _, f := range files {
		rd, err := pcapread.Open(f)
		if err != nil {
			t.Fatal(err)
		}
		dec := dnswire.NewDecoder(dnswire.Config{})
		var p pcapread.Packet
		var last int64
		for {
			err := rd.Next(&p)
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				t.Fatal(err)
			}
			if p.TS < last {
				t.Fatalf("%s: packet %d goes back in time", f, rd.Packets())
			}
			last = p.TS
			c.packets++
			dec.Decode(&dnswire.Frame{LinkType: p.LinkType, TS: p.TS, Data: p.Data}, func(m *dnsrow.Message) {
				if len(m.Malformed) > 0 {
					c.malformed++
				}
				if m.QR == 0 {
					c.queries++
				} else {
					c.responses++
					if m.Rcode == 3 {
						c.nxdomain++
					}
				}
			})
		}
		rd.Close()
	}
	return c
}

func TestGenerate(t *testing.T) {
	for _, tc := range []struct {
		name         string
		qloss, rloss float64
		check        func(t *testing.T, c counts)
	}{
		{"no loss: every query answered", 0, 0, func(t *testing.T, c counts) {
			if c.responses != c.queries {
				t.Errorf("got %d responses to %d queries, want as many", c.responses, c.queries)
			}
		}},
		{"every query lost: no responses", 1, 0, func(t *testing.T, c counts) {
			if c.responses != 0 {
				t.Errorf("got %d responses, want 0", c.responses)
			}
		}},
		{"some loss: retries", 0.1, 0.1, func(t *testing.T, c counts) {
			if c.responses >= c.queries || c.responses == 0 {
				t.Errorf("got %d responses to %d queries, want fewer but some", c.responses, c.queries)
			}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			res, err := Generate(Config{Hosts: 3, Messages: 3000, QLoss: tc.qloss, RLoss: tc.rloss, Seed: 7}, t.TempDir())
			if err != nil {
				t.Fatal(err)
			}
			if len(res.Files) != 3 {
				t.Fatalf("got %d files, want 3", len(res.Files))
			}
			c := decodeAll(t, res.Files)
			if int64(c.packets) != res.Messages || c.queries+c.responses != c.packets {
				t.Errorf("got %d packets, %d queries + %d responses; Generate said %d messages", c.packets, c.queries, c.responses, res.Messages)
			}
			if c.packets < 3000 || c.packets > 3000+3*40 { // a host stops after the lookup that reaches its share
				t.Errorf("got %d messages, want about 3000", c.packets)
			}
			if c.malformed != 0 {
				t.Errorf("got %d malformed messages, want 0", c.malformed)
			}
			tc.check(t, c)
		})
	}
}
