#!/bin/sh
# run.sh: the shim's latency figure: getaddrinfo(AF_UNSPEC) through the shim
# over the Unix socket vs glibc's own resolver over UDP, against the same
# server, all answers cache hits (each case warms up first).
#
# Usage:
#   bench/run.sh                       self-contained (make -C preload bench; root):
#                                      private namespaces, bin/labdns and bin/coredns
#                                      (unixsock, warmcache, cluster zone, racetls)
#   bench/run.sh -s SOCKET -u IP:PORT  against a given server: SOCKET its unixsock
#                                      path, IP:PORT its UDP listener (any port)
# The given server must answer the cases' names from one server block on both:
# the lab zone (CONTRIBUTING.md) for external names, and the cluster zone
# preload/bench/cluster.local.db (Corefile: `file .../cluster.local.db
# cluster.local`), where kubernetes.default.svc.cluster.local exists and other
# names are NXDOMAIN, as kubernetes serves it.  Put warmcache in the block.
#
# Environment: BENCH_N timed lookups per case and client (default 2000),
# BENCH_SEARCH the search list (default "default.svc.cluster.local
# svc.cluster.local cluster.local", via LOCALDOMAIN, with RES_OPTIONS
# ndots:5), BENCH_LIB the shim (default preload/build/libnss_dnscache.so.2),
# BENCH_SHIM_ENV extra variables for the shim runs (e.g. DNSCACHE_NEGCACHE_MS=0).
#
# Output: one line per case on stdout, key=value, times in microseconds:
#   preload_bench case=CASE name=NAME candidates=K n=N shim_p50_us=.. shim_p99_us=..
#     glibc_p50_us=.. glibc_p99_us=.. ratio_p50=SHIM/GLIBC ratio_p99=..
# (one line; wrapped here).  Cases: absolute (a name with a trailing dot, one
# candidate), short (a cluster service by its short name: the first search
# candidate answers), external (a 2-dot name under ndots:5: three NXDOMAIN
# search candidates, then the name as-is).  Exit status non-zero when a
# lookup fails.  Built by make -C preload (build/gai_bench).
set -eu
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(dirname "$HERE")
SOCK="" UDP=""
while getopts s:u: o; do
	case $o in
	s) SOCK=$OPTARG ;;
	u) UDP=$OPTARG ;;
	*) sed -n '2,/^set -eu/p' "$0" | sed 's/^# \{0,1\}//' >&2; exit 2 ;;
	esac
done
if [ -z "$SOCK" ] || [ -z "$UDP" ]; then
	exec "$ROOT/test/run.sh" bench
fi

N=${BENCH_N:-2000}
LIB=${BENCH_LIB:-$ROOT/build/libnss_dnscache.so.2}
GAI=$ROOT/build/gai_bench
for f in "$LIB" "$GAI"; do
	[ -e "$f" ] || { echo "preload bench: $f is missing (make -C preload)" >&2; exit 1; }
done
export LOCALDOMAIN="${BENCH_SEARCH:-default.svc.cluster.local svc.cluster.local cluster.local}"
export RES_OPTIONS="ndots:5 timeout:1 attempts:1"

T=$(mktemp -d /tmp/preload-bench.XXXXXX)
trap 'rm -rf "$T"' EXIT INT TERM

# pct FILE P: the P-th percentile of the samples in FILE.
pct() { sort -n "$1" | awk -v p="$2" '{v[NR] = $1} END {i = int(NR * p / 100) + 1; if (i > NR) i = NR; print v[i]}'; }

# run_case CASE NAME CANDIDATES: glibc and the shim take turns, 5 rounds of
# N/5 lookups each, so that load from other processes falls on both alike.
run_case() {
	c=$1 name=$2 k=$3
	: >"$T/glibc"; : >"$T/shim"
	r=0
	while [ $r -lt 5 ]; do
		env -u LD_PRELOAD "$GAI" -n $((N / 5)) -u "$UDP" -o "$T/glibc" "$name" >/dev/null
		env ${BENCH_SHIM_ENV:-} LD_PRELOAD="$LIB" DNSCACHE_SOCKET="$SOCK" \
			"$GAI" -n $((N / 5)) -u "$UDP" -o "$T/shim" "$name" >/dev/null
		r=$((r + 1))
	done
	sp50=$(pct "$T/shim" 50) sp99=$(pct "$T/shim" 99)
	gp50=$(pct "$T/glibc" 50) gp99=$(pct "$T/glibc" 99)
	echo "preload_bench case=$c name=$name candidates=$k n=$N shim_p50_us=$sp50 shim_p99_us=$sp99" \
		"glibc_p50_us=$gp50 glibc_p99_us=$gp99" \
		"ratio_p50=$(echo "$sp50 $gp50" | awk '{printf "%.2f", $1 / $2}')" \
		"ratio_p99=$(echo "$sp99 $gp99" | awk '{printf "%.2f", $1 / $2}')"
}

run_case absolute www.example.com. 1
run_case short kubernetes 1
run_case external www.example.com 4

# The musl rows: musl's resolver over UDP vs libdnscache-musl.so, with
# musl-linked gai_bench.  musl reads resolv.conf only (no LOCALDOMAIN or
# RES_OPTIONS) and port 53: run where resolv.conf names the server and the
# same search list (the self-contained run does).
MGAI=$ROOT/build/musl-gai_bench
MLIB=${BENCH_MUSL_LIB:-$ROOT/build/libdnscache-musl.so}
if [ -x "$MGAI" ] && [ -e "$MLIB" ] && [ "${UDP##*:}" = 53 ] &&
	grep -q "^nameserver ${UDP%:*}" /etc/resolv.conf 2>/dev/null; then
	GAI=$MGAI LIB=$MLIB
	run_case musl-absolute www.example.com. 1
	run_case musl-short kubernetes 1
	run_case musl-external www.example.com 4
fi
