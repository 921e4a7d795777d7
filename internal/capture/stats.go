package capture

import (
	"fmt"
	"time"

	"github.com/ClickHouse/ch-go/proto"
)

// StatsTable is the table StatsRows go to (schema/0002_capture_stats.sql).
const StatsTable = "capture_stats"

// StatsRow is one capture_stats row: what one interface's capture saw and lost in one interval.
type StatsRow struct {
	Host, Source, Iface string
	Start, End          time.Time
	Packets             uint64 // received by the collector
	KernelDrops         uint64 // dropped by the kernel (ring full): PACKET_STATISTICS / pcap_stats
	ToolDrops           uint64 // dropped by dnsloss: RowsDropped + ReassemblyDrops (+ queue drops)
	DNSMessages         uint64
	NonDNS              uint64
	Malformed           uint64
	Truncated           uint64
	DecodeErrors        uint64
	ReassemblyDrops     uint64
	RowsDropped         uint64 // rows lost before the store (spool bound, rejected blocks)
}

// EncodeStats encodes rows as one Native block with capture_stats' columns.
func EncodeStats(rows []StatsRow) ([]byte, error) {
	data, _, err := encodeStats(rows)
	return data, err
}

// encodeStats is EncodeStats that also returns the block's column names, in order.
func encodeStats(rows []StatsRow) ([]byte, []string, error) {
	host := new(proto.ColStr).LowCardinality()
	source := new(proto.ColStr).LowCardinality()
	iface := new(proto.ColStr).LowCardinality()
	start := new(proto.ColDateTime64).WithPrecision(proto.PrecisionNano)
	end := new(proto.ColDateTime64).WithPrecision(proto.PrecisionNano)
	var packets, kdrops, tdrops, dns, nondns, malformed, truncated, decErr, reasm, dropped proto.ColUInt64
	for _, r := range rows {
		host.Append(r.Host)
		source.Append(r.Source)
		iface.Append(r.Iface)
		start.AppendRaw(proto.DateTime64(r.Start.UnixNano()))
		end.AppendRaw(proto.DateTime64(r.End.UnixNano()))
		packets.Append(r.Packets)
		kdrops.Append(r.KernelDrops)
		tdrops.Append(r.ToolDrops)
		dns.Append(r.DNSMessages)
		nondns.Append(r.NonDNS)
		malformed.Append(r.Malformed)
		truncated.Append(r.Truncated)
		decErr.Append(r.DecodeErrors)
		reasm.Append(r.ReassemblyDrops)
		dropped.Append(r.RowsDropped)
	}
	input := proto.Input{
		{Name: "host", Data: host},
		{Name: "source", Data: source},
		{Name: "iface", Data: iface},
		{Name: "start_ts", Data: start},
		{Name: "end_ts", Data: end},
		{Name: "packets", Data: &packets},
		{Name: "kernel_drops", Data: &kdrops},
		{Name: "tool_drops", Data: &tdrops},
		{Name: "dns_messages", Data: &dns},
		{Name: "non_dns", Data: &nondns},
		{Name: "malformed", Data: &malformed},
		{Name: "truncated", Data: &truncated},
		{Name: "decode_errors", Data: &decErr},
		{Name: "reassembly_drops", Data: &reasm},
		{Name: "rows_dropped", Data: &dropped},
	}
	var buf proto.Buffer
	blk := proto.Block{Columns: len(input), Rows: len(rows)}
	if err := blk.EncodeRawBlock(&buf, 0, input); err != nil {
		return nil, nil, fmt.Errorf("cannot encode %d capture_stats rows: %w", len(rows), err)
	}
	return buf.Buf, columnNames(input), nil
}

// columnNames returns the names of input's columns, in order.
func columnNames(input proto.Input) []string {
	names := make([]string, len(input))
	for i, c := range input {
		names[i] = c.Name
	}
	return names
}
