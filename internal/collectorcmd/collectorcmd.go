// Package collectorcmd is the collector program's command line. The collector decodes DNS
// traffic into dns_messages rows; it never links the embedded engine, so it runs on hosts without
// libchdb.so. collector/main.go only calls Run.
package collectorcmd

import (
	"context"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"strconv"
	"strings"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/dnsloss/dnsloss/internal/dnsrow"
	"github.com/dnsloss/dnsloss/internal/dnswire"
	"github.com/dnsloss/dnsloss/internal/ingest"
	"github.com/dnsloss/dnsloss/internal/pcapread"
)

// Run runs the collector with args (args[0] is the program name) and returns the exit status.
func Run(ctx context.Context, args []string, stdout, stderr io.Writer) (code int) {
	app := newApp(stdout, stderr)
	// An unknown command is a usage error (exit status 2), as in the analyzer: the cli package
	// says "No help topic" and exits 3, which here means a --fail-if threshold was crossed.
	app.CommandNotFound = func(c *cli.Context, name string) {
		fmt.Fprintf(stderr, "collector: no command %q (see collector --help)\n", name)
		code = 2
	}
	if err := app.RunContext(ctx, args); err != nil {
		var ec cli.ExitCoder
		if errors.As(err, &ec) {
			if msg := err.Error(); msg != "" {
				fmt.Fprintln(stderr, "collector:", msg)
			}
			return ec.ExitCode()
		}
		fmt.Fprintln(stderr, "collector:", err)
		return 1
	}
	return code
}

func newApp(stdout, stderr io.Writer) *cli.App {
	return &cli.App{
		Name:  "collector",
		Usage: "decode DNS traffic into dns_messages rows",
		Description: `collector captures DNS traffic and turns every DNS message into one row.

  collector read capture.pcap        print the rows of a capture file (no store needed)
  collector capture -i eth0 --clickhouse clickhouse://host:9000/db   live capture into ClickHouse`,
		Writer:    stdout,
		ErrWriter: stderr,
		// Run reports errors and picks the exit status; without this, cli would print an
		// ExitCoder's message itself, to os.Stderr, and exit the process there.
		ExitErrHandler: func(*cli.Context, error) {},
		OnUsageError:   usageError,
		Commands: []*cli.Command{
			captureCommand(stderr),
			{
				Name:         "read",
				Usage:        "decode a capture file and print one line per DNS message",
				ArgsUsage:    "FILE",
				OnUsageError: usageError,
				Flags: []cli.Flag{
					&cli.StringFlag{Name: "host", Usage: "capture point name (default: from the file name)"},
					&cli.StringFlag{Name: "ports", Value: "53", Usage: "comma-separated ports that carry DNS"},
					&cli.StringFlag{Name: "format", Aliases: []string{"f"}, Value: "table", Usage: "table, json (one object a line) or csv"},
				},
				Action: func(c *cli.Context) error {
					for _, a := range c.Args().Tail() {
						if strings.HasPrefix(a, "-") {
							return cli.Exit(fmt.Sprintf("flag %s after FILE: put flags before it (collector read %s ... FILE)", a, a), 2)
						}
					}
					if c.NArg() != 1 {
						return cli.Exit("read takes one capture FILE", 2)
					}
					return read(c, c.Args().First(), stdout, stderr)
				},
			},
		},
	}
}

// usageError makes a flag that does not parse a usage error (exit status 2), pointing at the
// help rather than printing the whole of it.
func usageError(c *cli.Context, err error, _ bool) error {
	return cli.Exit(fmt.Sprintf("%v (see %s --help)", err, c.Command.HelpName), 2)
}

var readColumns = []string{"ts", "host", "src", "dst", "transport", "id", "qr", "opcode", "rcode", "qname", "qtype", "ancount", "size", "malformed"}

func read(c *cli.Context, path string, stdout, stderr io.Writer) error {
	ports, err := dnswire.ParsePorts(c.String("ports"))
	if err != nil {
		return cli.Exit(err.Error(), 2)
	}
	host := c.String("host")
	if host == "" {
		host = ingest.HostFromPath(path)
	}
	format := c.String("format")
	if format != "table" && format != "json" && format != "csv" {
		return cli.Exit(fmt.Sprintf("unknown format %q (want table, json or csv)", format), 2)
	}
	rd, err := pcapread.Open(path)
	if err != nil {
		return err
	}
	defer rd.Close()
	dec := dnswire.NewDecoder(dnswire.Config{Ports: ports, Host: host, Source: path})
	cw := csv.NewWriter(stdout)
	enc := json.NewEncoder(stdout)
	if format == "csv" {
		cw.Write(readColumns)
	}
	var werr error
	emit := func(m *dnsrow.Message) {
		if werr != nil {
			return
		}
		src := netip.AddrPortFrom(netip.AddrFrom16(m.SrcIP).Unmap(), m.SrcPort).String()
		dst := netip.AddrPortFrom(netip.AddrFrom16(m.DstIP).Unmap(), m.DstPort).String()
		ts := time.Unix(0, m.TS).UTC().Format("2006-01-02T15:04:05.000000000Z")
		vals := []string{ts, string(m.Host), src, dst, dnsrow.TransportName(m.Transport), strconv.Itoa(int(m.ID)),
			strconv.Itoa(int(m.QR)), strconv.Itoa(int(m.Opcode)), strconv.Itoa(int(m.Rcode)), string(m.QName),
			strconv.Itoa(int(m.QType)), strconv.Itoa(int(m.ANCount)), strconv.Itoa(int(m.Size)), string(m.Malformed)}
		switch format {
		case "csv":
			werr = cw.Write(vals)
		case "json":
			obj := make(map[string]string, len(vals))
			for i, k := range readColumns {
				obj[k] = vals[i]
			}
			werr = enc.Encode(obj)
		default:
			_, werr = fmt.Fprintf(stdout, "%s %s > %s %s id=%s qr=%s rcode=%s %s type=%s an=%s size=%s %s\n",
				vals[0], vals[2], vals[3], vals[4], vals[5], vals[6], vals[8], vals[9], vals[10], vals[11], vals[12], vals[13])
		}
	}
	var pkt pcapread.Packet
	bad := 0
	for {
		err := rd.Next(&pkt)
		if err == io.EOF {
			break
		}
		if errors.Is(err, pcapread.ErrBadPacket) {
			bad++
			fmt.Fprintf(stderr, "collector: warning: %v (skipped)\n", err)
			continue
		}
		if errors.Is(err, pcapread.ErrTruncatedFile) || errors.Is(err, pcapread.ErrCorrupt) {
			fmt.Fprintf(stderr, "collector: warning: %v (the packets before it were read)\n", err)
			break
		}
		if err != nil {
			return err
		}
		dec.Decode(&dnswire.Frame{LinkType: pkt.LinkType, TS: pkt.TS, Data: pkt.Data, WireLen: pkt.WireLen, Iface: pkt.Iface}, emit)
		if werr != nil {
			return werr
		}
	}
	// What the reassemblers still hold: datagrams and TCP messages that never completed.
	dec.Flush(emit)
	if werr != nil {
		return werr
	}
	cw.Flush()
	cs := ingest.CaptureStats(dec.Stats(), bad)
	fmt.Fprintf(stderr, "%s: %d packets, %d DNS messages, %d not DNS, %d undecodable, %d lost to reassembly\n",
		path, cs["packets"], cs["dns_messages"], cs["non_dns"], cs["decode_errors"], cs["reassembly_drops"])
	return cw.Error()
}
