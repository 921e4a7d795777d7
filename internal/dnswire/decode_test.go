package dnswire

import (
	"errors"
	"io"
	"path/filepath"
	"testing"

	"github.com/dnsloss/dnsloss/internal/dnsrow"
	"github.com/dnsloss/dnsloss/internal/pcapread"
)

// row is a copy of the Message fields a test looks at.
type row struct {
	msg  dnsrow.Message
	name string
	mal  string
	opts []uint16
}

// decodeFile decodes every frame of a capture and returns copies of the rows and the stats.
func decodeFile(t testing.TB, path string) ([]row, Stats) {
	t.Helper()
	r, err := pcapread.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	d := NewDecoder(Config{Host: "h", Source: path})
	var rows []row
	var p pcapread.Packet
	for {
		err := r.Next(&p)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			if errors.Is(err, pcapread.ErrTruncatedFile) {
				continue
			}
			t.Fatal(err)
		}
		if err := d.Supported(p.LinkType); err != nil {
			t.Fatal(err)
		}
		f := Frame{LinkType: p.LinkType, TS: p.TS, Data: p.Data, WireLen: p.WireLen, Iface: p.Iface}
		d.Decode(&f, func(m *dnsrow.Message) {
			rows = append(rows, row{msg: *m, name: string(m.QName), mal: string(m.Malformed), opts: append([]uint16(nil), m.EDNSOptions...)})
		})
	}
	return rows, d.Stats()
}

func bucketSum(s Stats) uint64 {
	return s.DNSMessages + s.ShortDNS + s.NonDNS + s.DecodeErrors + s.UnsupportedLink + s.Fragments + s.TCPSegments
}

func TestCaptureCounts(t *testing.T) {
	// Counts of DNS messages per capture, from an independent decoder (given in the issue), and
	// for the lab captures from the lab's README (queries / responses).
	tests := []struct {
		file               string
		messages           int
		queries, responses int // -1: not checked
		malformed          int
	}{
		{"testdata/DNS-OARC_dnscap__dns.pcap", 82, 41, 41, 0},
		{"testdata/DNS-OARC_dnscap__vlan11.pcap", 82, 41, 41, 0},
		{"testdata/DNS-OARC_dnscap__edns.pcap", 14, -1, -1, 0},
		{"testdata/DNS-OARC_dnscap__dns6.pcap", 2, 1, 1, 0},
		{"testdata/DNS-OARC_dnscap__sll2.pcap", 2, 1, 1, 0},
		{"testdata/DNS-OARC_dnscap__dnspad.pcap", 1, 1, 0, 0},
		{"testdata/arkime_arkime__dns-udp.pcap", 5, -1, -1, 0},
		{"testdata/zeek_zeek__ticks-dns.pcap", 10, 10, 0, 0},
		{"testdata/zeek_zeek__tm1t.pcap", 4, 2, 2, 0},
		{"testdata/zeek_zeek__sshfp-trunc.pcap", 4, -1, -1, 0},
		{"testdata/zeek_zeek__dns-two-responses.pcap", 3, 1, 2, 0},
		{"testdata/zeek_zeek__dns-invalid-names.pcap", 3, 3, 0, 3},
		{"testdata/zeek_zeek__pcapng-multi-interface.pcapng", 6, 3, 3, 0},
		{"../../testdata/lab/drop-name.pcap", 26, 18, 8, 0},
		{"../../testdata/lab/baseline.pcap", 86, 43, 43, 0},
		{"../../testdata/lab/loss20.pcap", -1, 929, -1, 0},
	}
	for _, tc := range tests {
		t.Run(filepath.Base(tc.file), func(t *testing.T) {
			rows, st := decodeFile(t, tc.file)
			var q, r, mal int
			for _, x := range rows {
				if x.msg.QR == 0 {
					q++
				} else {
					r++
				}
				if x.mal != "" {
					mal++
				}
			}
			if tc.messages >= 0 && len(rows) != tc.messages {
				t.Errorf("messages: got %d, want %d", len(rows), tc.messages)
			}
			if tc.queries >= 0 && q != tc.queries {
				t.Errorf("queries: got %d, want %d", q, tc.queries)
			}
			if tc.responses >= 0 && r != tc.responses {
				t.Errorf("responses: got %d, want %d", r, tc.responses)
			}
			if mal != tc.malformed {
				t.Errorf("malformed rows: got %d, want %d", mal, tc.malformed)
			}
			if got := bucketSum(st); got != st.Packets {
				t.Errorf("buckets add up to %d, want Packets = %d (%+v)", got, st.Packets, st)
			}
			if st.DNSMessages != uint64(len(rows)) {
				t.Errorf("Stats.DNSMessages: got %d, want %d rows", st.DNSMessages, len(rows))
			}
			t.Logf("%+v", st)
		})
	}
}
