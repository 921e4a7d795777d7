// Command storebench times the steps of the store benchmark inside one process, after the
// embedded engine has started and the schema is applied, so that process start and schema set-up
// stay out of the figures (run it under rusage for the whole process's CPU time and peak RSS):
//
//	storebench -db DIR ref -rows N     INSERT INTO a fresh copy of dns_messages SELECT ... FROM numbers(N)
//	storebench -db DIR ingest FILE...  ingest.File of each file into an empty store, as `analyzer ingest` does
//	storebench -db DIR query SQL       run SQL, discard the result
//
// Each prints one tab-separated line: step, seconds, rows, rows per second.
package main

import (
	"bytes"
	"context"
	"flag"
	"fmt"
	"os"
	"runtime/pprof"
	"strconv"
	"strings"
	"time"

	"github.com/dnsloss/dnsloss/internal/chembed"
	"github.com/dnsloss/dnsloss/internal/chstore"
	"github.com/dnsloss/dnsloss/internal/ingest"
	"github.com/dnsloss/dnsloss/queries"
	"github.com/dnsloss/dnsloss/schema"
)

func main() {
	db := flag.String("db", "", "data directory (created if missing)")
	cpuprofile := flag.String("cpuprofile", "", "write a CPU profile of the timed step (Go side only)")
	set := flag.String("set", "", "SET statements to run before the step (e.g. \"SET min_insert_block_size_rows = 262144\")")
	flag.Parse()
	if *db == "" || flag.NArg() == 0 {
		fmt.Fprintln(os.Stderr, "usage: storebench -db DIR ref -rows N | ingest FILE... | query SQL")
		os.Exit(2)
	}
	if err := run(*db, *cpuprofile, *set, flag.Args()); err != nil {
		fmt.Fprintln(os.Stderr, "storebench:", err)
		os.Exit(1)
	}
}

func run(db, cpuprofile, set string, args []string) error {
	ctx := context.Background()
	s, err := chembed.Open(db)
	if err != nil {
		return err
	}
	defer s.Close()
	if _, err := schema.Apply(ctx, s); err != nil {
		return err
	}
	if err := queries.ApplyViews(ctx, s); err != nil {
		return err
	}
	if set != "" {
		if err := s.Exec(ctx, set, nil); err != nil {
			return err
		}
	}
	var step func() (int64, error)
	name := args[0]
	switch name {
	case "ref":
		fs := flag.NewFlagSet("ref", flag.ExitOnError)
		rows := fs.Int64("rows", 1_000_000, "rows to insert")
		fs.Parse(args[1:])
		if err := s.Exec(ctx, "DROP TABLE IF EXISTS bench_ref; CREATE TABLE bench_ref AS dns_messages", nil); err != nil {
			return err
		}
		step = func() (int64, error) { return *rows, s.Exec(ctx, refInsert(*rows), nil) }
	case "ingest":
		fs := flag.NewFlagSet("ingest", flag.ExitOnError)
		blockRows := fs.Int("block", 0, "rows per Native block (0: ingest's default)")
		verbose := fs.Bool("v", false, "print the time of each file and statement on stderr")
		fs.Parse(args[1:])
		files := fs.Args()
		if err := checkCount(ctx, s, 0); err != nil {
			return fmt.Errorf("ingest is timed into an empty store: %w", err)
		}
		step = func() (int64, error) {
			var rows int64
			for _, f := range files {
				t := time.Now()
				var store chstore.Store = s
				if *verbose {
					store = traced{s}
				}
				res, err := ingest.File(ctx, store, f, ingest.Options{BlockRows: *blockRows})
				if err != nil {
					return rows, err
				}
				if *verbose {
					fmt.Fprintf(os.Stderr, "%s\t%.3f\t%d\n", f, time.Since(t).Seconds(), res.Stats.DNSMessages)
				}
				rows += int64(res.Stats.DNSMessages)
			}
			return rows, nil
		}
	case "query":
		if len(args) != 2 {
			return fmt.Errorf("query takes one SQL argument")
		}
		step = func() (int64, error) {
			out, err := s.Query(ctx, args[1], nil, "TSV")
			return int64(bytes.Count(out, []byte("\n"))), err
		}
	default:
		return fmt.Errorf("unknown step %q (want ref, ingest or query)", name)
	}
	if cpuprofile != "" {
		f, err := os.Create(cpuprofile)
		if err != nil {
			return err
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return err
		}
	}
	start := time.Now()
	rows, err := step()
	secs := time.Since(start).Seconds()
	if cpuprofile != "" {
		pprof.StopCPUProfile()
	}
	if err != nil {
		return err
	}
	if name == "ingest" {
		if err := checkCount(ctx, s, rows); err != nil {
			return err
		}
	}
	fmt.Printf("%s\t%.3f\t%d\t%.0f\n", name, secs, rows, float64(rows)/secs)
	return nil
}

// checkCount confirms that dns_messages holds want rows.
func checkCount(ctx context.Context, s chstore.Store, want int64) error {
	out, err := s.Query(ctx, "SELECT count() FROM dns_messages", nil, "TSV")
	if err != nil {
		return err
	}
	got, err := strconv.ParseInt(strings.TrimSpace(string(out)), 10, 64)
	if err != nil {
		return fmt.Errorf("cannot count the rows stored: %w", err)
	}
	if got != want {
		return fmt.Errorf("dns_messages holds %d rows, want %d", got, want)
	}
	return nil
}

// refInsert is the engine's own insert of n rows shaped like the big capture's (23 hours, two
// days' partitions): one host and source, two addresses, names from a small set, queries and responses alternating.
func refInsert(n int64) string {
	return `INSERT INTO bench_ref (host, iface, source, ts, direction, ip_version, src_ip, dst_ip, src_port, dst_port,
	transport, id, qr, opcode, aa, tc, rd, ra, ad, cd, rcode, qname, qtype, qclass, qdcount, ancount, nscount, arcount,
	edns, edns_udp_size, edns_do, edns_version, edns_options, size, ip_fragmented, tcp_reassembled, truncated, malformed)
SELECT 'big', '', '/bench/big.pcap',
	fromUnixTimestamp64Nano(toInt64(1700000000000000000 + number * 82800000), 'UTC'), '', 4,
	if(number % 2 = 0, toIPv6('::ffff:10.53.0.2'), toIPv6('::ffff:10.53.0.1')),
	if(number % 2 = 0, toIPv6('::ffff:10.53.0.1'), toIPv6('::ffff:10.53.0.2')),
	if(number % 2 = 0, 32768 + intDiv(number, 4) % 28000, 53), if(number % 2 = 0, 53, 32768 + intDiv(number, 4) % 28000),
	'udp', intDiv(number, 2) % 65536, number % 2, 0, 0, 0, 1, number % 2, 0, 0, if(number % 6 = 5, 3, 0),
	concat(['www', 'api', 'mail', 'alias', 'nope', 'db'][intDiv(number, 4) % 6 + 1], '.example.com'),
	if(intDiv(number, 2) % 2 = 0, 1, 28), 1, 1, if(number % 2 = 1 AND number % 6 != 5, 1, 0), 0, 0,
	0, 0, 0, 0, [], 33 + number % 20, 0, 0, 0, ''
FROM numbers(` + strconv.FormatInt(n, 10) + `)`
}
