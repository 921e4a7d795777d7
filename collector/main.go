// Command collector captures DNS traffic (live, or from capture files) and turns every DNS
// message into a dns_messages row. It does not link the embedded ClickHouse engine.
// See `collector --help` and README.md.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"

	"github.com/dnsloss/dnsloss/internal/collectorcmd"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := collectorcmd.Run(ctx, os.Args, os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}
