# dnscache: the front door. Each target is a few lines; the logic lives in scripts/.
GO       ?= go
BIN      := bin
COREDNS  := $(BIN)/coredns

.PHONY: all build controlplane run test demo bench bench-quick soak fuzz deps generate clean readme-perf

all: build

## build: bin/coredns, bin/labdns, bin/dnscache-csi and the preload shim
build:
	$(GO) build -o $(COREDNS) ./build
	$(GO) build -o $(BIN)/labdns ./cmd/labdns
	$(GO) build -o $(BIN)/dnscache-csi ./cmd/dnscache-csi
	@if [ -f preload/Makefile ]; then $(MAKE) -s -C preload; fi

## controlplane: bin/kube-apiserver, bin/kubectl and bin/kubeadm for the control-plane tests, built
## from the release pinned in test/kit/controlplane/apiserver/go.mod (cold: ~5 min; then the build cache)
controlplane:
	cd test/kit/controlplane/apiserver && $(GO) build -o $(CURDIR)/$(BIN)/kube-apiserver k8s.io/kubernetes/cmd/kube-apiserver
	cd test/kit/controlplane/apiserver && $(GO) build -o $(CURDIR)/$(BIN)/kubectl k8s.io/kubernetes/cmd/kubectl
	cd test/kit/controlplane/apiserver && $(GO) build -o $(CURDIR)/$(BIN)/kubeadm k8s.io/kubernetes/cmd/kubeadm

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
