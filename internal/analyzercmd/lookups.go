package analyzercmd

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/dnsloss/dnsloss/internal/chstore"
	"github.com/dnsloss/dnsloss/internal/lookups"
)

// lookupsCommand lists stub-resolver lookups (view dns_lookups), one readable line each.
func lookupsCommand(stdout io.Writer) *cli.Command {
	return &cli.Command{
		Name:  "lookups",
		Usage: "list stub-resolver lookups (what one getaddrinfo() caused on the wire), one line each",
		Description: `Lists the rows of the dns_lookups view, the earliest first. Each lookup is one line, e.g.
  10.53.0.2 www.example.com A/AAAA: no answer from 10.53.0.1 at +0s, +5s; tried www.example.com.in.corp.example -> NXDOMAIN at +10s (NXDOMAIN hides a timeout)

  analyzer lookups --failed                    lookups that got no positive answer
  analyzer lookups --masked --host web-1       where an NXDOMAIN/NODATA hid a timeout
  analyzer lookups --name www.example.com --since 2026-12-03T10:00:00Z --format json

With --since or --until, only the traffic around that range is linked (a day's lookups of a store
that keeps a month cost a day); without, the whole store.`,
		Flags: []cli.Flag{
			&cli.BoolFlag{Name: "failed", Usage: "only lookups without a positive answer"},
			&cli.BoolFlag{Name: "masked", Usage: "only lookups where an NXDOMAIN or NODATA hid a timeout (masked_timeout)"},
			&cli.StringFlag{Name: "host", Usage: "only this capture host"},
			&cli.StringFlag{Name: "name", Usage: "only lookups of this name (as the application asked for it)"},
			&cli.StringFlag{Name: "since", Usage: "lookups that started at or after (RFC 3339, YYYY-MM-DD[ HH:MM[:SS]] UTC, or a duration back from now)"},
			&cli.StringFlag{Name: "until", Usage: "lookups that started before (same forms)"},
			&cli.IntFlag{Name: "limit", Value: 1000, Usage: "at most this many lookups, the earliest (0: all of them)"},
			&cli.StringFlag{Name: "format", Aliases: []string{"f"}, Value: "text", Usage: "text (one line a lookup) or json (one object a line)"},
		},
		Action: func(c *cli.Context) error {
			if err := noArgs(c); err != nil {
				return err
			}
			if n := c.Int("limit"); n < 0 {
				return cli.Exit(fmt.Sprintf("--limit %d: give a number of lookups, or 0 for all of them", n), 2)
			}
			for _, f := range []string{"host", "name"} {
				if c.IsSet(f) && strings.TrimSpace(c.String(f)) == "" {
					return cli.Exit(fmt.Sprintf("--%s is empty: give one, or leave --%s out for every %s", f, f, f), 2)
				}
			}
			f := lookups.Filter{Failed: c.Bool("failed"), Masked: c.Bool("masked"), Host: c.String("host"), Name: c.String("name"), Limit: c.Int("limit")}
			now := time.Now()
			for _, b := range []struct {
				flag string
				to   *time.Time
			}{{"since", &f.Since}, {"until", &f.Until}} {
				if v := c.String(b.flag); v != "" {
					t, err := parseTime(v, now)
					if err != nil {
						return cli.Exit(fmt.Sprintf("--%s: %v", b.flag, err), 2)
					}
					*b.to = t
				}
			}
			if !f.Since.IsZero() && !f.Until.IsZero() && !f.Since.Before(f.Until) {
				return cli.Exit(fmt.Sprintf("--since %s is not before --until %s", c.String("since"), c.String("until")), 2)
			}
			format := c.String("format")
			if format != "text" && format != "json" {
				return cli.Exit(fmt.Sprintf("unknown format %q (want text or json)", format), 2)
			}
			return withStore(c, func(ctx context.Context, s chstore.Store) error {
				ls, err := lookups.List(ctx, s, f)
				if err != nil {
					return err
				}
				enc := json.NewEncoder(stdout)
				for _, l := range ls {
					if format == "json" {
						if err := enc.Encode(l); err != nil {
							return err
						}
						continue
					}
					if _, err := fmt.Fprintf(stdout, "%s %s %s\n", l.Start().Format("2006-01-02 15:04:05.000Z"), l.Host, l.Line()); err != nil {
						return err
					}
				}
				return nil
			})
		},
	}
}
