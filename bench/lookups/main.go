// Command lookups times the lookup linking (dns_lookups) and the per-host report (loss_by_host)
// on the embedded engine over simulated traffic (internal/simcap): glibc clients with the
// search list of the seed's story at 5% loss each way. It is a benchmark, not a test:
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
	"time"

	"github.com/dnsloss/dnsloss/internal/chembed"
	"github.com/dnsloss/dnsloss/internal/dnsrow"
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
	for _, q := range []string{
		"SELECT count(), countIf(outcome != 'answered'), sum(masked_timeout) FROM dns_lookups",
		"SELECT count(), sum(lookups), sum(failed_lookups), sum(masked_timeouts) FROM loss_by_host",
		"SELECT count() FROM dns_transactions",
	} {
		t := time.Now()
		out, err := s.Query(ctx, q, nil, "TSV")
		if err != nil {
			return fmt.Errorf("%s: %w", q, err)
		}
		fmt.Printf("%-95s %8s  %s", q, time.Since(t).Round(time.Millisecond), out)
	}
	return nil
}
