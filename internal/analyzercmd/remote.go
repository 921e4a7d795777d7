package analyzercmd

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"os"
	"strings"

	"github.com/urfave/cli/v2"

	"github.com/dnsloss/dnsloss/internal/chserver"
	"github.com/dnsloss/dnsloss/internal/chstore"
	"github.com/dnsloss/dnsloss/queries"
	"github.com/dnsloss/dnsloss/schema"
)

// remoteFlags select a ClickHouse server (or `analyzer serve`) instead of the embedded engine.
func remoteFlags() []cli.Flag {
	return []cli.Flag{
		&cli.StringFlag{
			Name: "clickhouse", EnvVars: []string{"DNSLOSS_CLICKHOUSE"},
			Usage: "work against a ClickHouse server or analyzer serve instead of --db: http(s)://host:8123/db " +
				"(every command) or clickhouse(s)://host:9000/db (native protocol); user and password from " +
				"$DNSLOSS_CLICKHOUSE_USER and $DNSLOSS_CLICKHOUSE_PASSWORD, never from the URL",
		},
		&cli.StringFlag{Name: "clickhouse-password-file", Usage: "file holding the ClickHouse password (instead of $DNSLOSS_CLICKHOUSE_PASSWORD)"},
		&cli.StringFlag{Name: "clickhouse-ca-file", Usage: "PEM file of the CA that signed the server's certificate (https://, clickhouses://)"},
	}
}

// openStore opens the server named by --clickhouse, or else the embedded engine in --db.
func openStore(c *cli.Context) (chstore.Store, error) {
	raw := c.String("clickhouse")
	if raw == "" {
		return openEmbedded(c.String("db"))
	}
	opt := chserver.Options{User: os.Getenv("DNSLOSS_CLICKHOUSE_USER"), Password: os.Getenv("DNSLOSS_CLICKHOUSE_PASSWORD")}
	if f := c.String("clickhouse-password-file"); f != "" {
		b, err := os.ReadFile(f)
		if err != nil {
			return nil, fmt.Errorf("cannot read the ClickHouse password file: %w", err)
		}
		opt.Password = strings.TrimRight(string(b), "\r\n")
	}
	if f := c.String("clickhouse-ca-file"); f != "" {
		pem, err := os.ReadFile(f)
		if err != nil {
			return nil, fmt.Errorf("cannot read the ClickHouse CA file: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("ClickHouse CA file %q holds no PEM certificate", f)
		}
		opt.TLS = &tls.Config{RootCAs: pool}
	}
	return chserver.Open(c.Context, raw, opt)
}

// applySchema brings the store's tables and views up to date.
func applySchema(ctx context.Context, s chstore.Store) error {
	if _, err := schema.Apply(ctx, s); err != nil {
		return err
	}
	return queries.ApplyViews(ctx, s)
}
