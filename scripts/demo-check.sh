#!/usr/bin/env bash
# demo-check.sh OUT: checks the output of `DEMO_QUICK=1 bash scripts/demo.sh` (make test):
# every section ran, every client got its answer, the racetls table and the counters were
# printed with non-zero values, the answers came over both paths, and everything stopped.
set -uo pipefail
out=${1:?usage: demo-check.sh DEMO-OUTPUT}
fails=0
need() { # description, extended regexp
	if grep -Eq -- "$2" "$out"; then
		printf 'ok    %s\n' "$1"
	else
		printf 'FAIL  %s (no line matches /%s/)\n' "$1" "$2"
		fails=$((fails + 1))
	fi
}
refuse() { # description, extended regexp
	if grep -Eq -- "$2" "$out"; then
		printf 'FAIL  %s:\n' "$1"
		grep -E -- "$2" "$out" | head -5 | sed 's/^/      /'
		fails=$((fails + 1))
	else
		printf 'ok    %s\n' "$1"
	fi
}
need "three lab upstreams" '^  slow +127\.0\.0\.1:[0-9]+ +lognormal'
need "coredns ready with the socket" '^  ready: UDP 127\.0\.0\.1:[0-9]+, socket /'
need "getent through the shim" '^  getent ahosts +www\.example\.com .* (198\.18\.|2001:db8::)'
need "a repeated lookup is a cache hit" '^  getent ahosts \(again\) +www\.example\.com .*cache ×'
need "IPv4 through a CNAME, with its canonical name" '^  python3 getaddrinfo v4 +cname2-api\.example\.org .* api\.example\.org 198\.18\.'
need "python3 through the shim" '^  python3 getaddrinfo +api\.example\.net .*198\.18\.'
need "NXDOMAIN through the shim" 'nx-missing\.example\.com .*not found \(NXDOMAIN\)'
need "curl reaches the loopback web server by name" '^  curl +loop-web\.demo\.example .*hello from the dnscache demo'
need "kdig over UDP" '^  mail\.example\.org AAAA +NOERROR'
need "kdig NXDOMAIN" '^  nx-gone\.example\.com A +NXDOMAIN'
need "racetls stats table" '^ +upstream +(trans +)?queries +wins +win%'
need "racetls rows" '^ +tls://127\.0\.0\.1:[0-9]+ +(tls +)?[1-9][0-9]* '
need "warmcache hits counted" '^  hits \(coredns_warmcache_hits_total\) +[1-9]'
need "requests over the socket" '^  Unix socket .* +[1-9][0-9]* +coredns_unixsock_requests_total'
need "requests over UDP" '^  UDP \(kdig\) +[1-9][0-9]* '
need "everything stopped" '^  stopped coredns, the web server and 3 lab upstreams'
need "demo finished" '^demo: ok$'
refuse "no failed step" '(^| )FAIL '
refuse "no panic or race" 'panic:|DATA RACE|fatal error:'
if [ "$fails" -ne 0 ]; then
	echo "demo-check: $fails check(s) failed"
	exit 1
fi
echo "demo-check: all passed"
