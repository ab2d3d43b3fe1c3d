#!/bin/sh
# run.sh: the preload tests that run real programs under the library,
# against the real server.
#
# It re-executes itself in new mount and network namespaces (root), binds a
# test /etc/resolv.conf (k8s-like search list, ndots:5), /etc/hosts and
# /etc/nsswitch.conf over the real ones, and starts inside them bin/labdns
# (the lab zone over DoT) and bin/coredns serving one server block on
# 127.0.0.1:53 (UDP/TCP: what glibc's dns module uses) and on a Unix socket
# (what the shim uses) with unixsock, warmcache, the cluster zone (file) and
# racetls to the lab.  Faults (garbage, reset, hang, SERVFAIL) come from
# bin/labdns Unix sockets; "killed mid-run" kills a second bin/coredns.
# Sections: symbols, footprint (thread-local storage and stack of both builds), oracle, matrix (programs x hosts lines x resolv.conf), negcache, keep, musl (libdnscache-musl.so against musl's resolver), programs, fallback, stress, valgrind,
# sanitizers (default all); bench (bench/run.sh).  Usage: run.sh [section...]
# Needs bin/coredns and bin/labdns (make build).
set -u
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(dirname "$HERE")
B=$ROOT/build
LIB=${DNSCACHE_PRELOAD_LIB:-$B/libnss_dnscache.so.2}

if [ -z "${DC_IN_NS:-}" ]; then
	exec env DC_IN_NS=1 unshare --mount --net --propagation private "$0" "$@"
fi

. "$HERE/servers.sh"
need_binaries

ip link set lo up
# Addresses other than 127.0.0.1 and ::1 (on lo: the namespace has no other
# interface), so that AI_ADDRCONFIG (getent ahostsv4/ahostsv6) sees both
# families configured instead of returning EAI_NONAME without a lookup.
ip addr add 10.255.0.1/32 dev lo
ip -6 addr add fd00:255::1/128 dev lo nodad
# The lab's addresses fail at once (curl in the matrix connects to them).
ip route add unreachable 198.18.0.0/15
ip -6 route add unreachable 2001:db8::/32
ip route add unreachable 10.0.0.0/8
ip -6 route add unreachable fd00::/8
W=$(mktemp -d /tmp/dnscache-preload.XXXXXX)
PIDS=""
FAILS=0
cleanup() {
	for p in $PIDS; do kill "$p" 2>/dev/null || true; done
	wait 2>/dev/null || true
	rm -rf "$W"
}
trap cleanup EXIT
# A signal (^C, or a closed output pipe) must not leave the servers running.
trap 'trap - EXIT; cleanup; exit 1' HUP INT TERM PIPE

mkdir -p "$W/etc"
cat >"$W/etc/resolv.conf" <<'CONF'
nameserver 127.0.0.1
search default.svc.cluster.local svc.cluster.local cluster.local
options ndots:5 timeout:1 attempts:1
CONF
cat >"$W/etc/hosts" <<'CONF'
127.0.0.1 localhost
::1 localhost ip6-localhost
10.1.2.3 myhost.local myhost
CONF
printf 'hosts: files dns\n' >"$W/etc/nsswitch.conf"
for f in resolv.conf hosts nsswitch.conf; do mount --bind "$W/etc/$f" "/etc/$f"; done

ok() { echo "ok   $*"; }
fail() { echo "FAIL $*"; FAILS=$((FAILS + 1)); }
shim() { env LD_PRELOAD="$LIB" DNSCACHE_SOCKET="$W/dns.sock" "$@"; }
plain() { env -u LD_PRELOAD "$@"; }
socket_queries() { unix_requests 9153; }

# The name corpus: both families, A only, AAAA only, NODATA, NXDOMAIN,
# SERVFAIL, 40+40 addresses, CNAME chains, short TTL, search-expanded short
# names (cluster services, and names found only as-is after the search
# list), 5+ dots, trailing dots, case, /etc/hosts names, numeric, localhost.
CORPUS="www.example.com v4-a.example.com v6-a.example.com nodata-a.example.com
nx-a.example.com servfail-a.example.com big-a.example.com cname2-a.example.com
cname3-x.example.com. cname1-v6b.example.com ttl5-a.example.com loop-a.example.
kubernetes kubernetes.default kubernetes.default.svc web.ns1 db.default foo nx-short
a.b.c.d.e.f UPPER.Example.COM www.example.com. v4-b.example.com. nodata-b.example.com.
nx-b.example.com. big-b.example.com. servfail-b.example.com. myhost myhost.local
localhost 127.0.0.1 ::1 10.1.2.3"

. "$HERE/sections.sh"

SECTIONS=${*:-symbols footprint oracle matrix negcache programs fallback keep stress musl valgrind sanitizers}
start_lab
write_main_conf
start_coredns main
for s in $SECTIONS; do "t_$s"; done
if [ "$FAILS" -ne 0 ]; then
	echo "preload: $FAILS failed"
	exit 1
fi
echo "preload: all passed"
