# sections.sh: the test sections of run.sh (sourced; uses its helpers).

# symbols: only the NSS entry points exported, only libc needed, nothing
# above GLIBC_2.17 required (a newer version kills every process of an older
# image at start).
t_symbols() {
	exp=$(objdump -T "$LIB" | awk '$2 == "g" && $4 == ".text" {print $NF}' | sort | tr '\n' ' ')
	want="_nss_dnscache_gethostbyname2_r _nss_dnscache_gethostbyname3_r _nss_dnscache_gethostbyname4_r _nss_dnscache_gethostbyname_r "
	[ "$exp" = "$want" ] && ok "symbols: exports $exp" || fail "symbols: exports '$exp'"
	newest=$(objdump -T "$LIB" | grep -o 'GLIBC_[0-9.]*' | sort -t. -k1,1 -k2,2n -V | tail -1)
	too_new=$(objdump -T "$LIB" | grep -o 'GLIBC_[0-9.]*' | sort -u | awk -F'[_.]' '$2 > 2 || ($2 == 2 && $3 > 17)')
	[ -z "$too_new" ] && ok "symbols: newest version $newest" || fail "symbols: needs $too_new"
	needed=$(readelf -d "$LIB" | awk '/NEEDED/ {print $NF}' | tr -d '[]' | sort | tr '\n' ' ')
	case "$needed" in
	"ld-linux-x86-64.so.2 libc.so.6 " | "libc.so.6 " | "ld-linux-aarch64.so.1 libc.so.6 ") ok "symbols: needs $needed" ;;
	*) fail "symbols: needs $needed" ;;
	esac
	soname=$(readelf -d "$LIB" | awk '/SONAME/ {print $NF}')
	[ "$soname" = "[libnss_dnscache.so.2]" ] && ok "symbols: soname $soname" || fail "symbols: soname $soname"
}

# oracle: the same clients with and without the shim print the same thing,
# and the shim's queries arrived on the socket.
t_oracle() {
	before=$(socket_queries)
	f0=$FAILS
	for db in hosts ahosts ahostsv4 ahostsv6; do
		for n in $CORPUS; do
			a=$(plain getent $db "$n" 2>&1; echo "exit $?")
			b=$(shim getent $db "$n" 2>&1; echo "exit $?")
			if [ "$a" != "$b" ]; then
				fail "oracle: getent $db $n"
				printf '  glibc: %s\n  shim:  %s\n' "$a" "$b"
			fi
		done
	done
	[ "$FAILS" -eq "$f0" ] && ok "oracle: getent hosts|ahosts|ahostsv4|ahostsv6 over $(echo $CORPUS | wc -w) names"
	a=$(plain python3 "$HERE/pyclient.py" $CORPUS 2>&1)
	b=$(shim python3 "$HERE/pyclient.py" $CORPUS 2>&1)
	if [ "$a" = "$b" ]; then ok "oracle: python3 over $(echo $CORPUS | wc -w) names"; else
		fail "oracle: python3"
		echo "$a" >"$W/py.glibc"; echo "$b" >"$W/py.shim"; diff "$W/py.glibc" "$W/py.shim" | head -20
	fi
	a=$(plain "$B/erange" $CORPUS 2>&1)
	b=$(shim "$B/erange" $CORPUS 2>&1)
	[ "$a" = "$b" ] && ok "oracle: gethostbyname_r with ERANGE retries" || {
		fail "oracle: gethostbyname_r"; echo "$a" >"$W/e.glibc"; echo "$b" >"$W/e.shim"; diff "$W/e.glibc" "$W/e.shim" | head; }
	after=$(socket_queries)
	[ "$after" -gt "$before" ] && ok "oracle: getent done ($((after - before)) queries on the socket)" ||
		fail "oracle: no query reached the socket"
}

# programs: curl by name to a loopback HTTP server; the gethostbyname_r
# retry protocol costs no second round trip.
t_programs() {
	mkdir -p "$W/www"; echo hello-dnscache >"$W/www/index.html"
	port=18080
	python3 -m http.server --bind 127.0.0.1 --directory "$W/www" $port >/dev/null 2>&1 &
	PIDS="$PIDS $!"
	i=0; until plain curl -s -o /dev/null "http://127.0.0.1:$port/" || [ $i -gt 50 ]; do i=$((i+1)); sleep 0.1; done
	c0=$(cat "$W/unix.log" 2>/dev/null | grep -c 'loop-web')
	out=$(shim curl -4 -s "http://loop-web.example.com:$port/index.html" || true)
	c1=$(cat "$W/unix.log" 2>/dev/null | grep -c 'loop-web')
	[ "$out" = hello-dnscache ] && [ "$c1" -gt "$c0" ] && ok "programs: curl by name through the socket" ||
		fail "programs: curl got '$out' ($c0 -> $c1 socket queries)"
	q0=$(socket_queries)
	out=$(shim "$B/erange" big-erange.example.com.)
	q1=$(socket_queries)
	case "$out" in
	*"retries=0"*) fail "programs: erange did not retry: $out" ;;
	*addr=198.19.0.40*) [ $((q1 - q0)) -eq 1 ] && ok "programs: ERANGE retries served from one query" ||
		fail "programs: ERANGE retries cost $((q1 - q0)) queries" ;;
	*) fail "programs: erange: $out" ;;
	esac
}

# fallback: whatever happens to the socket, answers still come (via UDP).
t_fallback() {
	want=$(plain getent ahosts www.example.com)
	got=$(env LD_PRELOAD="$LIB" DNSCACHE_SOCKET="$W/missing.sock" getent ahosts www.example.com || true)
	[ "$got" = "$want" ] && ok "fallback: socket missing" || fail "fallback: socket missing: $got"

	stop unix
	start unix --unix "$W/dns.sock" --log "$W/unix.log" --fault garbage
	got=$(shim getent ahosts www.example.com || true)
	[ "$got" = "$want" ] && ok "fallback: garbage reply" || fail "fallback: garbage reply: $got"

	stop unix
	start unix --unix "$W/dns.sock" --log "$W/unix.log" --fault close
	got=$(shim getent ahosts www.example.com || true)
	[ "$got" = "$want" ] && ok "fallback: connection closed" || fail "fallback: connection closed: $got"

	stop unix
	start unix --unix "$W/dns.sock" --log "$W/unix.log" --fault servfail
	if shim getent ahosts www.example.com >/dev/null; then fail "fallback: SERVFAIL fell back"; else
		ok "fallback: SERVFAIL is TRYAGAIN (no fallback)"; fi

	stop unix
	start unix --unix "$W/dns.sock" --log "$W/unix.log" --fault hang
	q0=$(socket_queries)
	out=$(env LD_PRELOAD="$LIB" DNSCACHE_SOCKET="$W/dns.sock" DNSCACHE_TIMEOUT_MS=300 \
		DNSCACHE_BREAKER_AFTER=1 python3 -c '
import socket, time
for i in range(3):
    t = time.monotonic()
    a = socket.getaddrinfo("www.example.com", 80, 0, socket.SOCK_STREAM)
    print(int((time.monotonic() - t) * 1000), a[0][4][0])
')
	q1=$(socket_queries)
	first=$(echo "$out" | head -1 | cut -d' ' -f1)
	addrs=$(echo "$out" | cut -d' ' -f2 | sort -u | wc -l)
	# The bound is a hang detector (glibc's own retry is 5 s), not a benchmark.
	[ "$first" -lt 2500 ] && [ "$addrs" -eq 1 ] && ok "fallback: hung server, first lookup ${first} ms" ||
		fail "fallback: hung server: $out"
	# Breaker: only the first lookup (A and AAAA of one candidate) reached the socket.
	[ $((q1 - q0)) -eq 2 ] && ok "fallback: breaker skipped the socket after the timeout" ||
		fail "fallback: breaker: $((q1 - q0)) queries reached the hung socket"

	stop unix
	start unix --unix "$W/dns.sock" --log "$W/unix.log"
	shim python3 -c '
import socket, sys, time
bad = 0
for i in range(300):
    try:
        socket.getaddrinfo("n%d.example.com" % i, 80)
    except OSError as e:
        bad += 1
    time.sleep(0.002)
sys.exit(1 if bad else 0)
' &
	cp=$!
	sleep 0.3
	stop unix
	if wait $cp; then ok "fallback: server killed mid-run"; else fail "fallback: server killed mid-run"; fi
	start unix --unix "$W/dns.sock" --log "$W/unix.log" --reverse

	q0=$(socket_queries)
	env LD_PRELOAD="$LIB" DNSCACHE_SOCKET="$W/dns.sock" DNSCACHE_DISABLE=1 getent ahosts www.example.com >/dev/null
	[ "$(socket_queries)" -eq "$q0" ] && ok "fallback: DNSCACHE_DISABLE" || fail "fallback: DNSCACHE_DISABLE still used the socket"
}

t_stress() {
	q0=$(socket_queries)
	if out=$(shim "$B/stress" 8 500); then ok "stress: $out"; else fail "stress: $out"; fi
	q1=$(socket_queries)
	[ $((q1 - q0)) -gt 4000 ] && ok "stress: $((q1 - q0)) queries on the socket" || fail "stress: only $((q1 - q0)) socket queries"
}

t_valgrind() {
	if out=$(shim valgrind -q --error-exitcode=99 --leak-check=full --errors-for-leak-kinds=definite \
		getent ahosts cname3-v.example.com 2>&1) && [ -n "$out" ]; then ok "valgrind: getent ahosts clean"; else
		fail "valgrind: getent ahosts"; echo "$out" | head -30; fi
	if out=$(shim valgrind -q --error-exitcode=99 --leak-check=full --errors-for-leak-kinds=definite \
		"$B/erange" big-v.example.com kubernetes nx-v.example.com 2>&1); then ok "valgrind: gethostbyname_r clean"; else
		fail "valgrind: gethostbyname_r"; echo "$out" | head -30; fi
}

t_sanitizers() {
	asan=$(gcc -print-file-name=libasan.so)
	ubsan=$(gcc -print-file-name=libubsan.so)
	a=$(plain python3 "$HERE/pyclient.py" $CORPUS 2>&1)
	b=$(env LD_PRELOAD="$asan $ubsan $B/asan/libnss_dnscache.so.2" DNSCACHE_SOCKET="$W/dns.sock" \
		ASAN_OPTIONS=detect_leaks=0:abort_on_error=1 UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 \
		python3 "$HERE/pyclient.py" $CORPUS 2>&1) || true
	[ "$a" = "$b" ] && ok "sanitizers: ASan/UBSan build under python3 clean" || {
		fail "sanitizers: python3 under ASan/UBSan"; echo "$b" | grep -A20 -m1 -E 'ERROR|runtime error' || true; }
}

# bench: getaddrinfo(AF_UNSPEC) for an external name under ndots:5 and three
# search domains (four candidates), shim vs glibc over UDP, same server.
# Called by bench/run.sh (make bench), not by make test.
t_bench() {
	iters=${BENCH_N:-500}
	stop unix
	start unix --unix "$W/dns.sock"
	echo "glibc udp: $(plain "$B/gai_bench" www.example.com "$iters")"
	echo "shim unix: $(shim "$B/gai_bench" www.example.com "$iters")"
}
