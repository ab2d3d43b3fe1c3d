#!/usr/bin/env bash
# run.sh is `make run`: serve corefile.example with bin/coredns as an ordinary user, with the
# socket under ./run and the ports above 1024. Every value can be overridden from the
# environment (see the table at the top of corefile.example).
set -euo pipefail
cd "$(dirname "$0")/.."
mkdir -p run
export DNSCACHE_PORT=${DNSCACHE_PORT:-1053}
export DNSCACHE_SOCKET=${DNSCACHE_SOCKET:-$PWD/run/dns.sock}
export DNSCACHE_HEALTH=${DNSCACHE_HEALTH:-127.0.0.1:18080}
export DNSCACHE_READY=${DNSCACHE_READY:-127.0.0.1:18181}
export DNSCACHE_METRICS=${DNSCACHE_METRICS:-127.0.0.1:19153}
export DNSCACHE_KUBE_API=${DNSCACHE_KUBE_API:-http://127.0.0.1:1}
cat <<MSG
dnscache: serving corefile.example
  DNS      127.0.0.1:$DNSCACHE_PORT (UDP, TCP)     kdig @127.0.0.1 -p $DNSCACHE_PORT example.com
  socket   $DNSCACHE_SOCKET
           DNSCACHE_SOCKET=$DNSCACHE_SOCKET LD_PRELOAD=$PWD/preload/build/libnss_dnscache.so.2 getent ahosts example.com
  metrics  http://$DNSCACHE_METRICS/metrics
MSG
exec bin/coredns -conf corefile.example
