#!/usr/bin/env bash
# bench.sh is `make bench`: stock CoreDNS (cache + forward) versus dnscache (warmcache +
# racetls, unixsock, the preload shim) side by side in one bin/coredns, against lab DoT
# upstreams on loopback. The suite is the Go program in bench/ (see bench/README.md); it
# prints a table and writes bench/out/report.md, report.txt, summary.md and PNG plots.
#
#   bash scripts/bench.sh [dnsbench flags]   full suite (< 10 min); BENCH_QUICK=1: < 2 min
#   bash scripts/bench.sh --readme           copy the latest bench/out/summary.md and plots
#                                            into bench/README.md's Performance section
#
# On 2+ cores the servers under test run on CPU 0 and everything else (dnsperf, the Go load
# generator, the lab upstreams) on CPU 1, at a raised priority (nice -10 when allowed) so
# that other work on the machine disturbs the figures less.
set -euo pipefail
cd "$(dirname "$0")/.."

if [ "${1:-}" = "--readme" ]; then
	[ -f bench/out/summary.md ] || { echo "bench: no bench/out/summary.md: run make bench first"; exit 1; }
	mkdir -p bench/img
	cp bench/out/*.png bench/img/ 2>/dev/null || true
	go run ./bench/readme bench/README.md bench/out/summary.md
	go run ./bench/readme README.md bench/out/summary.md bench/
	echo "bench: bench/README.md and README.md refreshed from bench/out/summary.md"
	exit 0
fi

for t in dnsperf taskset; do
	command -v "$t" >/dev/null || { echo "bench: $t is not installed (run make deps)"; exit 1; }
done
[ -x bin/coredns ] || { echo "bench: bin/coredns is missing (run make build)"; exit 1; }
mkdir -p bench/out
go build -o bench/out/dnsbench ./bench

pin=()
args=()
if [ "$(nproc --all)" -ge 2 ]; then
	pin=(taskset -c 1)
else
	args=(-server-cpu "" -client-cpu "")
fi
nice=()
if nice -n -10 true 2>/dev/null; then
	nice=(nice -n -10)
fi
exec "${nice[@]}" "${pin[@]}" bench/out/dnsbench -coredns bin/coredns "${args[@]}" "$@"
