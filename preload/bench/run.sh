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
# BENCH_ROUNDS the rounds they are split into (default 20), BENCH_WARMUP the
# untimed lookups each process makes first (default 200), BENCH_SEARCH the
# search list (default "default.svc.cluster.local svc.cluster.local
# cluster.local", via LOCALDOMAIN, with RES_OPTIONS ndots:5), BENCH_LIB the
# shim (default preload/build/libnss_dnscache.so.2), BENCH_SHIM_ENV extra
# variables for the shim runs (e.g. DNSCACHE_NEGCACHE_MS=0).
#
# Method: per case, glibc and the shim take turns in BENCH_ROUNDS rounds of
# BENCH_N/BENCH_ROUNDS lookups each (a new process per round, BENCH_WARMUP
# untimed lookups first: the server's cache, the kept connection and the
# process's allocator warm; musl's allocator maps and unmaps the shim's
# buffers over the first ~100 lookups of a process, +15 us each, measured),
# the order alternating from round to round, so that load
# from other processes falls on both alike; the samples of all rounds are
# pooled for the percentiles.  Pin the script (taskset) to one CPU and the
# server to another, as make bench does: a round trip is then two cross-CPU
# wakeups, as between a pod and the node cache.
#
# Output: one line per case on stdout, key=value, times in microseconds:
#   preload_bench case=CASE name=NAME candidates=K n=N rounds=R
#     shim_p50_us=.. shim_p90_us=.. shim_p99_us=.. shim_cpu_us=.. shim_sleeps=..
#     glibc_p50_us=.. glibc_p90_us=.. glibc_p99_us=.. glibc_cpu_us=.. glibc_sleeps=..
#     ratio_p50=SHIM/GLIBC ratio_p99=.. load=L0-L1
# (one line; wrapped here).  cpu_us is the client's CPU time (user + system)
# per lookup, sleeps its voluntary context switches per lookup (each a
# wakeup the reply had to pay for), load the 1-minute load average before
# and after the case.  Cases: absolute (a name with a trailing dot, one
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
R=${BENCH_ROUNDS:-20}
WARM=${BENCH_WARMUP:-200}
[ "$R" -ge 1 ] && [ "$N" -ge "$R" ] || { echo "preload bench: BENCH_N must be at least BENCH_ROUNDS (>= 1)" >&2; exit 2; }
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
# mean KEY FILE: the mean of KEY=value over gai_bench's summary lines in FILE.
mean() { awk -v k="$1" '{for (i = 1; i <= NF; i++) if (index($i, k "=") == 1) {s += substr($i, length(k) + 2); n++}} END {printf "%.1f", n ? s / n : 0}' "$2"; }
mean2() { awk -v k="$1" '{for (i = 1; i <= NF; i++) if (index($i, k "=") == 1) {s += substr($i, length(k) + 2); n++}} END {printf "%.2f", n ? s / n : 0}' "$2"; }
load1() { cut -d' ' -f1 /proc/loadavg; }

# one WHO NAME: one round of N/R lookups of NAME by glibc or the shim.
one() {
	if [ "$1" = glibc ]; then
		env -u LD_PRELOAD "$GAI" -n $((N / R)) -w "$WARM" -u "$UDP" -o "$T/glibc" "$2" >>"$T/glibc.sum"
	else
		env ${BENCH_SHIM_ENV:-} LD_PRELOAD="$LIB" DNSCACHE_SOCKET="$SOCK" \
			"$GAI" -n $((N / R)) -w "$WARM" -u "$UDP" -o "$T/shim" "$2" >>"$T/shim.sum"
	fi
}

# run_case CASE NAME CANDIDATES: R rounds, glibc first in even rounds and the
# shim first in odd ones.
run_case() {
	c=$1 name=$2 k=$3
	: >"$T/glibc"; : >"$T/shim"; : >"$T/glibc.sum"; : >"$T/shim.sum"
	l0=$(load1)
	r=0
	while [ $r -lt "$R" ]; do
		if [ $((r % 2)) -eq 0 ]; then
			one glibc "$name"; one shim "$name"
		else
			one shim "$name"; one glibc "$name"
		fi
		r=$((r + 1))
	done
	sp50=$(pct "$T/shim" 50) sp90=$(pct "$T/shim" 90) sp99=$(pct "$T/shim" 99)
	gp50=$(pct "$T/glibc" 50) gp90=$(pct "$T/glibc" 90) gp99=$(pct "$T/glibc" 99)
	echo "preload_bench case=$c name=$name candidates=$k n=$(wc -l <"$T/shim") rounds=$R" \
		"shim_p50_us=$sp50 shim_p90_us=$sp90 shim_p99_us=$sp99" \
		"shim_cpu_us=$(mean cpu_us "$T/shim.sum") shim_sleeps=$(mean2 sleeps "$T/shim.sum")" \
		"glibc_p50_us=$gp50 glibc_p90_us=$gp90 glibc_p99_us=$gp99" \
		"glibc_cpu_us=$(mean cpu_us "$T/glibc.sum") glibc_sleeps=$(mean2 sleeps "$T/glibc.sum")" \
		"ratio_p50=$(echo "$sp50 $gp50" | awk '{printf "%.2f", $1 / $2}')" \
		"ratio_p99=$(echo "$sp99 $gp99" | awk '{printf "%.2f", $1 / $2}')" \
		"load=$l0-$(load1)"
}

run_case absolute www.example.com. 1
run_case short kubernetes 1
run_case external www.example.com 4

# The musl rows: musl's resolver over UDP vs libdnscache-musl.so, with
# musl-linked gai_bench.  musl reads resolv.conf only (no LOCALDOMAIN or
# RES_OPTIONS) and port 53: run where resolv.conf names the server and the
# same search list (the self-contained run and make bench do).
MGAI=$ROOT/build/musl-gai_bench
MLIB=${BENCH_MUSL_LIB:-$ROOT/build/libdnscache-musl.so}
if [ -x "$MGAI" ] && [ -e "$MLIB" ] && [ "${UDP##*:}" = 53 ] &&
	grep -q "^nameserver ${UDP%:*}" /etc/resolv.conf 2>/dev/null; then
	GAI=$MGAI LIB=$MLIB
	run_case musl-absolute www.example.com. 1
	run_case musl-short kubernetes 1
	run_case musl-external www.example.com 4
fi
