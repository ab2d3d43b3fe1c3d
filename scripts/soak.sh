#!/usr/bin/env bash
# soak.sh is `make soak` (after `make build`): the reliability suite of test/reliability in full
# (DNSCACHE_SOAK=1): upstream faults under load, a total outage with serve_stale, reloads
# under load, a kill and restart under the preload shim, abuse of the socket and the UDP
# port, 1M names through a 100k-entry cache, and a 5-minute soak at half capacity. Under
# 10 minutes. The raw output goes to $SOAK_OUT (default bench/out/soak.out); the figures of
# docs/reliability.md are its "soak", "outage", "reloads", "abuse" and "entries" lines.
# SOAK_DURATION shortens or lengthens the soak itself (default 5m).
set -euo pipefail
cd "$(dirname "$0")/.."
out=${SOAK_OUT:-bench/out/soak.out}
mkdir -p "$(dirname "$out")"
export DNSCACHE_SOAK=1 DNSCACHE_SOAK_DURATION=${SOAK_DURATION:-5m}
start=$(date +%s)
status=0
go test -count=1 -v -timeout 15m ./test/reliability 2>&1 | tee "$out" || status=$?
echo
echo "== soak: $(( $(date +%s) - start ))s, raw output in $out"
grep -E '^\s*--- (PASS|FAIL)|^(ok|FAIL)\s' "$out" | grep -vE '/(blackhole|reset|garbage|wrongid|idleclose|stall|servfail)/' || true
exit $status
