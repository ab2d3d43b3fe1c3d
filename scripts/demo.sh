#!/usr/bin/env bash
# demo.sh is `make demo`: the whole system on loopback with no internet, narrated by
# cmd/demo (three lab DoT upstreams, bin/coredns with unixsock + warmcache + racetls,
# getent/python3/curl through the preload shim, kdig over UDP, then the racetls stats, the
# cache counters and where the answers came from). It stops everything it starts.
# DEMO_QUICK=1 runs the short form that `make test` checks with scripts/demo-check.sh. It needs
# no network but loopback: cmd/demo's TestDemoLoopbackOnly runs it under `unshare -n`.
set -euo pipefail
cd "$(dirname "$0")/.."
for f in bin/coredns preload/build/libnss_dnscache.so.2; do
	[ -e "$f" ] || { echo "demo: $f is missing (run make build)"; exit 1; }
done
for t in getent python3 curl kdig; do
	command -v "$t" >/dev/null || { echo "demo: $t is not installed (run make deps)"; exit 1; }
done
exec go run ./cmd/demo -coredns bin/coredns -lib preload/build/libnss_dnscache.so.2 "$@"
