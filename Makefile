# dnscache: the front door. Each target is a few lines; the logic lives in scripts/.
GO       ?= go
BIN      := bin
COREDNS  := $(BIN)/coredns

.PHONY: all build run test demo bench bench-quick soak fuzz deps generate clean readme-perf

all: build

## build: bin/coredns, bin/labdns and the preload shim
build:
	$(GO) build -o $(COREDNS) ./build
	$(GO) build -o $(BIN)/labdns ./cmd/labdns
	@if [ -f preload/Makefile ]; then $(MAKE) -s -C preload; fi

## run: build and serve corefile.example (socket under ./run, ports above 1024, no root)
run: build
	bash scripts/run.sh

## test: install test dependencies, build, and run every test
test:
	bash scripts/test.sh

## demo: the whole system on loopback with no internet
demo: build
	bash scripts/demo.sh

## bench: stock CoreDNS versus dnscache, side by side (BENCH_QUICK=1 for a short run)
bench: build
	bash scripts/bench.sh

## soak: the reliability suite, in full
soak: build
	bash scripts/soak.sh

## fuzz: every fuzz target for FUZZTIME (default 30s) each
fuzz: deps
	bash scripts/fuzz.sh

## readme-perf: refresh the Performance sections of README.md and bench/README.md from the last make bench
readme-perf:
	bash scripts/bench.sh --readme

deps:
	bash scripts/deps.sh

## generate: regenerate build/zdirectives.go and build/zplugin.go from build/plugin.cfg
generate:
	cd build && $(GO) generate .

clean:
	rm -rf $(BIN) bench/out run
	@if [ -f preload/Makefile ]; then $(MAKE) -s -C preload clean; fi
