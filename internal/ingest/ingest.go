// Package ingest reads capture files into a store: packets are decoded into dns_messages rows,
// streamed to the store as Native blocks, and the file's counters go to capture_stats.
//
// Ingesting a file replaces what an earlier ingest of the same (host, file) left, so a run that
// was interrupted half-way never leaves duplicates behind. A file is known by its path, checked
// against its contents (packet count, first and last timestamps): one that changed since it was
// ingested is refused rather than skipped, and a copy of an ingested file under another path is
// not stored twice.
package ingest

import (
	"context"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/dnsloss/dnsloss/internal/chstore"
	"github.com/dnsloss/dnsloss/internal/dnsrow"
	"github.com/dnsloss/dnsloss/internal/dnswire"
	"github.com/dnsloss/dnsloss/internal/pcapread"
)

// Options control an ingest.
type Options struct {
	Host     string        // capture point; default: derived from the file name (HostFromPath)
	Ports    []uint16      // DNS ports; default 53
	Replace  bool          // ingest again a file that is already in the store
	Progress io.Writer     // progress lines; nil for none
	Every    time.Duration // progress interval; default 1 s
	// BlockRows is the number of rows per Native block; default 65536.
	BlockRows int
}

// Result says what one file gave.
type Result struct {
	Path    string
	Host    string
	Skipped bool // already in the store and Options.Replace was false, or DuplicateOf is set
	// DuplicateOf is the file already in the store for the same host that holds the same packets
	// (first and last timestamps, packet and message counts); this file's rows were not kept.
	DuplicateOf string
	// Overlaps names files of the same host already in the store whose packets span a time this
	// file's span too: if they captured the same traffic, its queries count twice.
	Overlaps []string
	Stats    dnswire.Stats
	Packets  int64
	// BadRecords counts capture records the reader skipped as inconsistent.
	BadRecords int
	// ReadError is a non-fatal problem reading the file (e.g. a cut-short last record); what was
	// read before it is stored.
	ReadError error
	Elapsed   time.Duration
}

// HostFromPath derives a capture point name from a capture file name: the base name without its
// capture and compression extensions ("/x/web-1.pcap.gz" -> "web-1").
func HostFromPath(path string) string {
	base := filepath.Base(path)
	for {
		ext := strings.ToLower(filepath.Ext(base))
		switch ext {
		case ".gz", ".pcap", ".pcapng", ".cap", ".dmp":
			base = strings.TrimSuffix(base, filepath.Ext(base))
			continue
		}
		break
	}
	if base == "" {
		return "unknown"
	}
	return base
}

// File ingests one capture file into store.
func File(ctx context.Context, store chstore.Store, path string, opt Options) (Result, error) {
	start := time.Now()
	res := Result{Path: path, Host: opt.Host}
	if res.Host == "" {
		res.Host = HostFromPath(path)
	}
	source, err := filepath.Abs(path)
	if err != nil {
		source = path
	}
	rd, err := pcapread.Open(path)
	if err != nil {
		return res, err
	}
	defer rd.Close()

	key := chstore.Params{"h": res.Host, "s": source}
	if !opt.Replace {
		out, err := store.Query(ctx, `SELECT count(), sum(packets), toUnixTimestamp64Nano(min(start_ts)), toUnixTimestamp64Nano(max(end_ts))
			FROM capture_stats WHERE host = {h:String} AND source = {s:String}`, key, "TSV")
		if err != nil {
			return res, fmt.Errorf("cannot check whether %q was ingested before: %w", path, err)
		}
		if f := strings.Fields(string(out)); len(f) == 4 && f[0] != "0" {
			if err := unchanged(path, res.Host, f[1], f[2], f[3]); err != nil {
				return res, err
			}
			res.Skipped = true
			return res, nil
		}
	}
	if err := remove(ctx, store, path, key); err != nil {
		return res, err
	}

	dec := dnswire.NewDecoder(dnswire.Config{Ports: opt.Ports, Host: res.Host, Source: source})
	blockRows := opt.BlockRows
	if blockRows <= 0 {
		blockRows = 65536
	}
	prog := newProgress(opt.Progress, opt.Every, path, rd.Size())
	var firstTS, lastTS int64
	var linkErr error
	checked := map[uint16]bool{}

	write := func(w io.Writer) error {
		batch := dnsrow.NewBatch()
		var buf []byte
		flush := func() error {
			if batch.Rows() == 0 {
				return nil
			}
			var err error
			buf, err = batch.EncodeNative(buf[:0])
			if err != nil {
				return err
			}
			batch.Reset()
			_, err = w.Write(buf)
			return err
		}
		emit := func(m *dnsrow.Message) { batch.Append(m) }
		var pkt pcapread.Packet
		var frame dnswire.Frame
		for {
			if err := ctx.Err(); err != nil {
				return err
			}
			err := rd.Next(&pkt)
			if err == io.EOF {
				break
			}
			if errors.Is(err, pcapread.ErrBadPacket) {
				res.BadRecords++ // the reader skips it and goes on
				continue
			}
			if errors.Is(err, pcapread.ErrTruncatedFile) || errors.Is(err, pcapread.ErrCorrupt) {
				res.ReadError = err // what came before it is stored
				break
			}
			if err != nil {
				return err
			}
			if !checked[pkt.LinkType] {
				checked[pkt.LinkType] = true
				if err := dec.Supported(pkt.LinkType); err != nil && linkErr == nil {
					linkErr = fmt.Errorf("capture %q: %w", path, err)
				}
			}
			if firstTS == 0 || pkt.TS < firstTS {
				firstTS = pkt.TS
			}
			if pkt.TS > lastTS {
				lastTS = pkt.TS
			}
			frame = dnswire.Frame{LinkType: pkt.LinkType, TS: pkt.TS, Data: pkt.Data, WireLen: pkt.WireLen, Iface: pkt.Iface}
			dec.Decode(&frame, emit)
			if batch.Rows() >= blockRows {
				if err := flush(); err != nil {
					return err
				}
			}
			prog.update(rd.Offset(), rd.Packets(), dec.Stats().DNSMessages)
		}
		// What the reassemblers still hold: datagrams and TCP messages that never completed.
		dec.Flush(emit)
		return flush()
	}
	if err := store.InsertNative(ctx, dnsrow.Table, dnsrow.NewBatch().Columns(), write); err != nil {
		if ctx.Err() != nil {
			return res, fmt.Errorf("ingest of %q interrupted: the rows stored so far stay, and reports count them (with a note), until the same ingest runs again and replaces them: %w", path, err)
		}
		return res, fmt.Errorf("cannot ingest %q: %w", path, err)
	}
	res.Stats = dec.Stats()
	res.Packets = rd.Packets()
	if res.Stats.DNSMessages == 0 && linkErr != nil {
		return res, linkErr
	}
	// A copy of a file already in the store (another path, the same packets) is not kept: its
	// rows would count every attempt twice. Checked before its capture_stats row is written, so
	// that an ingest interrupted here leaves rows the next one removes.
	res.DuplicateOf, res.Overlaps, err = otherFiles(ctx, store, res, source, firstTS, lastTS)
	if err != nil {
		return res, err
	}
	if res.DuplicateOf != "" {
		res.Overlaps = nil
		res.Skipped = true
		return res, remove(ctx, store, path, key)
	}
	if err := recordStats(ctx, store, res, source, firstTS, lastTS); err != nil {
		return res, err
	}
	res.Elapsed = time.Since(start)
	prog.done(res)
	return res, nil
}

// remove deletes what an earlier (possibly interrupted) ingest of the file left. The
// capture_stats row goes first: it is what says the file is in the store, so an ingest
// interrupted between the two deletes leaves rows that the next one removes, never a file that
// counts as ingested without its rows. A DELETE can wait up to a second or more for the table's
// background merges, so it runs only where a count (cheap: host leads the sort key) finds rows.
func remove(ctx context.Context, store chstore.Store, path string, key chstore.Params) error {
	for _, t := range []string{"capture_stats", "dns_messages"} {
		out, err := store.Query(ctx, "SELECT count() FROM "+t+" WHERE host = {h:String} AND source = {s:String}", key, "TSV")
		if err != nil {
			return fmt.Errorf("cannot check for an earlier ingest of %q in %s: %w", path, t, err)
		}
		if strings.TrimSpace(string(out)) == "0" {
			continue
		}
		if err := store.Exec(ctx, "DELETE FROM "+t+" WHERE host = {h:String} AND source = {s:String}", key); err != nil {
			return fmt.Errorf("cannot remove an earlier ingest of %q from %s: %w", path, t, err)
		}
	}
	return nil
}

// unchanged checks that the file at path still holds the packets ingested from it: as many, with
// the same first and last timestamps (stored as text: packets, first and last nanoseconds). It
// reads the file through, without decoding. A capture written anew under the same name (a
// capture tool restarted), or one that grew since (still being written), would otherwise be
// skipped, and its new packets never stored.
func unchanged(path, host, packets, first, last string) error {
	n, err1 := strconv.ParseInt(packets, 10, 64)
	lo, err2 := strconv.ParseInt(first, 10, 64)
	hi, err3 := strconv.ParseInt(last, 10, 64)
	if err1 != nil || err2 != nil || err3 != nil {
		return nil
	}
	rd, err := pcapread.Open(path)
	if err != nil {
		return err
	}
	defer rd.Close()
	var pkt pcapread.Packet
	var count, min, max int64
	for {
		err := rd.Next(&pkt)
		if errors.Is(err, pcapread.ErrBadPacket) {
			continue
		}
		if err != nil {
			break // the end, or where an ingest stops reading too
		}
		count++
		if min == 0 || pkt.TS < min {
			min = pkt.TS
		}
		if pkt.TS > max {
			max = pkt.TS
		}
	}
	if count == n && (n == 0 || (min == lo && max == hi)) {
		return nil
	}
	ts := func(ns int64) string { return time.Unix(0, ns).UTC().Format("2006-01-02 15:04:05.000000000Z") }
	was := "no packets"
	if n > 0 {
		was = fmt.Sprintf("%d packets, %s to %s", n, ts(lo), ts(hi))
	}
	now := "no packets"
	if count > 0 {
		now = fmt.Sprintf("%d packets, %s to %s", count, ts(min), ts(max))
	}
	return fmt.Errorf("%q was ingested before for host %s, but it has changed since: it holds %s, the store %s from it; "+
		"give --replace to replace the earlier rows with it, or ingest it under another file name to keep both", path, host, now, was)
}

// otherFiles looks for the files of the host of res already in the store (source's own rows left
// out) whose first to last packet overlaps first to last. dup is one that holds the same packets
// (the same first and last timestamps, packet and DNS message counts): a copy; overlaps names up to
// five others.
func otherFiles(ctx context.Context, store chstore.Store, res Result, source string, first, last int64) (dup string, overlaps []string, err error) {
	if res.Packets == 0 {
		return "", nil, nil
	}
	c := CaptureStats(res.Stats, res.BadRecords)
	out, err := store.Query(ctx, `SELECT source,
			toUnixTimestamp64Nano(start_ts) = {first:Int64} AND toUnixTimestamp64Nano(end_ts) = {last:Int64}
				AND packets = {packets:UInt64} AND dns_messages = {dns:UInt64} AS same
		FROM capture_stats
		WHERE host = {h:String} AND source != {s:String} AND iface = '' AND packets > 0
			AND toUnixTimestamp64Nano(start_ts) <= {last:Int64} AND toUnixTimestamp64Nano(end_ts) >= {first:Int64}
		ORDER BY same DESC, source LIMIT 5`, chstore.Params{"h": res.Host, "s": source, "first": strconv.FormatInt(first, 10),
		"last": strconv.FormatInt(last, 10), "packets": strconv.FormatUint(c["packets"], 10), "dns": strconv.FormatUint(c["dns_messages"], 10)}, "TSVRaw")
	if err != nil {
		return "", nil, fmt.Errorf("cannot compare %q with the files in the store: %w", res.Path, err)
	}
	for _, line := range strings.Split(string(out), "\n") {
		i := strings.LastIndexByte(line, '\t') // a path may hold a tab; the flag does not
		if i < 0 {
			continue
		}
		file, same := line[:i], line[i+1:]
		switch {
		case same == "1" || same == "true":
			return file, nil, nil
		default:
			overlaps = append(overlaps, file)
		}
	}
	return "", overlaps, nil
}

// CaptureStats maps a decoder's counters (and the records the reader skipped) onto the counter
// columns of capture_stats.
func CaptureStats(st dnswire.Stats, badRecords int) map[string]uint64 {
	return map[string]uint64{
		"packets":      st.Packets,
		"dns_messages": st.DNSMessages,
		// Packets that are not DNS, and reassembled datagrams and TCP messages that are not either.
		"non_dns":          st.NonDNS + st.ShortDNS + st.UnsupportedLink + st.FragNotDNS + st.TCPShort,
		"malformed":        st.Malformed,
		"truncated":        st.Truncated,
		"decode_errors":    st.DecodeErrors + uint64(badRecords),
		"reassembly_drops": st.ReassemblyDrops(),
	}
}

func recordStats(ctx context.Context, store chstore.Store, res Result, source string, first, last int64) error {
	c := CaptureStats(res.Stats, res.BadRecords)
	u := func(k string) string { return strconv.FormatUint(c[k], 10) }
	p := chstore.Params{
		"host": res.Host, "source": source,
		"start": strconv.FormatInt(first, 10), "end": strconv.FormatInt(last, 10),
		"packets": u("packets"), "dns": u("dns_messages"), "non_dns": u("non_dns"), "malformed": u("malformed"),
		"truncated": u("truncated"), "errors": u("decode_errors"), "reassembly": u("reassembly_drops"),
	}
	err := store.Exec(ctx, `INSERT INTO capture_stats
		(host, source, iface, start_ts, end_ts, packets, kernel_drops, tool_drops, dns_messages, non_dns, malformed, truncated, decode_errors, reassembly_drops, rows_dropped)
		SELECT {host:String}, {source:String}, '', fromUnixTimestamp64Nano({start:Int64}, 'UTC'), fromUnixTimestamp64Nano({end:Int64}, 'UTC'),
		{packets:UInt64}, 0, 0, {dns:UInt64}, {non_dns:UInt64}, {malformed:UInt64}, {truncated:UInt64}, {errors:UInt64}, {reassembly:UInt64}, 0`, p)
	if err != nil {
		return fmt.Errorf("cannot record capture statistics of %q: %w", res.Path, err)
	}
	return nil
}
