# dnsloss: `make demo` shows a loss report from a bundled capture; `make test` runs every test.
# Both install what is missing first (scripts/setup.sh): Go modules, libchdb.so, Debian packages.

GO        ?= go
BIN       := bin
DEMO_DB   ?= out/demo-data
# Debian packages the tests use (live-capture lab, independent decoders, browser checks).
TEST_APT  ?= tcpdump iproute2 nftables dnsmasq-base libpcap-dev ethtool chromium fonts-dejavu-core
# Debian packages the benchmark compares against (references measured in the same run), and
# tcpreplay, the sender of the live capture benchmark.
BENCH_APT ?= tcpdump tshark tcpreplay

.PHONY: all setup build demo test fuzz vet bench bench-live clean

all: build

setup:
	@scripts/setup.sh

build: setup
	@echo "build: bin/analyzer bin/collector"
	@$(GO) build -o $(BIN)/analyzer ./analyzer
	@$(GO) build -o $(BIN)/collector ./collector

# The demo: the lab capture in which the resolver drops every query for www.example.com, with
# a glibc client whose search list turns the loss into an NXDOMAIN for a name that exists.
demo: build
	@echo "demo: analyzing testdata/lab/drop-name.pcap and testdata/lab/loss20.pcap into $(DEMO_DB)"
	@$(BIN)/analyzer --db $(DEMO_DB) analyze --replace testdata/lab/drop-name.pcap testdata/lab/loss20.pcap

# Test packages run TEST_P at a time (go's default is one per CPU). Much of the time goes to
# single-threaded work (the engine planning the lookup views, waiting for timeouts in the lab), one
# engine per process; TEST_P=4 runs more of it side by side (not shown to help on 2 CPUs).
TEST_P ?= 2

test: export DNSLOSS_APT = $(TEST_APT)
test: setup vet
	@echo "test: go test ./..."
	@$(GO) test -count=1 -timeout 45m -p $(TEST_P) ./...
	@$(MAKE) --no-print-directory fuzz

# Each fuzz target runs briefly; a crasher fails the run and lands in testdata/fuzz.
FUZZTIME ?= 10s
fuzz:
	@scripts/fuzz.sh $(FUZZTIME)

# Performance figures beside their references (see BENCHMARKS.md); builds its inputs in out/bench.
bench: export DNSLOSS_APT = $(BENCH_APT)
bench: setup
	@scripts/bench.sh

# Live capture throughput alone (make bench runs it too, as root): tcpreplay over a veth pair.
bench-live: export DNSLOSS_APT = tcpreplay
bench-live: setup
	@scripts/bench-live.sh

vet:
	@echo "vet: go vet ./..."
	@$(GO) vet ./...

clean:
	rm -rf $(BIN) out
