package analyzercmd

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/dnsloss/dnsloss/internal/chhttp"
)

// shutdownGrace bounds how long a stopping server waits for requests in flight (an insert that
// is streaming its data) before it closes the engine anyway.
const shutdownGrace = 2 * time.Minute

func serveCommand(stderr io.Writer) *cli.Command {
	return &cli.Command{
		Name:  "serve",
		Usage: "serve the embedded engine over ClickHouse's HTTP interface (for collectors, analyzers, clickhouse-go, curl)",
		Description: `serve holds the data directory (--db) and answers ClickHouse HTTP requests on --listen, so that
collectors keep writing while reports run, from this host or a small fleet, without a ClickHouse server:
  analyzer --db ./dnsloss-data serve --listen 127.0.0.1:8123
  analyzer --clickhouse http://127.0.0.1:8123 report
  curl 'http://127.0.0.1:8123/?query=SELECT+count()+FROM+dns_messages'
With a password (DNSLOSS_SERVE_PASSWORD or --password-file) clients must authenticate as --user
(Basic auth or X-ClickHouse-User/Key). SIGTERM stops it after the requests in flight.`,
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "listen", Value: "127.0.0.1:8123", Usage: "address to listen on (loopback unless you give another)"},
			&cli.StringFlag{Name: "user", Value: "default", Usage: "user name clients must give when a password is set"},
			&cli.StringFlag{Name: "password-file", Usage: "file holding the password clients must give (default: $DNSLOSS_SERVE_PASSWORD; none: no authentication)"},
		},
		Action: func(c *cli.Context) error {
			if err := noArgs(c); err != nil {
				return err
			}
			if c.String("clickhouse") != "" {
				return cli.Exit("serve serves the embedded engine in --db; it takes no --clickhouse", 2)
			}
			if err := checkStoreFlags(c); err != nil {
				return err
			}
			if err := checkStoreDir(c, true); err != nil {
				return err
			}
			password := os.Getenv("DNSLOSS_SERVE_PASSWORD")
			if f := c.String("password-file"); f != "" {
				b, err := os.ReadFile(f)
				if err != nil {
					return fmt.Errorf("cannot read the password file: %w", err)
				}
				password = strings.TrimRight(string(b), "\r\n")
			}
			return serve(c.Context, c.String("db"), c.String("listen"), c.String("user"), password, stderr)
		},
	}
}

// serve runs the HTTP server until ctx ends, then lets the requests in flight finish.
func serve(ctx context.Context, dir, listen, user, password string, stderr io.Writer) error {
	store, engine, err := openServed(dir)
	if err != nil {
		return err
	}
	defer store.Close()
	if err := applySchema(ctx, store); err != nil {
		return err
	}
	log := slog.New(slog.NewTextHandler(stderr, nil))
	h, err := chhttp.New(ctx, chhttp.Config{Engine: engine, User: user, Password: password, Log: log})
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", listen)
	if err != nil {
		return fmt.Errorf("cannot listen on %s: %w", listen, err)
	}
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 30 * time.Second, ErrorLog: slog.NewLogLogger(log.Handler(), slog.LevelWarn)}
	auth := "no authentication"
	if password != "" {
		auth = "user " + user + " with a password"
	}
	fmt.Fprintf(stderr, "analyzer serve: listening on http://%s (%s; %s)\n", ln.Addr(), store.Describe(), auth)
	if tcp, ok := ln.Addr().(*net.TCPAddr); ok && !tcp.IP.IsLoopback() && password == "" {
		fmt.Fprintf(stderr, "analyzer serve: warning: %s is reachable from other hosts and no password is set (DNSLOSS_SERVE_PASSWORD or --password-file)\n", ln.Addr())
	}
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ln) }()
	select {
	case err := <-done:
		return fmt.Errorf("server on %s stopped: %w", ln.Addr(), err)
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), shutdownGrace)
	defer cancel()
	err = srv.Shutdown(sctx)
	if serr := <-done; !errors.Is(serr, http.ErrServerClosed) && err == nil {
		err = serr
	}
	if err != nil {
		return fmt.Errorf("cannot stop the server cleanly: %w", err)
	}
	fmt.Fprintln(stderr, "analyzer serve: stopped")
	return nil
}
