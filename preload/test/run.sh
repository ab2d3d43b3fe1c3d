#!/bin/sh
# run.sh: the preload tests that run real programs under the library.
#
# It re-executes itself in new mount and network namespaces (root), binds a
# test /etc/resolv.conf (k8s-like search list, ndots:5), /etc/hosts and
# /etc/nsswitch.conf over the real ones, and serves the lab zone with
# responder.py on 127.0.0.1:53 (UDP/TCP, what glibc's dns module uses) and on
# a Unix socket (what the shim uses).  Sections: symbols, oracle, programs,
# fallback, stress, valgrind, sanitizers.  Usage: run.sh [section...]
set -u
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(dirname "$HERE")
B=$ROOT/build
LIB=$B/libnss_dnscache.so.2

if [ -z "${DC_IN_NS:-}" ]; then
	exec env DC_IN_NS=1 unshare --mount --net --propagation private "$0" "$@"
fi

ip link set lo up
W=$(mktemp -d /tmp/dnscache-preload.XXXXXX)
PIDS=""
FAILS=0
cleanup() {
	for p in $PIDS; do kill "$p" 2>/dev/null || true; done
	wait 2>/dev/null || true
	rm -rf "$W"
}
trap cleanup EXIT INT TERM

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

# start NAME ARGS...: run responder.py in the background, wait until it listens.
start() {
	sn=$1; shift
	rm -f "$W/$sn.ready"
	python3 "$HERE/responder.py" --k8s cluster.local \
		--exists kubernetes.default.svc.cluster.local --exists web.ns1.svc.cluster.local \
		--ready "$W/$sn.ready" "$@" &
	eval "PID_$sn=$!"
	PIDS="$PIDS $!"
	i=0
	while [ ! -e "$W/$sn.ready" ]; do
		i=$((i + 1)); [ $i -lt 100 ] || { echo "responder $sn did not start"; exit 1; }
		sleep 0.05
	done
}
stop() {
	eval "p=\$PID_$1"
	kill "$p" 2>/dev/null || true
	wait "$p" 2>/dev/null || true
}
ok() { echo "ok   $*"; }
fail() { echo "FAIL $*"; FAILS=$((FAILS + 1)); }
shim() { env LD_PRELOAD="$LIB" DNSCACHE_SOCKET="$W/dns.sock" "$@"; }
plain() { env -u LD_PRELOAD "$@"; }
socket_queries() { [ -e "$W/unix.log" ] && wc -l <"$W/unix.log" || echo 0; }

CORPUS="www.example.com v4-a.example.com v6-a.example.com nodata-a.example.com
nx-a.example.com servfail-a.example.com big-a.example.com cname2-a.example.com
cname3-x.example.com. ttl5-a.example.com loop-a.example. kubernetes web.ns1 foo
nx-short a.b.c.d.e.f UPPER.Example.COM www.example.com. myhost myhost.local
localhost 127.0.0.1 ::1 10.1.2.3"

. "$HERE/sections.sh"

start udp --udp 127.0.0.1:53
start unix --unix "$W/dns.sock" --log "$W/unix.log" --reverse

SECTIONS=${*:-symbols oracle programs fallback stress valgrind sanitizers}
for s in $SECTIONS; do "t_$s"; done
if [ "$FAILS" -ne 0 ]; then
	echo "preload: $FAILS failed"
	exit 1
fi
echo "preload: all passed"
