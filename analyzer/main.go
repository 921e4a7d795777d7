// Command analyzer turns captured DNS traffic into per-host loss reports: it ingests capture
// files into ClickHouse (embedded, or a server) and runs the linking views and reports.
// See `analyzer --help` and README.md.
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/dnsloss/dnsloss/internal/analyzercmd"
)

func main() {
	ctx, cancel := context.WithCancel(context.Background())
	sig := make(chan os.Signal, 2)
	signal.Notify(sig, os.Interrupt, syscall.SIGTERM)
	go func() {
		// The first interrupt stops the command at its next step; a statement already running
		// in the embedded engine cannot be cancelled and may take a while, so a second one quits
		// at once (what an interrupted ingest or report leaves is cleaned up by the next run).
		<-sig
		cancel()
		fmt.Fprintln(os.Stderr, "analyzer: interrupted; stopping once the running statement returns (interrupt again to quit now)")
		<-sig
		os.Exit(130)
	}()
	code := analyzercmd.Run(ctx, os.Args, os.Stdout, os.Stderr)
	signal.Stop(sig)
	os.Exit(code)
}
