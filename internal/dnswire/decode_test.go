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
			rows = append(rows, copyRow(m))
		})
	}
	d.Flush(func(m *dnsrow.Message) { rows = append(rows, copyRow(m)) })
	return rows, d.Stats()
}

func copyRow(m *dnsrow.Message) row {
	c := *m
	c.Iface = append([]byte(nil), m.Iface...)
	return row{msg: c, name: string(m.QName), mal: string(m.Malformed), opts: append([]uint16(nil), m.EDNSOptions...)}
}

// bucketSum adds up the packet ledger (see Stats): it must equal Packets.
func bucketSum(s Stats) uint64 {
	return s.UDP + s.ShortDNS + s.NonDNS + s.DecodeErrors + s.UnsupportedLink + s.Fragments + s.TCPSegments
}

// ledgerErrors checks the three ledgers of Stats (see its doc) and returns what does not add up.
func ledgerErrors(s Stats) []string {
	var errs []string
	if got := bucketSum(s); got != s.Packets {
		errs = append(errs, fmt.Sprintf("packet buckets add up to %d, want Packets = %d", got, s.Packets))
	}
	if got := s.UDP + s.FragMessages + s.TCPMessages; got != s.DNSMessages {
		errs = append(errs, fmt.Sprintf("rows by origin add up to %d, want DNSMessages = %d", got, s.DNSMessages))
	}
	if got := s.FragMessages + s.FragNotDNS + s.FragTCP; got != s.FragDatagrams {
		errs = append(errs, fmt.Sprintf("datagram outcomes add up to %d, want FragDatagrams = %d", got, s.FragDatagrams))
	}
	if got := s.TCPMessages + s.TCPShort; got != s.TCP.Messages {
		errs = append(errs, fmt.Sprintf("TCP message outcomes add up to %d, want TCP.Messages = %d", got, s.TCP.Messages))
	}
	if s.Malformed > s.DNSMessages || s.Truncated > s.DNSMessages || s.Incomplete > s.Malformed {
		errs = append(errs, fmt.Sprintf("Malformed %d, Truncated %d, Incomplete %d do not fit in %d rows", s.Malformed, s.Truncated, s.Incomplete, s.DNSMessages))
	}
	return errs
}

// TestCaptureCounts decodes every public capture in testdata (and the lab captures) through the
// whole Decoder, reassembly and Flush included, and checks the number of DNS messages against
// the counts an independent decoder gives (tshark, counting every DNS message in a frame; the
// issue lists them), and for the lab captures the lab's README (queries / responses).
//
// Two captures' independent counts are wrong, and the right ones are used here:
//   - dnsotcp-manyopkts: 3, not 2. Its two client segments carry 90 bytes = 3 x (2 + 28), three
//     whole queries, the second straddling the segment boundary; a per-frame count sees 2. The
//     bytes are in internal/tcpdns TestManyOPkts.
//   - do1t-nosyn-1nolen: 4. The capture starts mid-connection and the first query's 2-byte length
//     prefix was never captured: the segment is a whole 28-byte query (id 0xe7af) that a decoder
//     reading a prefix there misreads (dnscap reports a FORMERR query with id 256). The bytes are
//     in internal/tcpdns TestNoSynNoLen; the row is here too (TestTCPCaptures).
func TestCaptureCounts(t *testing.T) {
	tests := []struct {
		file               string
		messages           int
		queries, responses int // -1: not checked
		tcp, fragmented    int // rows over TCP, rows from IP fragments
		malformed          int
	}{
		{"testdata/DNS-OARC_dnscap__dns.pcap", 82, 41, 41, 0, 0, 0},
		{"testdata/DNS-OARC_dnscap__vlan11.pcap", 82, 41, 41, 0, 0, 0},
		{"testdata/DNS-OARC_dnscap__frags.pcap", 82, 41, 41, 0, 82, 0},
		{"testdata/DNS-OARC_dnscap__dnso1tcp.pcap", 82, 41, 41, 82, 0, 0},
		{"testdata/DNS-OARC_dnscap__edns.pcap", 14, 7, 7, 0, 0, 0},
		{"testdata/DNS-OARC_dnscap__dnso1tcp-midmiss.pcap", 6, 3, 3, 6, 0, 0},
		{"testdata/DNS-OARC_dnscap__dnsotcp-many1pkt.pcap", 4, 3, 1, 4, 0, 0},
		{"testdata/DNS-OARC_dnscap__dnsotcp-manyopkts.pcap", 3, 3, 0, 3, 0, 0},
		{"testdata/DNS-OARC_dnscap__do1t-nosyn-1nolen.pcap", 4, 2, 2, 4, 0, 0},
		{"testdata/DNS-OARC_dnscap__1qtcppadd.pcap", 2, 1, 1, 2, 0, 0},
		{"testdata/DNS-OARC_dnscap__dns6.pcap", 2, 1, 1, 0, 0, 0},
		{"testdata/DNS-OARC_dnscap__sll2.pcap", 2, 1, 1, 0, 0, 0},
		{"testdata/DNS-OARC_dnscap__dnspad.pcap", 1, 1, 0, 0, 0, 0},
		{"testdata/arkime_arkime__dns-tcp.pcap", 4, 2, 2, 4, 0, 0},
		{"testdata/arkime_arkime__dns-udp.pcap", 5, -1, -1, 0, 0, 0},
		{"testdata/arkime_arkime__dns-wiresharkrepo.pcap", 38, 19, 19, 0, 0, 0},
		{"testdata/kbandla_dpkt__truncated_dns.pcap", 1, 0, 1, 0, 0, 0},
		{"testdata/kbandla_dpkt__truncated_dns_2.pcap", 1, 0, 1, 0, 0, 1}, // reason "truncated"
		{"testdata/zeek_zeek__ticks-dns.pcap", 10, 10, 0, 0, 0, 0},
		{"testdata/zeek_zeek__tm1t.pcap", 4, 2, 2, 0, 0, 0},
		{"testdata/zeek_zeek__sshfp-trunc.pcap", 4, -1, -1, 0, 0, 0},
		{"testdata/zeek_zeek__dns-two-responses.pcap", 3, 1, 2, 0, 0, 0},
		{"testdata/zeek_zeek__dns-invalid-names.pcap", 3, 3, 0, 0, 0, 3},
		{"testdata/zeek_zeek__dns_original_case.pcap", 1, 1, 0, 0, 0, 0},
		{"testdata/zeek_zeek__pcapng-multi-interface.pcapng", 6, 3, 3, 0, 0, 0},
		{"../../testdata/lab/drop-name.pcap", 26, 18, 8, 0, 0, 0},
		{"../../testdata/lab/baseline.pcap", 86, 43, 43, 0, 0, 0},
		{"../../testdata/lab/loss20.pcap", -1, 929, -1, 0, 0, 0},
	}
	public, _ := filepath.Glob("testdata/*.pcap*")
	if got := len(tests) - 3; got != len(public) || len(public) != 25 {
		t.Errorf("got %d public captures in the table and %d in testdata, want 25 and 25", got, len(public))
	}
	for _, tc := range tests {
		t.Run(filepath.Base(tc.file), func(t *testing.T) {
			rows, st := decodeFile(t, tc.file)
			var q, r, tcp, frag, mal int
			for _, x := range rows {
				if x.msg.QR == 0 {
					q++
				} else {
					r++
				}
				if x.msg.Transport == dnsrow.TransportTCP {
					tcp++
				}
				if x.msg.IPFragmented == 1 {
					frag++
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
			if tcp != tc.tcp || frag != tc.fragmented {
				t.Errorf("rows over TCP, from fragments: got %d, %d, want %d, %d", tcp, frag, tc.tcp, tc.fragmented)
			}
			if mal != tc.malformed {
				t.Errorf("malformed rows: got %d, want %d", mal, tc.malformed)
			}
			for _, e := range ledgerErrors(st) {
				t.Errorf("%s (%+v)", e, st)
			}
			if st.DNSMessages != uint64(len(rows)) {
				t.Errorf("Stats.DNSMessages: got %d, want %d rows", st.DNSMessages, len(rows))
			}
			if st.IPFrag.Held != 0 || st.TCP.Flows != 0 {
				t.Errorf("after Flush: got %d datagrams and %d connections held, want 0 and 0", st.IPFrag.Held, st.TCP.Flows)
			}
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
