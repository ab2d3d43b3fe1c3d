# servers.sh: start and stop the servers of the preload tests (sourced by
# run.sh, which runs in private mount and network namespaces, so the fixed
# loopback ports below are the namespace's own).
#
#   start_lab              bin/labdns: the lab zone (CONTRIBUTING.md) over DoT;
#                          sets LAB_TLS; writes the CA into $W/lab
#   start_coredns NAME     bin/coredns with the Corefile $W/NAME.conf; waits
#                          until its ready endpoint answers
#   start_fault NAME SPEC  bin/labdns serving only the Unix socket $W/NAME.sock
#                          with the fault SPEC (lab.ParseSpec items)
#   stop NAME              SIGTERM and wait; stop_kill NAME: SIGKILL
#   unix_requests [PORT]   coredns_unixsock_requests_total of a server's
#                          /metrics (default the main server's, 9153), read
#                          by `labdns metric` (test/kit's /metrics reader)
# Every process started is recorded in PIDS for run.sh's cleanup.

REPO=$(cd "$ROOT/.." && pwd)
COREDNS=${DNSCACHE_COREDNS:-$REPO/bin/coredns}
LABDNS=${DNSCACHE_LABDNS:-$REPO/bin/labdns}

need_binaries() {
	for b in "$COREDNS" "$LABDNS"; do
		if [ ! -x "$b" ]; then
			echo "preload: $b is missing: run 'make build' (go build -o bin/coredns ./build; go build -o bin/labdns ./cmd/labdns)" >&2
			exit 1
		fi
	done
}

# wait_for DESC CMD...: poll CMD for up to 10 s.
wait_for() {
	wd=$1; shift
	wi=0
	until "$@" >/dev/null 2>&1; do
		wi=$((wi + 1))
		if [ $wi -ge 200 ]; then
			echo "preload: $wd did not start" >&2
			for l in "$W"/*.log; do echo "--- $l"; tail -20 "$l"; done >&2
			exit 1
		fi
		sleep 0.05
	done
}

start_lab() {
	mkdir -p "$W/lab"
	"$LABDNS" -ca-dir "$W/lab" -json 'ttl:300,udp:-,tcp:-,tls:127.0.0.1:0' >"$W/lab.json" 2>"$W/labdns.log" &
	PID_lab=$!
	PIDS="$PIDS $!"
	wait_for labdns grep -q '"tls"' "$W/lab.json"
	LAB_TLS=$(sed -n 's/.*"tls":"\([^"]*\)".*/\1/p' "$W/lab.json" | head -1)
}

# write_main_conf: the server of the oracle, UDP/TCP on 127.0.0.1:53 and the
# Unix socket in one server block, warmcache, the cluster zone, racetls to
# the lab over DoT.
write_main_conf() {
	cat >"$W/main.conf" <<CONF
.:53 {
    bind 127.0.0.1
    unixsock $W/dns.sock
    prometheus 127.0.0.1:9153
    ready 127.0.0.1:8181
    errors
    log . "{proto} {type} {name} {rcode}"
    warmcache
    file $ROOT/bench/cluster.local.db cluster.local
    racetls . tls://$LAB_TLS%lab.test {
        tls $W/lab/ca.pem
    }
}
CONF
}

# write_kill_conf: a second server, socket only (its port is not resolv.conf's),
# killed mid-run by the fallback and valgrind sections.
write_kill_conf() {
	cat >"$W/kill.conf" <<CONF
.:5399 {
    bind 127.0.0.1
    unixsock $W/kill.sock
    prometheus 127.0.0.1:9154
    ready 127.0.0.1:8182
    warmcache
    file $ROOT/bench/cluster.local.db cluster.local
    racetls . tls://$LAB_TLS%lab.test {
        tls $W/lab/ca.pem
    }
}
CONF
}

# write_sfail_conf: a node cache whose upstreams are all down: every query
# it cannot answer from its zone is forwarded to a closed port (SERVFAIL).
write_sfail_conf() {
	cat >"$W/sfail.conf" <<CONF
.:5398 {
    bind 127.0.0.1
    unixsock $W/sfail.sock
    prometheus 127.0.0.1:9155
    ready 127.0.0.1:8183
    forward . 127.0.0.1:1
}
CONF
}

start_coredns() {
	sn=$1
	ready=$(sed -n 's/^ *ready \(.*\)$/\1/p' "$W/$sn.conf")
	"$COREDNS" -conf "$W/$sn.conf" >"$W/$sn.log" 2>&1 &
	eval "PID_$sn=$!"
	PIDS="$PIDS $!"
	wait_for "coredns $sn" curl -sf "http://$ready/ready"
}

start_fault() {
	sn=$1
	rm -f "$W/$sn.sock"
	"$LABDNS" "$2,udp:-,tcp:-,tls:-,unix:$W/$sn.sock" >"$W/$sn.log" 2>&1 &
	eval "PID_$sn=$!"
	PIDS="$PIDS $!"
	wait_for "labdns $sn" test -S "$W/$sn.sock"
}

stop() {
	eval "p=\$PID_$1"
	kill "$p" 2>/dev/null || true
	wait "$p" 2>/dev/null || true
}

stop_kill() {
	eval "p=\$PID_$1"
	kill -KILL "$p" 2>/dev/null || true
	wait "$p" 2>/dev/null || true
}

unix_requests() {
	"$LABDNS" metric "127.0.0.1:${1:-9153}" coredns_unixsock_requests_total 2>/dev/null || echo 0
}

# udp_requests: the main server's queries counted under proto udp or tcp:
# glibc's dns, and (the server counts them so too) the Unix socket's.
udp_requests() {
	echo $(($("$LABDNS" metric 127.0.0.1:9153 coredns_dns_requests_total proto=udp 2>/dev/null || echo 0) +
		$("$LABDNS" metric 127.0.0.1:9153 coredns_dns_requests_total proto=tcp 2>/dev/null || echo 0)))
}

# fault_queries NAME: the Unix-socket queries a stopped labdns fault server saw
# (its exit line: "queries N (udp 0 tcp 0 tls 0 unix N)").
fault_queries() {
	sed -n 's/.* unix \([0-9]*\)).*/\1/p' "$W/$1.log" | tail -1
}
