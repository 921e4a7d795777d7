package collectorcmd

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"github.com/dnsloss/dnsloss/internal/dnswire"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"strings"
	"syscall"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/dnsloss/dnsloss/internal/capture"
	"github.com/dnsloss/dnsloss/internal/metrics"
	"github.com/dnsloss/dnsloss/internal/sink"
)

const captureDescription = `Captures DNS traffic on one or more interfaces and inserts one dns_messages row per DNS
message into ClickHouse, with a capture_stats row per interface every --stats-interval.

  collector capture -i eth0 --clickhouse clickhouse://ch1:9000/dnsloss
  collector capture -i any --source pcap --clickhouse http://127.0.0.1:8123 --metrics-listen 127.0.0.1:9153

Sources: afpacket (default) reads TPACKET_V3 rings, --workers of them per interface in one
PACKET_FANOUT group that hashes on the flow (after IP defragmentation), so a query, its retries
and its response reach the same worker; pcap uses libpcap (one handle per interface).

Privileges: AF_PACKET sockets need CAP_NET_RAW; PACKET_FANOUT and large rings need
CAP_NET_ADMIN. Run as root, or give the binary the capabilities
  setcap cap_net_raw,cap_net_admin+eip /usr/local/bin/collector
or run it from systemd as an unprivileged user:
  [Unit]
  Description=dnsloss collector
  After=network-online.target
  Wants=network-online.target
  [Service]
  ExecStart=/usr/local/bin/collector capture -i eth0 --clickhouse clickhouse://ch1:9000/dnsloss --metrics-listen 127.0.0.1:9153
  Environment=DNSLOSS_CLICKHOUSE_USER=dnsloss
  EnvironmentFile=-/etc/dnsloss/collector.env   # DNSLOSS_CLICKHOUSE_PASSWORD=...
  DynamicUser=yes
  StateDirectory=dnsloss                         # the spool: /var/lib/dnsloss/spool
  AmbientCapabilities=CAP_NET_RAW CAP_NET_ADMIN
  CapabilityBoundingSet=CAP_NET_RAW CAP_NET_ADMIN
  NoNewPrivileges=yes
  Restart=on-failure
  TimeoutStopSec=60
  [Install]
  WantedBy=multi-user.target

Sink: --clickhouse clickhouse://host:9000/db (native protocol; clickhouses:// for TLS) or
http://host:8123/db (https:// for TLS), through clickhouse-go. Rows go in blocks of up to
--batch-rows or --batch-age, each insert with an insert_deduplication_token, so a block retried
after a lost answer is stored once (the tables need non_replicated_deduplication_window, set by
the schema; replicated tables deduplicate anyway). While ClickHouse is unreachable, blocks wait
in --spool-dir (at most --spool-mb); at the bound the oldest data blocks are dropped, logged and
counted in capture_stats.rows_dropped. Capture never waits for the disk: blocks that arrive while
16 already wait to be spooled are dropped and counted alike. SIGTERM sends everything, or spools
what it cannot send within --flush-timeout; the next start sends the spool first, in order.

Metrics (--metrics-listen, Prometheus text format at /metrics): packets, kernel and tool drops,
DNS messages, decode errors, rows and blocks sent, spool blocks and bytes, sink errors, the time
of the last successful insert.`

func captureCommand(stderr io.Writer) *cli.Command {
	return &cli.Command{
		Name:         "capture",
		Usage:        "capture DNS traffic live and insert the rows into ClickHouse",
		Description:  captureDescription,
		OnUsageError: usageError,
		Flags: []cli.Flag{
			&cli.StringSliceFlag{Name: "interface", Aliases: []string{"i"}, Usage: "interface to capture on (repeatable, or comma-separated; any = all)"},
			&cli.StringFlag{Name: "source", Value: capture.SourceAfpacket, Usage: "afpacket (TPACKET_V3 rings with fanout) or pcap (libpcap)"},
			&cli.IntFlag{Name: "workers", Usage: "afpacket rings per interface, in one fanout group", DefaultText: "min(4, CPUs)"},
			&cli.IntFlag{Name: "ring-mb", Value: 64, Usage: "capture ring memory per interface in MiB, shared by its workers"},
			&cli.IntFlag{Name: "snaplen", Value: 65535, Usage: "bytes kept of each packet (pcap source)"},
			&cli.StringFlag{Name: "filter", Usage: "BPF filter (default: UDP and TCP on --ports, and IP fragments)"},
			&cli.StringFlag{Name: "ports", Value: "53", Usage: "comma-separated ports that carry DNS"},
			&cli.StringFlag{Name: "host", Usage: "capture point name stored in every row (default: the host name)"},
			&cli.StringFlag{Name: "clickhouse", EnvVars: []string{"DNSLOSS_CLICKHOUSE"}, Usage: "ClickHouse URL: clickhouse://host:9000/db or http://host:8123/db"},
			&cli.StringFlag{Name: "user", EnvVars: []string{"DNSLOSS_CLICKHOUSE_USER"}, Usage: "ClickHouse user (default: from the URL, else default)"},
			&cli.StringFlag{Name: "password-file", Usage: "file holding the ClickHouse password (first line)"},
			&cli.StringFlag{Name: "tls-ca", Usage: "PEM file of CA certificates for the server (implies TLS)"},
			&cli.StringFlag{Name: "tls-cert", Usage: "PEM client certificate (with --tls-key)"},
			&cli.StringFlag{Name: "tls-key", Usage: "PEM client key"},
			&cli.StringFlag{Name: "tls-server-name", Usage: "server name to verify (default: the URL's host)"},
			&cli.BoolFlag{Name: "tls-insecure-skip-verify", Usage: "do not verify the server certificate (testing only)"},
			&cli.StringFlag{Name: "compression", Value: "lz4", Usage: "lz4, zstd, gzip (HTTP only) or none"},
			&cli.IntFlag{Name: "batch-rows", Value: 50000, Usage: "rows per insert"},
			&cli.DurationFlag{Name: "batch-age", Value: 5 * time.Second, Usage: "insert a block once its first row is this old"},
			&cli.DurationFlag{Name: "stats-interval", Value: 10 * time.Second, Usage: "capture_stats interval"},
			&cli.StringFlag{Name: "spool-dir", Usage: "directory for blocks that wait for ClickHouse (default $STATE_DIRECTORY/spool, else ./dnsloss-spool)"},
			&cli.Int64Flag{Name: "spool-mb", Value: 1024, Usage: "bound on the spool in MiB; beyond it the oldest blocks are dropped (counted)"},
			&cli.DurationFlag{Name: "flush-timeout", Value: 30 * time.Second, Usage: "on SIGTERM, how long to try sending before spooling the rest"},
			&cli.StringFlag{Name: "metrics-listen", Usage: "address for Prometheus metrics at /metrics, e.g. 127.0.0.1:9153 (default: off)"},
			&cli.StringFlag{Name: "cpuprofile", Usage: "write a Go CPU profile of the run to this file (for go tool pprof; scripts/bench-live.sh)"},
			&cli.StringFlag{Name: "memprofile", Usage: "write a Go heap profile to this file when the capture stops"},
		},
		Action: func(c *cli.Context) error { return runCapture(c, stderr) },
	}
}

// serverConfig reads the sink flags; the password never leaves this function except into the
// returned config.
func serverConfig(c *cli.Context) (sink.ServerConfig, error) {
	// The password comes from the environment or a file, never from the command line (where
	// ps shows it): no --password flag, and none in the URL.
	cfg := sink.ServerConfig{URL: c.String("clickhouse"), User: c.String("user"), Password: os.Getenv("DNSLOSS_CLICKHOUSE_PASSWORD"),
		Compression: c.String("compression")}
	if cfg.URL == "" {
		return cfg, cli.Exit("--clickhouse is required (e.g. clickhouse://host:9000/dnsloss or http://host:8123)", 2)
	}
	if u, err := url.Parse(cfg.URL); err == nil && u.User != nil {
		if _, ok := u.User.Password(); ok {
			return cfg, cli.Exit("--clickhouse: put no password in the URL (it would show in ps); use $DNSLOSS_CLICKHOUSE_PASSWORD or --password-file", 2)
		}
	}
	if f := c.String("password-file"); f != "" {
		b, err := os.ReadFile(f)
		if err != nil {
			return cfg, fmt.Errorf("cannot read --password-file: %w", err)
		}
		cfg.Password = strings.TrimRight(strings.SplitN(string(b), "\n", 2)[0], "\r")
	}
	ca, cert, key, name := c.String("tls-ca"), c.String("tls-cert"), c.String("tls-key"), c.String("tls-server-name")
	if ca != "" || cert != "" || name != "" || c.Bool("tls-insecure-skip-verify") {
		t := &tls.Config{ServerName: name, InsecureSkipVerify: c.Bool("tls-insecure-skip-verify"), MinVersion: tls.VersionTLS12}
		if ca != "" {
			pem, err := os.ReadFile(ca)
			if err != nil {
				return cfg, fmt.Errorf("cannot read --tls-ca: %w", err)
			}
			t.RootCAs = x509.NewCertPool()
			if !t.RootCAs.AppendCertsFromPEM(pem) {
				return cfg, fmt.Errorf("--tls-ca %q holds no PEM certificate", ca)
			}
		}
		if (cert == "") != (key == "") {
			return cfg, cli.Exit("--tls-cert and --tls-key go together", 2)
		}
		if cert != "" {
			kp, err := tls.LoadX509KeyPair(cert, key)
			if err != nil {
				return cfg, fmt.Errorf("cannot load the TLS client certificate: %w", err)
			}
			t.Certificates = []tls.Certificate{kp}
		}
		if t.ServerName == "" {
			if h, _, err := net.SplitHostPort(hostOf(cfg.URL)); err == nil {
				t.ServerName = h
			} else {
				t.ServerName = hostOf(cfg.URL)
			}
		}
		cfg.TLS = t
	}
	// The URL's scheme and the compression are checked now, as the usage errors they are.
	if _, err := cfg.Options(); err != nil {
		return cfg, cli.Exit(err.Error(), 2)
	}
	return cfg, nil
}

func hostOf(u string) string {
	_, rest, _ := strings.Cut(u, "://")
	if i := strings.IndexAny(rest, "/?"); i >= 0 {
		rest = rest[:i]
	}
	if i := strings.LastIndex(rest, "@"); i >= 0 {
		rest = rest[i+1:]
	}
	return rest
}

func runCapture(c *cli.Context, stderr io.Writer) error {
	log := slog.New(slog.NewTextHandler(stderr, nil))
	var ifaces []string
	for _, v := range c.StringSlice("interface") {
		for _, f := range strings.Split(v, ",") {
			if f = strings.TrimSpace(f); f != "" {
				ifaces = append(ifaces, f)
			}
		}
	}
	if len(ifaces) == 0 {
		return cli.Exit("give at least one --interface (e.g. -i eth0, or -i any)", 2)
	}
	ports, err := dnswire.ParsePorts(c.String("ports"))
	if err != nil {
		return cli.Exit(err.Error(), 2)
	}
	// Before the sink opens: a refusal here comes at once, not after --flush-timeout spent
	// trying to send what an earlier run spooled.
	if err := checkCaptureFlags(c); err != nil {
		return err
	}
	if err := checkInterfaces(ifaces); err != nil {
		return err
	}
	host := c.String("host")
	if host == "" {
		if host, err = os.Hostname(); err != nil {
			return fmt.Errorf("cannot get the host name (give --host): %w", err)
		}
	}
	scfg, err := serverConfig(c)
	if err != nil {
		return err
	}
	ch, err := sink.OpenClickHouse(scfg)
	if err != nil {
		return err
	}
	spoolDir := c.String("spool-dir")
	if spoolDir == "" {
		spoolDir = "dnsloss-spool"
		if sd := os.Getenv("STATE_DIRECTORY"); sd != "" {
			spoolDir = filepath.Join(strings.Split(sd, ":")[0], "spool")
		}
	}
	sk, err := sink.New(sink.Config{Inserter: ch, SpoolDir: spoolDir, SpoolBytes: c.Int64("spool-mb") << 20,
		TokenPrefix: host, Logger: log})
	if err != nil {
		ch.Close()
		return err
	}
	flush := func() error {
		ctx, cancel := context.WithTimeout(context.Background(), c.Duration("flush-timeout"))
		defer cancel()
		return sk.Close(ctx)
	}
	// abandon closes the sink when the capture could not start: nothing was captured, so there
	// is nothing of this run's to send, and what earlier runs spooled stays for the next one
	// instead of holding the error back for --flush-timeout.
	abandon := func() {
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		sk.Close(ctx)
	}
	cp, err := capture.New(capture.Config{
		Interfaces: ifaces, Source: c.String("source"), Workers: c.Int("workers"), RingBytes: c.Int("ring-mb") << 20,
		Snaplen: c.Int("snaplen"), Filter: c.String("filter"), Ports: ports, Host: host,
		BatchRows: c.Int("batch-rows"), BatchAge: c.Duration("batch-age"), StatsInterval: c.Duration("stats-interval"),
		Sink: sk, Logger: log,
	})
	if err != nil {
		abandon()
		return err
	}
	log.Info("sending rows to ClickHouse", "server", ch.Describe(), "spool", spoolDir, "host", host)
	var srv *http.Server
	if addr := c.String("metrics-listen"); addr != "" {
		ln, err := net.Listen("tcp", addr)
		if err != nil {
			abandon()
			return fmt.Errorf("cannot listen for metrics on %s: %w", addr, err)
		}
		mux := http.NewServeMux()
		mux.Handle("/metrics", metrics.Handler(func() []metrics.Family { return gather(cp, sk) }))
		srv = &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
		go srv.Serve(ln)
		log.Info("serving metrics", "addr", "http://"+ln.Addr().String()+"/metrics")
	}
	if f := c.String("cpuprofile"); f != "" {
		stop, err := startCPUProfile(f)
		if err != nil {
			abandon()
			return err
		}
		defer stop()
	}
	runErr := cp.Run(c.Context)
	if f := c.String("memprofile"); f != "" {
		if err := writeHeapProfile(f); err != nil {
			log.Error("cannot write the heap profile", "file", f, "err", err)
		}
	}
	log.Info("capture stopped; flushing", "timeout", c.Duration("flush-timeout"))
	flushErr := flush()
	if srv != nil {
		srv.Close()
	}
	st := sk.Stats()
	log.Info("collector stopped", "rows_sent", st.RowsSent["dns_messages"], "spooled_blocks", st.SpoolBlocks, "rows_dropped", st.DroppedRows())
	return errors.Join(runErr, flushErr)
}

// Bounds of the capture's numeric flags.
const (
	maxWorkers  = 256  // PACKET_FANOUT groups held at most 256 sockets before Linux 5.9
	maxPcapRing = 2047 // MiB: libpcap's buffer size is a C int
)

// maxRingMB is the largest --ring-mb for afpacket: a quarter of the machine's memory (the ring is
// locked kernel memory; a ring of 1 TB ran the machine out of memory and the OOM killer took
// other processes first). 0 when the memory size is unknown.
func maxRingMB() int {
	var si syscall.Sysinfo_t
	if err := syscall.Sysinfo(&si); err != nil {
		return 0
	}
	return int(uint64(si.Totalram) * uint64(si.Unit) / 4 >> 20)
}

// outOfRange is the usage error (exit status 2) of a flag whose value is outside want.
func outOfRange(flag string, got any, want, what string) error {
	return cli.Exit(fmt.Sprintf("--%s %v: want %s (%s)", flag, got, want, what), 2)
}

// checkCaptureFlags refuses numeric flags outside their range, instead of the capture or the
// sink quietly taking a default for them.
func checkCaptureFlags(c *cli.Context) error {
	if src := c.String("source"); src != capture.SourceAfpacket && src != capture.SourcePcap {
		return cli.Exit(fmt.Sprintf("--source %q: want afpacket or pcap", src), 2)
	}
	if w := c.Int("workers"); c.IsSet("workers") && (w < 1 || w > maxWorkers) {
		return outOfRange("workers", w, fmt.Sprintf("1 to %d", maxWorkers), "afpacket rings per interface; leave it out for min(4, CPUs)")
	}
	mb := c.Int("ring-mb")
	if c.String("source") == capture.SourcePcap && (mb < 1 || mb > maxPcapRing) {
		return outOfRange("ring-mb", mb, fmt.Sprintf("1 to %d with --source pcap", maxPcapRing), "MiB of capture buffer per interface; libpcap takes no more")
	}
	if max := maxRingMB(); mb < 1 || (max > 0 && mb > max) {
		want := "1 or more"
		if max > 0 {
			want = fmt.Sprintf("1 to %d", max)
		}
		return outOfRange("ring-mb", mb, want, "MiB of capture ring per interface, kernel memory that cannot be swapped: at most a quarter of this machine's memory")
	}
	if v := c.Int("batch-rows"); v < 1 {
		return outOfRange("batch-rows", v, "1 or more", "rows per insert")
	}
	if v := c.Int("snaplen"); v < 1 {
		return outOfRange("snaplen", v, "1 or more", "bytes kept of each packet")
	}
	if v := c.Int64("spool-mb"); v < 1 {
		return outOfRange("spool-mb", v, "1 or more", "MiB of spool for blocks that wait for ClickHouse")
	}
	if d := c.Duration("batch-age"); d <= 0 {
		return outOfRange("batch-age", d, "more than 0", "how old a block's first row may get before it is inserted")
	}
	if d := c.Duration("stats-interval"); d <= 0 {
		return outOfRange("stats-interval", d, "more than 0", "capture_stats interval")
	}
	if d := c.Duration("flush-timeout"); d < 0 {
		return outOfRange("flush-timeout", d, "0 or more", "how long to try sending on SIGTERM")
	}
	return nil
}

// checkInterfaces refuses an interface that does not exist (a typo) at once; "any" always does.
func checkInterfaces(ifaces []string) error {
	for _, name := range ifaces {
		if name == "any" {
			continue
		}
		if _, err := net.InterfaceByName(name); err != nil {
			return cli.Exit(fmt.Sprintf("--interface %s: no such network interface here (see `ip link`, or use -i any): %v", name, err), 2)
		}
	}
	return nil
}

// startCPUProfile starts a CPU profile into path and returns the function that ends it.
func startCPUProfile(path string) (func(), error) {
	f, err := os.Create(path)
	if err != nil {
		return nil, fmt.Errorf("cannot create the CPU profile (--cpuprofile): %w", err)
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		f.Close()
		return nil, fmt.Errorf("cannot start the CPU profile: %w", err)
	}
	return func() { pprof.StopCPUProfile(); f.Close() }, nil
}

// writeHeapProfile writes the live heap (after a GC) to path.
func writeHeapProfile(path string) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	runtime.GC()
	if err := pprof.WriteHeapProfile(f); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// gather builds the metric families from the capture's and the sink's counters.
func gather(cp *capture.Capture, sk *sink.Sink) []metrics.Family {
	ifs := cp.Stats()
	st := sk.Stats()
	per := func(name, help string, v func(s capture.IfaceStats) uint64) metrics.Family {
		f := metrics.Family{Name: name, Help: help, Type: metrics.Counter}
		for _, s := range ifs {
			f.Samples = append(f.Samples, metrics.Sample{Labels: map[string]string{"iface": s.Iface, "source": s.Source}, Value: float64(v(s))})
		}
		return f
	}
	perTable := func(name, help string, m map[string]uint64) metrics.Family {
		f := metrics.Family{Name: name, Help: help, Type: metrics.Counter}
		for _, t := range []string{"dns_messages", capture.StatsTable} {
			f.Samples = append(f.Samples, metrics.Sample{Labels: map[string]string{"table": t}, Value: float64(m[t])})
		}
		return f
	}
	one := func(name, help, typ string, v float64) metrics.Family {
		return metrics.Family{Name: name, Help: help, Type: typ, Samples: []metrics.Sample{{Value: v}}}
	}
	last := 0.0
	if !st.LastSuccess.IsZero() {
		last = float64(st.LastSuccess.UnixNano()) / 1e9
	}
	return []metrics.Family{
		per("dnsloss_collector_packets_total", "Packets the collector received.", func(s capture.IfaceStats) uint64 { return s.Packets }),
		per("dnsloss_collector_kernel_drops_total", "Packets the kernel dropped (capture ring full).", func(s capture.IfaceStats) uint64 { return s.KernelDrops }),
		per("dnsloss_collector_tool_drops_total", "Rows dnsloss dropped before the store (spool bound, rejected blocks).", func(s capture.IfaceStats) uint64 { return s.RowsDropped }),
		per("dnsloss_collector_dns_messages_total", "DNS messages decoded (rows).", func(s capture.IfaceStats) uint64 { return s.Decoder.DNSMessages }),
		per("dnsloss_collector_decode_errors_total", "Packets with a broken link, IP or transport header.", func(s capture.IfaceStats) uint64 { return s.Decoder.DecodeErrors }),
		per("dnsloss_collector_malformed_total", "DNS messages decoded only in part.", func(s capture.IfaceStats) uint64 { return s.Decoder.Malformed }),
		per("dnsloss_collector_non_dns_total", "Packets that were not DNS on a configured port.", func(s capture.IfaceStats) uint64 {
			return s.Decoder.NonDNS + s.Decoder.ShortDNS + s.Decoder.UnsupportedLink
		}),
		perTable("dnsloss_sink_rows_total", "Rows inserted into ClickHouse.", st.RowsSent),
		perTable("dnsloss_sink_batches_total", "Blocks (inserts) accepted by ClickHouse.", st.BlocksSent),
		one("dnsloss_sink_errors_total", "Failed insert attempts.", metrics.Counter, float64(st.Errors)),
		one("dnsloss_sink_dropped_rows_total", "Rows dropped at the spool bound, when the spool writer fell behind, or set aside after repeated rejections.", metrics.Counter, float64(st.DroppedRows())),
		one("dnsloss_sink_queued_blocks", "Blocks waiting to be sent (memory and spool).", metrics.Gauge, float64(st.QueuedBlocks)),
		one("dnsloss_spool_blocks", "Blocks in the on-disk spool.", metrics.Gauge, float64(st.SpoolBlocks)),
		one("dnsloss_spool_bytes", "Bytes in the on-disk spool.", metrics.Gauge, float64(st.SpoolBytes)),
		one("dnsloss_sink_last_success_timestamp_seconds", "Unix time of the last successful insert (0: none yet).", metrics.Gauge, last),
	}
}
