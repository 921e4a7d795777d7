// Command dnsgen writes the fleet-sized benchmark input: one pcap per client host, about
// -messages DNS messages in all, with retries, failovers and search-list fallbacks caused by
// random loss.
//
//	go run ./bench/cmd/dnsgen -hosts 50 -messages 10000000 -out out/bench/sim
package main

import (
	"flag"
	"fmt"
	"os"

	"github.com/dnsloss/dnsloss/bench/dnsgen"
)

func main() {
	var cfg dnsgen.Config
	flag.IntVar(&cfg.Hosts, "hosts", 50, "capture hosts (one pcap each)")
	flag.IntVar(&cfg.Messages, "messages", 10_000_000, "DNS messages in all (about)")
	flag.Float64Var(&cfg.QLoss, "qloss", 0.02, "probability that a query is lost")
	flag.Float64Var(&cfg.RLoss, "rloss", 0.02, "probability that a response is lost")
	flag.Uint64Var(&cfg.Seed, "seed", 1, "random seed")
	flag.DurationVar(&cfg.Duration, "duration", 0, "lookups start within this time (default 1h)")
	out := flag.String("out", "out/bench/sim", "output directory")
	flag.Parse()
	res, err := dnsgen.Generate(cfg, *out)
	if err != nil {
		fmt.Fprintln(os.Stderr, "dnsgen:", err)
		os.Exit(1)
	}
	fmt.Printf("%s: %d files, %d DNS messages, %d lookups\n", *out, len(res.Files), res.Messages, res.Lookups)
}
