package dnswire

import (
	"errors"
	"fmt"
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

func TestCaptureFields(t *testing.T) {
	// Expected values read by hand from the bytes (xxd) of each capture.
	type want struct {
		idx                     int
		dir                     uint8
		id                      uint16
		qr, rd, ra              uint8
		rcode                   uint16
		qname                   string
		qtype                   uint16
		ancount, nscount, arcnt uint16
		edns                    uint8
		udpSize                 uint16
		do                      uint8
		opts                    []uint16
		size                    uint32
		truncated               uint8
		malformed               string
	}
	tests := []struct {
		file string
		want []want
	}{
		{"testdata/DNS-OARC_dnscap__dns6.pcap", []want{
			// OPT: 00 0029 1000 00000000 0000 (4096, no options)
			{idx: 0, id: 0xc8dc, rd: 1, qname: "google.com", qtype: 1, arcnt: 1, edns: 1, udpSize: 4096, opts: []uint16{}, size: 39},
			{idx: 1, id: 0xc8dc, qr: 1, rd: 1, ra: 1, qname: "google.com", qtype: 1, ancount: 1, arcnt: 1, edns: 1, udpSize: 512, opts: []uint16{}, size: 55},
		}},
		{"testdata/DNS-OARC_dnscap__edns.pcap", []want{
			// 03c0 8182 ... 0000 2904 d000 0000 0000 3900 0f00 35...: SERVFAIL, OPT 1232, EDE (15)
			{idx: 13, id: 960, qr: 1, rd: 1, ra: 1, rcode: 2, qname: "dnssec-failed.org", qtype: 1, arcnt: 1, edns: 1, udpSize: 1232, opts: []uint16{15}, size: 103},
		}},
		{"testdata/DNS-OARC_dnscap__sll2.pcap", []want{
			// SLL2 packet type 4 (outgoing) then 0 (host); qname label 2c 2e = ",."
			{idx: 0, dir: dnsrow.DirOut, id: 0x5139, rd: 1, qname: `,\.`, qtype: 1, arcnt: 1, edns: 1, udpSize: 1232, do: 1, opts: []uint16{10}, size: 43},
			{idx: 1, dir: dnsrow.DirIn, id: 0x5139, qr: 1, rd: 1, ra: 1, rcode: 3, qname: `,\.`, qtype: 1, nscount: 4, arcnt: 1, edns: 1, udpSize: 1220, do: 1, opts: []uint16{10}, size: 732},
		}},
		{"testdata/zeek_zeek__dns_original_case.pcap", []want{
			{idx: 0, id: 20877, rd: 1, qname: "Us.V27.DiStRiBuTeD.NET", qtype: 1, arcnt: 1, edns: 1, udpSize: 4096, opts: []uint16{}, size: 51},
		}},
		{"testdata/zeek_zeek__dns-invalid-names.pcap", []want{
			// 03 61, then the UDP payload (14 bytes) ends: the label is cut after "a".
			{idx: 0, id: 0x2222, rd: 1, qname: "a", size: 14, malformed: dnsrow.ReasonShortName},
			{idx: 1, id: 0x2223, rd: 1, qname: "", size: 18, malformed: dnsrow.ReasonNameLoop},
			{idx: 2, id: 0x2224, rd: 1, qname: "abc", size: 16, malformed: dnsrow.ReasonShortName},
		}},
		{"testdata/kbandla_dpkt__truncated_dns_2.pcap", []want{
			// UDP length 248 -> 240 bytes of DNS, snaplen 200 cuts it inside the authority section.
			{idx: 0, id: 58325, qr: 1, rd: 1, ra: 1, qname: "mycelium-wallet.s3.amazonaws.com", qtype: 1, ancount: 2, nscount: 4, arcnt: 1, size: 240, truncated: 1, malformed: dnsrow.ReasonTruncated},
		}},
		{"testdata/kbandla_dpkt__truncated_dns.pcap", []want{
			// No additional section: the question decodes fully, the row is only marked truncated.
			{idx: 0, id: 63699, qr: 1, rd: 1, ra: 1, qname: "api.spd.samsungdm.com", qtype: 1, ancount: 9, size: 196, truncated: 1},
		}},
		{"testdata/DNS-OARC_dnscap__dnspad.pcap", []want{
			// Size is the UDP payload: the 28-byte query plus its 3 trailing bytes.
			{idx: 0, id: 59311, rd: 1, qname: "google.com", qtype: 1, size: 31},
		}},
	}
	for _, tc := range tests {
		rows, _ := decodeFile(t, tc.file)
		for _, w := range tc.want {
			t.Run(fmt.Sprintf("%s/%d", filepath.Base(tc.file), w.idx), func(t *testing.T) {
				if w.idx >= len(rows) {
					t.Fatalf("got %d rows, want row %d", len(rows), w.idx)
				}
				r := rows[w.idx]
				m := r.msg
				got := want{idx: w.idx, dir: m.Direction, id: m.ID, qr: m.QR, rd: m.RD, ra: m.RA, rcode: m.Rcode,
					qname: r.name, qtype: m.QType, ancount: m.ANCount, nscount: m.NSCount, arcnt: m.ARCount,
					edns: m.EDNS, udpSize: m.EDNSUDPSize, do: m.EDNSDO, opts: r.opts, size: m.Size,
					truncated: m.Truncated, malformed: r.mal}
				if got.opts == nil {
					got.opts = []uint16{}
				}
				if w.opts == nil {
					w.opts = []uint16{}
				}
				if fmt.Sprint(got) != fmt.Sprint(w) {
					t.Errorf("got  %+v\nwant %+v", got, w)
				}
			})
		}
	}
}

func TestCaptureNotUDP(t *testing.T) {
	tests := []struct {
		file      string
		fragments uint64
		tcp       uint64
	}{
		{"testdata/DNS-OARC_dnscap__frags.pcap", 495, 0},
		{"testdata/arkime_arkime__dns-tcp.pcap", 0, 20},
		{"testdata/DNS-OARC_dnscap__1qtcppadd.pcap", 0, 10},
	}
	for _, tc := range tests {
		t.Run(filepath.Base(tc.file), func(t *testing.T) {
			rows, st := decodeFile(t, tc.file)
			if len(rows) != 0 || st.Fragments != tc.fragments || st.TCPSegments != tc.tcp {
				t.Errorf("got %d rows, %d fragments, %d TCP segments; want 0, %d, %d", len(rows), st.Fragments, st.TCPSegments, tc.fragments, tc.tcp)
			}
		})
	}
}

func TestPcapngInterfaces(t *testing.T) {
	rows, _ := decodeFile(t, "testdata/zeek_zeek__pcapng-multi-interface.pcapng")
	seen := map[string]int{}
	for _, r := range rows {
		seen[string(r.msg.Iface)]++
		if string(r.msg.Host) != "h" {
			t.Errorf("Host: got %q, want %q", r.msg.Host, "h")
		}
	}
	// if_name options of the two interface blocks (the second's description is "Ethernet 2").
	want := map[string]int{"eth0": 2, `\Device\NPF_{5AE6EDB4-EFF9-46B3-A3C2-EE50C688A9E6}`: 4}
	if fmt.Sprint(seen) != fmt.Sprint(want) {
		t.Errorf("rows per interface: got %v, want %v", seen, want)
	}
}
