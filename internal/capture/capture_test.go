package capture

import (
	"errors"
	"io"
	"reflect"
	"testing"
	"time"

	"github.com/google/gopacket"
	"github.com/google/gopacket/layers"
	"github.com/google/gopacket/pcap"

	"github.com/dnsloss/dnsloss/internal/pcapread"
	"github.com/dnsloss/dnsloss/internal/sink"
)

// The default filter keeps DNS over UDP and TCP and every IP fragment. Expected counts come from
// testdata/SOURCES.tsv (the captures' descriptions), not from the filter.
func TestDefaultFilter(t *testing.T) {
	tests := []struct {
		file    string
		packets int
		match   int
	}{
		{"DNS-OARC_dnscap__dns.pcap", 133, 82},    // 41 queries + 41 responses; the rest is ICMP
		{"DNS-OARC_dnscap__dns6.pcap", 2, 2},      // IPv6 UDP query and response
		{"DNS-OARC_dnscap__frags.pcap", 495, 495}, // all fragments of DNS messages
		{"arkime_arkime__dns-tcp.pcap", 20, 20},   // DNS over TCP, handshake included
		{"zeek_zeek__ticks-dns.pcap", 10, 10},
	}
	for _, tc := range tests {
		t.Run(tc.file, func(t *testing.T) {
			rd, err := pcapread.Open("testdata/" + tc.file)
			if err != nil {
				t.Fatal(err)
			}
			defer rd.Close()
			filters := map[uint16]*pcap.BPF{}
			var pkt pcapread.Packet
			n, match := 0, 0
			for {
				err := rd.Next(&pkt)
				if errors.Is(err, io.EOF) {
					break
				}
				if err != nil {
					t.Fatal(err)
				}
				f := filters[pkt.LinkType]
				if f == nil {
					f, err = pcap.NewBPF(layers.LinkType(pkt.LinkType), 65535, DefaultFilter(nil))
					if err != nil {
						t.Fatalf("compiling %q: %v", DefaultFilter(nil), err)
					}
					filters[pkt.LinkType] = f
				}
				n++
				ci := gopacket.CaptureInfo{CaptureLength: len(pkt.Data), Length: pkt.WireLen}
				if f.Matches(ci, pkt.Data) {
					match++
				}
			}
			if n != tc.packets || match != tc.match {
				t.Errorf("got %d of %d packets through the filter, want %d of %d", match, n, tc.match, tc.packets)
			}
		})
	}
	if got, want := DefaultFilter([]uint16{53, 5353}), "((udp or tcp) and (port 53 or port 5353)) or (ip[6:2] & 0x1fff != 0) or (ip6[6] == 44)"; got != want {
		t.Errorf("DefaultFilter(53, 5353): got %q, want %q", got, want)
	}
	if _, err := compileBPF(1, 65535, DefaultFilter(nil)); err != nil {
		t.Errorf("compiling for the afpacket socket: %v", err)
	}
	if _, err := compileBPF(1, 65535, "port fifty-three"); err == nil {
		t.Error("a bad filter compiled")
	}
}

func TestEncodeStats(t *testing.T) {
	start := time.Unix(1767225600, 0)
	rows := []StatsRow{
		{Host: "h", Source: "afpacket:eth0", Iface: "eth0", Start: start, End: start.Add(10 * time.Second),
			Packets: 100, KernelDrops: 3, ToolDrops: 5, DNSMessages: 90, NonDNS: 4, Malformed: 1, Truncated: 2,
			DecodeErrors: 6, ReassemblyDrops: 0, RowsDropped: 5},
		{Host: "h", Source: "afpacket:eth1", Iface: "eth1", Start: start, End: start.Add(10 * time.Second)},
	}
	data, err := EncodeStats(rows)
	if err != nil {
		t.Fatal(err)
	}
	cols, err := sink.DecodeNative(data)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]any{}
	var names []string
	for _, c := range cols {
		got[c.Name] = c.Values
		names = append(names, c.Name)
	}
	// The columns of schema/0002_capture_stats.sql, in its order.
	wantNames := []string{"host", "source", "iface", "start_ts", "end_ts", "packets", "kernel_drops", "tool_drops",
		"dns_messages", "non_dns", "malformed", "truncated", "decode_errors", "reassembly_drops", "rows_dropped"}
	if !reflect.DeepEqual(names, wantNames) {
		t.Errorf("columns: got %v, want %v", names, wantNames)
	}
	for col, want := range map[string]any{
		"iface": []string{"eth0", "eth1"}, "packets": []uint64{100, 0}, "kernel_drops": []uint64{3, 0},
		"tool_drops": []uint64{5, 0}, "decode_errors": []uint64{6, 0}, "rows_dropped": []uint64{5, 0},
	} {
		if !reflect.DeepEqual(got[col], want) {
			t.Errorf("%s: got %v, want %v", col, got[col], want)
		}
	}
	if ts := got["end_ts"].([]time.Time); !ts[0].Equal(start.Add(10 * time.Second)) {
		t.Errorf("end_ts: got %v", ts[0])
	}
}
