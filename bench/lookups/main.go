// Command lookups times the lookup linking (dns_lookups), the per-host report (loss_by_host) and
// the whole report (lossreport.Build) on the embedded engine over simulated traffic
// (internal/simcap): glibc clients with the search list of the seed's story at 5% loss each way.
// It is a benchmark, not a test:
//
//	go run ./bench/lookups -messages 10000000 [-db DIR]
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"runtime"
	"strconv"
	"strings"
	"time"

	"github.com/dnsloss/dnsloss/internal/chembed"
	"github.com/dnsloss/dnsloss/internal/dnsrow"
	"github.com/dnsloss/dnsloss/internal/lossreport"
	"github.com/dnsloss/dnsloss/internal/simcap"
	"github.com/dnsloss/dnsloss/queries"
	"github.com/dnsloss/dnsloss/schema"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "lookups:", err)
		os.Exit(1)
	}
}

func run() error {
	want := flag.Int("messages", 1_000_000, "messages to generate (about)")
	loss := flag.Float64("loss", 0.05, "query and response loss")
	keep := flag.String("db", "", "keep the store in this (new) data directory, for queries of your own afterwards")
	report := flag.Bool("report", true, "also time the whole report (lossreport.Build over everything)")
	views := flag.Bool("views", true, "time the queries of the views")
	period := flag.Duration("period", 0, "also time a report of a period this long in the middle of the traffic (e.g. 10m)")
	flag.Parse()
	dir := *keep
	if dir == "" {
		d, err := os.MkdirTemp("", "dnsloss-bench-")
		if err != nil {
			return err
		}
		defer os.RemoveAll(d)
		dir = d
	}
	s, err := chembed.Open(dir)
	if err != nil {
		return err
	}
	defer s.Close()
	ctx := context.Background()
	if _, err := schema.Apply(ctx, s); err != nil {
		return err
	}
	if err := queries.ApplyViews(ctx, s); err != nil {
		return err
	}
	total, lookups, began := 0, 0, time.Now()
	for piece := 0; total < *want; piece++ {
		cfg := simcap.Defaults()
		cfg.Seed, cfg.Hosts, cfg.FirstHost, cfg.Lookups, cfg.Rate = uint64(piece+1), 50, piece*50, 2000, 0.2
		cfg.QLoss, cfg.RLoss = *loss, *loss
		res, err := simcap.Run(cfg)
		if err != nil {
			return err
		}
		b := dnsrow.NewBatch()
		for i := range res.Messages {
			b.Append(&res.Messages[i])
		}
		err = s.InsertNative(ctx, dnsrow.Table, b.Columns(), func(w io.Writer) error {
			buf, err := b.EncodeNative(nil)
			if err != nil {
				return err
			}
			_, err = w.Write(buf)
			return err
		})
		if err != nil {
			return fmt.Errorf("cannot insert: %w", err)
		}
		total += len(res.Messages)
		lookups += len(res.Lookups)
	}
	fmt.Printf("generated and inserted %d messages (%d lookups) in %s; %d CPUs\n", total, lookups, time.Since(began).Round(time.Millisecond), runtime.NumCPU())
	for _, q := range map[bool][]string{false: nil, true: {
		"SELECT count(), countIf(outcome != 'answered'), sum(masked_timeout) FROM dns_lookups",
		"SELECT count(), sum(lookups), sum(failed_lookups), sum(masked_timeouts) FROM loss_by_host",
		"SELECT count() FROM dns_transactions",
	}}[*views] {
		t := time.Now()
		out, err := s.Query(ctx, q, nil, "TSV")
		if err != nil {
			return fmt.Errorf("%s: %w", q, err)
		}
		fmt.Printf("%-95s %8s  %s", q, time.Since(t).Round(time.Millisecond), out)
	}
	if *report {
		if err := timeReport(ctx, s, "analyzer report (lossreport.Build, everything)", lossreport.Options{}); err != nil {
			return err
		}
	}
	if *period > 0 {
		out, err := s.Query(ctx, "SELECT intDiv(toUnixTimestamp64Nano(min(ts)) + toUnixTimestamp64Nano(max(ts)), 2) FROM dns_messages", nil, "TSV")
		if err != nil {
			return err
		}
		mid, err := strconv.ParseInt(strings.TrimSpace(string(out)), 10, 64)
		if err != nil {
			return fmt.Errorf("cannot read the traffic's middle %q: %w", out, err)
		}
		since := time.Unix(0, mid).UTC().Truncate(time.Minute)
		if err := timeReport(ctx, s, fmt.Sprintf("analyzer report --since %s --until +%s (compared with the %s before)", since.Format("15:04"), *period, *period),
			lossreport.Options{Since: since, Until: since.Add(*period), Compare: true}); err != nil {
			return err
		}
	}
	return nil
}

func timeReport(ctx context.Context, s *chembed.Store, what string, opt lossreport.Options) error {
	t := time.Now()
	r, err := lossreport.Build(ctx, s, opt)
	if err != nil {
		return err
	}
	fmt.Printf("%-95s %8s  %d hosts, %d attempts, %d lookups, %d failed, %d masked\n", what, time.Since(t).Round(time.Millisecond),
		len(r.Hosts), r.Total.Attempts, deref(r.Total.Lookups), deref(r.Total.FailedLookups), deref(r.Total.MaskedTimeouts))
	return nil
}

func deref(p *int64) int64 {
	if p == nil {
		return -1
	}
	return *p
}
