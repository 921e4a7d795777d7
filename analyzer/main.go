// Command analyzer turns captured DNS traffic into per-host loss reports: it ingests capture
// files into ClickHouse (embedded, or a server) and runs the linking views and reports.
// See `analyzer --help` and README.md.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"

	"github.com/dnsloss/dnsloss/internal/analyzercmd"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := analyzercmd.Run(ctx, os.Args, os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}
