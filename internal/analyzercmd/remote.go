package analyzercmd

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
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
	if err := checkStoreFlags(c); err != nil {
		return nil, err
	}
	raw := c.String("clickhouse")
	if raw == "" {
		if err := checkStoreDir(c, createsStore(c)); err != nil {
			return nil, err
		}
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

// checkStoreFlags refuses flags that name no store, or two: an empty --db (the engine would make
// its store in the current directory), and --db with --clickhouse (one of them would be ignored),
// unless only $DNSLOSS_DB sets the one and the command line the other: that says which is meant,
// and $DNSLOSS_DB not being used is said on stderr.
func checkStoreFlags(c *cli.Context) error {
	db := flagSource(c, "db", "DNSLOSS_DB")
	if c.String("clickhouse") != "" {
		if c.IsSet("db") && c.String("db") != "" {
			ch := flagSource(c, "clickhouse", "DNSLOSS_CLICKHOUSE")
			if strings.HasPrefix(db, "$") && !strings.HasPrefix(ch, "$") {
				// The command line asks for the server; the environment's store is only a default.
				fmt.Fprintf(c.App.ErrWriter, "analyzer: %s is not used: --clickhouse is given\n", db)
				return nil
			}
			return cli.Exit(fmt.Sprintf("%s and %s both given: a command works on the embedded engine in --db or on the server of --clickhouse, not both; %s or %s",
				db, ch, leaveOut(db), leaveOut(ch)), 2)
		}
		return nil
	}
	if strings.TrimSpace(c.String("db")) == "" {
		if strings.HasPrefix(db, "$") {
			return cli.Exit(fmt.Sprintf("%s is empty: set it to the store's data directory, or unset it for %s", db, defaultDB), 2)
		}
		return cli.Exit(fmt.Sprintf("--db is empty: give the store's data directory (e.g. --db %s), or leave --db out for %s", defaultDB, defaultDB), 2)
	}
	return nil
}

// flagSource names where the value of a global flag came from: "--db", or "$DNSLOSS_DB".
func flagSource(c *cli.Context, name, env string) string {
	if v, ok := os.LookupEnv(env); ok && v == c.String(name) {
		return "$" + env
	}
	return "--" + name
}

// leaveOut says how to drop a value given by flagSource's source.
func leaveOut(source string) string {
	if env, ok := strings.CutPrefix(source, "$"); ok {
		return "unset " + env
	}
	return "leave " + source + " out"
}

// storeMakers are the commands that may make a new store in --db (they write into it); the
// others only read one, and refuse a --db where there is none: a mistyped --db made an empty
// store and reported that it held no queries.
var storeMakers = map[string]bool{"ingest": true, "analyze": true, "settings set": true, "schema apply": true, "serve": true}

// createsStore says whether c's command may make a new store.
func createsStore(c *cli.Context) bool {
	name := helpName(c)
	if i := strings.IndexByte(name, ' '); i >= 0 {
		name = name[i+1:]
	}
	return storeMakers[name]
}

// isStore says whether dir holds a store: the lock file this program writes into every store it
// opens (chembed.LockFile), or the layout of the engine's data directory (its metadata folder).
func isStore(dir string) bool {
	if fi, err := os.Stat(filepath.Join(dir, "dnsloss.lock")); err == nil && fi.Mode().IsRegular() {
		return true
	}
	fi, err := os.Stat(filepath.Join(dir, "metadata"))
	return err == nil && fi.IsDir()
}

// checkStoreDir refuses an embedded store's --db that holds no store unless create (and then one
// that does not exist, or an empty directory, is made a store), and a directory that holds
// other files than a store's in any case: the engine would turn it into a store.
func checkStoreDir(c *cli.Context, create bool) error {
	dir := c.String("db")
	fi, err := os.Stat(dir)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		if create {
			return nil
		}
		return cli.Exit(fmt.Sprintf("no store at %s: ingest a capture first (analyzer ingest FILE), or give --db / $DNSLOSS_DB the store's directory", dir), 2)
	case err != nil:
		return nil // the engine says what is wrong (a file on the way, no permission)
	case !fi.IsDir():
		return cli.Exit(fmt.Sprintf("%s is a file, not a store's directory: give --db / $DNSLOSS_DB the store's directory (or a new one to make a store in)", dir), 2)
	case isStore(dir):
		return nil
	}
	entries, err := os.ReadDir(dir)
	if err != nil || len(entries) == 0 {
		return nil // an empty directory becomes a store, for every command, as one made for it
	}
	return cli.Exit(fmt.Sprintf("%s holds other files and no store: give --db / $DNSLOSS_DB the store's directory, or a new or empty one to make a store in", dir), 2)
}
