# sections.sh: the test sections of run.sh (sourced; uses its helpers).

# symbols: only the NSS entry points exported, only libc needed, nothing
# above GLIBC_2.17 required (a newer version kills every process of an older
# image at start).
t_symbols() {
	exp=$(objdump -T "$LIB" | awk '$2 == "g" && $4 == ".text" {print $NF}' | sort | tr '\n' ' ')
	want="_nss_dnscache_gethostbyaddr2_r _nss_dnscache_gethostbyaddr_r _nss_dnscache_gethostbyname2_r _nss_dnscache_gethostbyname3_r _nss_dnscache_gethostbyname4_r _nss_dnscache_gethostbyname_r "
	[ "$exp" = "$want" ] && ok "symbols: exports $exp" || fail "symbols: exports '$exp'"
	newest=$(objdump -T "$LIB" | grep -o 'GLIBC_[0-9.]*' | sort -t. -k1,1 -k2,2n -V | tail -1)
	too_new=$(objdump -T "$LIB" | grep -o 'GLIBC_[0-9.]*' | sort -u | awk -F'[_.]' '$2 > 2 || ($2 == 2 && $3 > 17)')
	[ -z "$too_new" ] && ok "symbols: newest version $newest" || fail "symbols: needs $too_new"
	needed=$(readelf -d "$LIB" | awk '/NEEDED/ {print $NF}' | tr -d '[]' | sort | tr '\n' ' ')
	case "$needed" in
	"ld-linux-x86-64.so.2 libc.so.6 " | "libc.so.6 " | "ld-linux-aarch64.so.1 libc.so.6 ") ok "symbols: needs $needed" ;;
	*) fail "symbols: needs $needed" ;;
	esac
	mexp=$(objdump -T "$B/libdnscache-musl.so" | awk '$2 == "g" && $4 == ".text" {print $NF}' | sort | tr '\n' ' ')
	mwant="freeaddrinfo getaddrinfo gethostbyname gethostbyname2 gethostbyname2_r gethostbyname_r getnameinfo "
	mneed=$(readelf -d "$B/libdnscache-musl.so" | awk '/NEEDED/ {print $NF}' | tr -d '[]' | tr '\n' ' ')
	[ "$mexp" = "$mwant" ] && [ "$mneed" = "libc.so " ] && ok "symbols: musl build exports $mexp, needs $mneed" ||
		fail "symbols: musl build exports '$mexp', needs '$mneed'"
	soname=$(readelf -d "$LIB" | awk '/SONAME/ {print $NF}')
	[ "$soname" = "[libnss_dnscache.so.2]" ] && ok "symbols: soname $soname" || fail "symbols: soname $soname"
}

# oracle: the same clients with and without the shim print the same thing,
# and the shim's queries arrived on the socket.
t_oracle() {
	before=$(socket_queries)
	f0=$FAILS summary=""
	for db in hosts ahosts ahostsv4 ahostsv6; do
		found=0
		for n in $CORPUS; do
			a=$(plain getent $db "$n" 2>&1; echo "exit $?")
			b=$(shim env DNSCACHE_FALLBACK=0 getent $db "$n" 2>&1; echo "exit $?")
			case "$a" in *"exit 0") found=$((found + 1)) ;; esac
			if [ "$a" != "$b" ]; then
				fail "oracle: getent $db $n"
				printf '  glibc: %s\n  shim:  %s\n' "$a" "$b"
			fi
		done
		# Guard against a vacuous comparison (e.g. AI_ADDRCONFIG failing
		# every lookup before any query): most of the corpus resolves.
		[ $found -ge 20 ] || fail "oracle: glibc found only $found names with getent $db"
		summary="$summary $db:$found"
	done
	[ "$FAILS" -eq "$f0" ] && ok "oracle: getent over $(echo $CORPUS | wc -w) names, identical (found by glibc:$summary)"
	a=$(plain python3 "$HERE/pyclient.py" $CORPUS 2>&1)
	b=$(shim env DNSCACHE_FALLBACK=0 python3 "$HERE/pyclient.py" $CORPUS 2>&1)
	if [ "$a" = "$b" ]; then ok "oracle: python3 over $(echo $CORPUS | wc -w) names"; else
		fail "oracle: python3"
		echo "$a" >"$W/py.glibc"; echo "$b" >"$W/py.shim"; diff "$W/py.glibc" "$W/py.shim" | head -20
	fi
	a=$(plain "$B/erange" $CORPUS 2>&1)
	b=$(shim env DNSCACHE_FALLBACK=0 "$B/erange" $CORPUS 2>&1)
	[ "$a" = "$b" ] && ok "oracle: gethostbyname_r with ERANGE retries" || {
		fail "oracle: gethostbyname_r"; echo "$a" >"$W/e.glibc"; echo "$b" >"$W/e.shim"; diff "$W/e.glibc" "$W/e.shim" | head; }
	after=$(socket_queries)
	[ "$after" -gt "$before" ] && ok "oracle: getent done ($((after - before)) queries on the socket)" ||
		fail "oracle: no query reached the socket"
	# A name the cache answered (here: NXDOMAIN, then myhostname and files
	# after dns) is not asked again of kube-dns (UDP/TCP on 127.0.0.1:53).
	cp /etc/nsswitch.conf "$W/nss.saved"
	printf 'hosts: dns myhostname files\n' >/etc/nsswitch.conf
	u0=$(($(udp_requests) - $(socket_queries)))
	a=$(shim getent ahosts nx-once.example.com. myhost localhost www.example.com. 2>"$W/once.err"; echo "exit $?")
	u1=$(($(udp_requests) - $(socket_queries)))
	cat "$W/nss.saved" >/etc/nsswitch.conf
	case "$a" in
	*"STREAM localhost"*"exit 2") [ "$u1" -eq "$u0" ] && ok "oracle: answers of the cache are not asked of kube-dns" ||
		fail "oracle: kube-dns asked $((u1 - u0)) times for names the cache answered"; cat "$W/once.err" ;;
	*) fail "oracle: dns myhostname files: $a" ;;
	esac
}

# settled_queries: the socket's request count once it stops moving (a
# lookup may close its connection before the server has read every query).
settled_queries() {
	sq=$(socket_queries)
	while sleep 0.1; do
		sq2=$(socket_queries)
		[ "$sq2" = "$sq" ] && break
		sq=$sq2
	done
	echo "$sq"
}

# cost ENV... -- NAME SLEEP: socket queries of two getaddrinfo(NAME) in one
# process, SLEEP seconds apart.
cost() {
	q0=$(settled_queries)
	env "$@" LD_PRELOAD="$LIB" DNSCACHE_SOCKET="$W/dns.sock" python3 -c '
import socket, sys, time
socket.getaddrinfo(sys.argv[1], 80)
time.sleep(float(sys.argv[2]))
socket.getaddrinfo(sys.argv[1], 80)' "$NAME" "$SLEEP" >/dev/null 2>&1 || echo "lookup failed" >&2
	echo $(($(settled_queries) - q0))
}

# negcache: search candidates known to be NXDOMAIN are not asked again
# within their lifetime (RFC 2308 TTL, capped), and a dotted name's search
# candidates go out in one batch; the oracle shows results do not change.
t_negcache() {
	# www.example.com: three NXDOMAIN search candidates, then as-is (A+AAAA each).
	NAME=www.example.com SLEEP=0
	n=$(cost DNSCACHE_NEGCACHE_MS=5000)
	[ "$n" -eq 10 ] && ok "negcache: second lookup asks only the name as-is (8+2 queries)" ||
		fail "negcache: $n queries for two lookups of $NAME, want 8+2"
	n=$(cost DNSCACHE_NEGCACHE_MS=0)
	[ "$n" -eq 16 ] && ok "negcache: off with DNSCACHE_NEGCACHE_MS=0 (8+8 queries)" ||
		fail "negcache: $n queries with the cache off, want 16"
	SLEEP=0.4
	n=$(cost DNSCACHE_NEGCACHE_MS=200)
	[ "$n" -eq 16 ] && ok "negcache: entries expire at the cap" ||
		fail "negcache: $n queries with entries past the cap, want 16"
	# web.ns1: the second search candidate answers; the batch sent the third too.
	NAME=web.ns1 SLEEP=0
	n=$(cost DNSCACHE_NEGCACHE_MS=0)
	[ "$n" -eq 12 ] && ok "pipeline: a dotted name's search list in one batch (6+6 queries)" ||
		fail "pipeline: $n queries for web.ns1, want 6+6"
	n=$(cost DNSCACHE_NEGCACHE_MS=0 DNSCACHE_PIPELINE=0)
	[ "$n" -eq 8 ] && ok "pipeline: off with DNSCACHE_PIPELINE=0 (4+4 queries, as glibc)" ||
		fail "pipeline: $n queries sequentially for web.ns1, want 4+4"
	a=$(plain python3 "$HERE/pyclient.py" $CORPUS 2>&1)
	b=$(shim env DNSCACHE_FALLBACK=0 DNSCACHE_NEGCACHE_MS=0 DNSCACHE_PIPELINE=0 python3 "$HERE/pyclient.py" $CORPUS 2>&1)
	[ "$a" = "$b" ] && ok "oracle: python3 without negative cache and batching" || fail "oracle: python3, sequential"
	w=$(curl -s http://127.0.0.1:9153/metrics | grep "^coredns_unixsock_errors_total" | tr "\n" " ")
	echo "info server unixsock errors so far (a batch closed with replies unread counts as a write error): $w"
}

# programs: curl by name to a loopback HTTP server; the gethostbyname_r
# retry protocol costs no second round trip.
t_programs() {
	mkdir -p "$W/www"; echo hello-dnscache >"$W/www/index.html"
	port=18080
	python3 -m http.server --bind 127.0.0.1 --directory "$W/www" $port >/dev/null 2>&1 &
	PIDS="$PIDS $!"
	i=0; until plain curl -s -o /dev/null "http://127.0.0.1:$port/" || [ $i -gt 50 ]; do i=$((i+1)); sleep 0.1; done
	q0=$(socket_queries)
	out=$(shim curl -4 -s "http://loop-web.example.com:$port/index.html" || true)
	q1=$(socket_queries)
	[ "$out" = hello-dnscache ] && [ "$q1" -gt "$q0" ] && ok "programs: curl by name through the socket" ||
		fail "programs: curl got '$out' ($q0 -> $q1 socket queries)"
	q0=$(socket_queries)
	out=$(shim "$B/erange" big-erange.example.com.)
	q1=$(socket_queries)
	case "$out" in
	*"retries=0"*) fail "programs: erange did not retry: $out" ;;
	*addr=198.18.*) [ $((q1 - q0)) -eq 1 ] && ok "programs: ERANGE retries served from one query" ||
		fail "programs: ERANGE retries cost $((q1 - q0)) queries" ;;
	*) fail "programs: erange: $out" ;;
	esac
}

# killed_run SOCKET PORT CMD...: run CMD in the background through the shim
# against the second server, SIGKILL that server once it has served 10
# socket queries, and return CMD's status.
killed_run() {
	ks=$1 kp=$2; shift 2
	env LD_PRELOAD="$LIB" DNSCACHE_SOCKET="$ks" "$@" >"$W/killed.out" 2>&1 &
	cp=$!
	i=0
	while [ "$(unix_requests "$kp")" -lt 10 ] && [ $i -lt 400 ]; do i=$((i + 1)); sleep 0.05; done
	KILLED_AT=$(unix_requests "$kp")
	stop_kill kill
	wait $cp
}

# fallback: whatever happens to the socket, answers still come (via UDP).
t_fallback() {
	want=$(plain getent ahosts www.example.com)
	got=$(env LD_PRELOAD="$LIB" DNSCACHE_SOCKET="$W/missing.sock" getent ahosts www.example.com || true)
	[ "$got" = "$want" ] && ok "fallback: socket missing" || fail "fallback: socket missing: $got"

	for f in garbage reset wrongid; do
		start_fault f$f "fault:$f"
		got=$(env LD_PRELOAD="$LIB" DNSCACHE_SOCKET="$W/f$f.sock" DNSCACHE_TIMEOUT_MS=500 \
			getent ahosts www.example.com || true)
		[ "$got" = "$want" ] && ok "fallback: $f reply" || fail "fallback: $f reply: $got"
		stop f$f
	done

	# SERVFAIL: a node cache whose upstreams are all down (bin/coredns
	# forwarding to a closed port) in front of kube-dns (the main server,
	# resolv.conf's nameserver, over UDP).  The cache's SERVFAIL falls back
	# to glibc's dns, which answers; after DNSCACHE_SERVFAIL_AFTER such
	# lookups the breaker skips the cache, so a failing cache does not
	# double the load of every lookup.
	write_sfail_conf
	start_coredns sfail
	got=$(env LD_PRELOAD="$LIB" DNSCACHE_SOCKET="$W/sfail.sock" getent ahosts www.example.com || true)
	[ -n "$want" ] && [ "$got" = "$want" ] && ok "fallback: SERVFAIL from the cache, kube-dns answers" ||
		fail "fallback: SERVFAIL: '$got'"
	q0=$(unix_requests 9155)
	out=$(env LD_PRELOAD="$LIB" DNSCACHE_SOCKET="$W/sfail.sock" DNSCACHE_SERVFAIL_AFTER=3 python3 -c '
import socket
ok = 0
for i in range(20):
    ok += len(socket.getaddrinfo("v4-sf%d.example.com." % i, 80, socket.AF_INET, socket.SOCK_STREAM)) == 1
print(ok)' 2>&1)
	q1=$(unix_requests 9155)
	[ "$out" = 20 ] && [ $((q1 - q0)) -eq 3 ] &&
		ok "fallback: SERVFAIL breaker: 20 of 20 answered, the cache asked 3 times" ||
		fail "fallback: SERVFAIL breaker: $out of 20 answered, the cache asked $((q1 - q0)) times (want 3)"
	out=$(env LD_PRELOAD="$LIB" DNSCACHE_SOCKET="$W/sfail.sock" DNSCACHE_FALLBACK=0 getent ahosts www.example.com; echo "exit $?")
	[ "$out" = "exit 2" ] && ok "fallback: DNSCACHE_FALLBACK=0 reports the cache's SERVFAIL" ||
		fail "fallback: DNSCACHE_FALLBACK=0: $out"
	stop sfail

	start_fault fhang "fault:blackhole"
	out=$(env LD_PRELOAD="$LIB" DNSCACHE_SOCKET="$W/fhang.sock" DNSCACHE_TIMEOUT_MS=300 \
		DNSCACHE_BREAKER_AFTER=1 python3 -c '
import socket, time
for i in range(3):
    t = time.monotonic()
    a = socket.getaddrinfo("www.example.com", 80, 0, socket.SOCK_STREAM)
    print(int((time.monotonic() - t) * 1000), a[0][4][0])
')
	stop fhang
	hung=$(fault_queries fhang)
	first=$(echo "$out" | head -1 | cut -d' ' -f1)
	addrs=$(echo "$out" | cut -d' ' -f2 | sort -u | wc -l)
	# The bound is a hang detector (glibc's own retry is 5 s), not a benchmark.
	[ "${first:-9999}" -lt 2500 ] && [ "$addrs" -eq 1 ] && ok "fallback: hung server, first lookup ${first} ms" ||
		fail "fallback: hung server: $out"
	# Breaker: only the first lookup reached the socket: A and AAAA of the
	# three search candidates, sent in one batch, then the timeout.
	[ "$hung" = 6 ] && ok "fallback: breaker skipped the socket after the timeout" ||
		fail "fallback: breaker: '$hung' queries reached the hung socket"

	write_kill_conf
	start_coredns kill
	if killed_run "$W/kill.sock" 9154 python3 -c '
import socket, sys, time
bad = 0
for i in range(300):
    try:
        socket.getaddrinfo("n%d.example.com" % i, 80)
    except OSError as e:
        bad += 1
    time.sleep(0.002)
sys.exit(1 if bad else 0)
'; then ok "fallback: server killed mid-run (after $KILLED_AT socket queries)"; else
		fail "fallback: server killed mid-run"; head "$W/killed.out"; fi

	q0=$(socket_queries)
	env LD_PRELOAD="$LIB" DNSCACHE_SOCKET="$W/dns.sock" DNSCACHE_DISABLE=1 getent ahosts www.example.com >/dev/null
	[ "$(socket_queries)" -eq "$q0" ] && ok "fallback: DNSCACHE_DISABLE" || fail "fallback: DNSCACHE_DISABLE still used the socket"
}

# stress: threads and fork children resolving at once, fd counts checked.
# STRESS_RUNS=N repeats it (the flake hunt: make test runs it once).
t_stress() {
	runs=${STRESS_RUNS:-1} i=0 bad=0
	q0=$(socket_queries)
	while [ $i -lt "$runs" ]; do
		i=$((i + 1))
		if ! out=$(shim "$B/stress" 8 500 2>&1); then
			bad=$((bad + 1))
			echo "  run $i: $out" | head -20
		fi
	done
	q1=$(socket_queries)
	[ $bad -eq 0 ] && ok "stress: $runs run(s): $(echo "$out" | tail -1)" || fail "stress: $bad of $runs runs failed"
	[ $((q1 - q0)) -gt $((4000 * runs)) ] && ok "stress: $((q1 - q0)) queries on the socket" ||
		fail "stress: only $((q1 - q0)) socket queries"
}

VG="valgrind -q --error-exitcode=99 --leak-check=full --errors-for-leak-kinds=definite"

t_valgrind() {
	if out=$(shim $VG getent ahosts cname3-v.example.com 2>&1) && [ -n "$out" ]; then
		ok "valgrind: getent ahosts clean"; else fail "valgrind: getent ahosts"; echo "$out" | head -30; fi
	if out=$(shim $VG "$B/erange" big-v.example.com kubernetes nx-v.example.com 2>&1); then
		ok "valgrind: gethostbyname_r clean"; else fail "valgrind: gethostbyname_r"; echo "$out" | head -30; fi
	# A fault run: the server is killed while getent resolves 150 names
	# through it (4 queries each: 3 search candidates, then as-is); the
	# rest fall back to UDP.  valgrind stays clean and every name resolves.
	names=$(seq -f 'vgk%g.example.com' 1 150)
	write_kill_conf
	start_coredns kill
	killed_run "$W/kill.sock" 9154 $VG getent ahostsv4 $names
	rc=$?
	got=$(grep -c ' STREAM vgk' "$W/killed.out")
	if [ $rc -eq 0 ] && [ "$got" -eq 150 ] && [ "$KILLED_AT" -lt 600 ]; then
		ok "valgrind: getent clean over 150 names, the server killed after $KILLED_AT socket queries"
	else
		fail "valgrind: fault run: exit $rc, $got of 150 names, killed after $KILLED_AT"
		grep -v " vgk" "$W/killed.out" | head -30; tail -5 "$W/kill.log"
	fi
	# The musl build, with a musl-linked program (test/mprobe.c: every AI_*
	# flag, gethostbyname*, ERANGE growth; then 8 threads; then the socket
	# missing and musl's resolver falling back).  LD_PRELOAD goes through
	# the $LIB directory: valgrind's launcher is a glibc program, which
	# cannot load the musl build (glibc's loader expands $LIB and loads the
	# glibc build; musl's takes it literally).  --soname-synonyms=somalloc=
	# NONE: musl's libc.so has no DT_SONAME, so without it valgrind does not
	# replace musl's malloc and reports every free of its memory invalid.
	# (ASan cannot do this part: musl-gcc has no sanitizer runtime.)
	pre=$(lib_dirs)
	mvg="$VG --soname-synonyms=somalloc=NONE"
	mnames="www.example.com kubernetes cname3-v.example.com. big-v.example.com. nx-v.example.com web.ns1 localhost"
	for run in "dns.sock $mnames" "dns.sock threads 8 $mnames" "missing.sock www.example.com kubernetes"; do
		sock=${run%% *} args=${run#* }
		q0=$(socket_queries)
		out=$(env LD_PRELOAD="$pre" DNSCACHE_SOCKET="$W/$sock" $mvg "$B/musl-mprobe" $args 2>&1)
		rc=$?
		q1=$(socket_queries)
		# The same output as without valgrind (errors would be in it).
		want=$(env LD_PRELOAD="$pre" DNSCACHE_SOCKET="$W/$sock" "$B/musl-mprobe" $args 2>&1 | sort)
		if [ $rc -eq 0 ] && [ -n "$want" ] && [ "$(echo "$out" | sort)" = "$want" ] &&
			{ [ "$sock" != dns.sock ] || [ "$q1" -gt "$q0" ]; }; then
			ok "valgrind: musl build clean, musl-mprobe $(echo "$args" | cut -d' ' -f1-2) ... ($sock, $((q1 - q0)) socket queries)"
		else
			fail "valgrind: musl build, $sock: exit $rc, $((q1 - q0)) socket queries"; echo "$out" | grep '==' | head -30
		fi
	done
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

# footprint: the shim's thread footprint (issue 13 item 7).  Thread-local
# storage is the PT_TLS segment's MemSiz of each build (every thread of a
# program that loads the library pays it).  Stack: test/stackuse.c measures
# on a painted stack what a call really touches below its entry point (the
# NSS entry points for glibc, the interposed functions for musl), over the
# cache's answers (absolute, short and dotted names through the search walk,
# CNAME chains, 40+40 addresses, NXDOMAIN, NODATA, gethostbyname_r's ERANGE
# retries), with and without DNSCACHE_DEBUG, the cache missing with the
# fallback off, and the fallback itself: there the shim's part is what the
# call uses beyond the same call of glibc's dns module (or of musl's own
# resolver) alone.  LD_BIND_NOW: the dynamic linker's lazy binding, which
# saves the vector registers on the stack at a function's first call, is not
# the shim's (musl binds at load time anyway).
FP_TLS_MAX=${FP_TLS_MAX:-2048}
FP_STACK_MAX=${FP_STACK_MAX:-4096}
FP_NAMES="www.example.com. kubernetes www.example.com web.ns1 db.default cname3-x.example.com. big-a.example.com. nx-a.example.com v6-a.example.com nodata-a.example.com. servfail-a.example.com."
# fp_worst FILE: the largest figure of stackuse's output and its case.
fp_worst() { sort -k2,2n "$1" | tail -1 | cut -d' ' -f1,2; }
# fp_extra SHIM REF: per line, SHIM's figure minus REF's (the same cases).
fp_extra() {
	paste -d' ' "$1" "$2" | awk '$1 == $4 { d = $2 - $5; print $1, (d > 0 ? d : 0) } $1 != $4 { print "mismatch", 999999 }'
}
fp_judge() {
	label=$1 file=$2
	worst=$(fp_worst "$file")
	n=$(wc -l <"$file")
	wc=${worst% *} wb=${worst#* }
	if [ "$n" -gt 0 ] && [ "${wb:-999999}" -le "$FP_STACK_MAX" ]; then
		ok "footprint: $label: at most $wb bytes of stack ($wc, of $n calls)"
	else
		fail "footprint: $label: ${wb:-no} bytes of stack (${wc:-no output}; limit $FP_STACK_MAX)"
		sort -k2,2n "$file" | tail -5 | sed 's/^/  /'
	fi
}
t_footprint() {
	for l in "$LIB" "$MLIB"; do
		t=$(readelf -lW "$l" | awk '$1 == "TLS" {print $6}')
		t=$((${t:-0}))
		[ "$t" -le "$FP_TLS_MAX" ] && ok "footprint: $(basename "$l"): $t bytes of thread-local storage" ||
			fail "footprint: $(basename "$l"): $t bytes of thread-local storage (limit $FP_TLS_MAX)"
	done
	fp=$W/fp; mkdir -p "$fp"
	# Statically: the worst chain of the shim's own frames (every byte
	# they reserve, touched or not), from gcc's call graphs (make callgraphs).
	for v in "glibc ci _nss_dnscache_gethostbyname4_r,_nss_dnscache_gethostbyname3_r,_nss_dnscache_gethostbyname2_r,_nss_dnscache_gethostbyname_r,_nss_dnscache_gethostbyaddr2_r,_nss_dnscache_gethostbyaddr_r,preload.c:dc_preload_init" \
		"musl ci-musl getaddrinfo,gethostbyname,gethostbyname2,gethostbyname_r,gethostbyname2_r,getnameinfo,freeaddrinfo"; do
		set -- $v
		if out=$(python3 "$HERE/stackcheck.py" "$FP_STACK_MAX" "$3" "$B/$2"/*.ci 2>&1); then
			ok "footprint: $1 build, call graph: $(echo "$out" | tail -1)"
		else
			fail "footprint: $1 build, call graph:"; echo "$out" | sed 's/^/  /'
		fi
	done
	se="LD_BIND_NOW=1 DNSCACHE_NEGCACHE_MS=0"
	# glibc: the cache answers (the fallback off: nothing is glibc's dns).
	cases=""
	for n in $FP_NAMES; do cases="$cases gh4:$n gh3:$n gh2:$n gh:$n erange:$n"; done
	: >"$fp/err"
	for d in 0 1; do
		e=$fp/err; [ $d = 0 ] || e=/dev/null
		env LD_PRELOAD="$LIB" DNSCACHE_SOCKET="$W/dns.sock" $se DNSCACHE_FALLBACK=0 DNSCACHE_DEBUG=$d \
			"$B/stackuse" $cases >"$fp/g.cache$d" 2>>"$e"
		env LD_PRELOAD="$LIB" DNSCACHE_SOCKET="$W/missing.sock" $se DNSCACHE_FALLBACK=0 DNSCACHE_DEBUG=$d \
			"$B/stackuse" $cases >"$fp/g.nosock$d" 2>>"$e"
	done
	cat "$fp/g.cache0" "$fp/g.cache1" "$fp/g.nosock0" "$fp/g.nosock1" >"$fp/g.all"
	grep -q 'gh4:www.example.com. .* rc=1$' "$fp/g.cache0" || fail "footprint: glibc: the cache did not answer: $(head -3 "$fp/g.cache0"; cat "$fp/err")"
	fp_judge "glibc build, the cache answering, debug on and off, no socket" "$fp/g.all"
	# glibc: the fallback to glibc's dns (the socket missing), and the
	# reverse lookups passed to it: what the shim adds to the dns module's
	# own call.  Each pair runs twice, the shim first, so that the shim's
	# run pays the first use of glibc's resolver state.
	: >"$fp/g.shim"; : >"$fp/g.ref"
	for n in $FP_NAMES 127.0.0.1; do
		case $n in
		*[a-z]*) pairs="gh4:$n/dns4:$n gh3:$n/dns3:$n" ;;
		*) pairs="gba:$n/dnsgba:$n" ;;
		esac
		for p in $pairs; do
			s=${p%/*} r=${p#*/}
			env LD_PRELOAD="$LIB" DNSCACHE_SOCKET="$W/missing.sock" $se "$B/stackuse" "$s" "$r" "$s" "$r" >"$fp/pair" 2>>"$fp/err"
			# The fallback answered as glibc's dns did.
			[ "$(cut -d' ' -f3 "$fp/pair" | sort -u | wc -l)" -eq 1 ] || fail "footprint: fallback $s: $(cat "$fp/pair")"
			sed -n '1p;3p' "$fp/pair" | sort -k2,2n | tail -1 | sed "s|^[^ ]*|$s|" >>"$fp/g.shim"
			sed -n '2p;4p' "$fp/pair" | sort -k2,2n | tail -1 | sed "s|^[^ ]*|$s|" >>"$fp/g.ref"
		done
	done
	fp_extra "$fp/g.shim" "$fp/g.ref" >"$fp/g.fallback"
	fp_judge "glibc build, the fallback to glibc's dns and gethostbyaddr, beyond dns's own $(fp_worst "$fp/g.ref" | cut -d' ' -f2)" "$fp/g.fallback"
	# musl: the interposed functions, the cache answering.
	cases=""
	for n in $FP_NAMES; do cases="$cases gai:$n gai6:$n ghbnr:$n ghbn2:$n"; done
	for d in 0 1; do
		e=$fp/err; [ $d = 0 ] || e=/dev/null
		env LD_PRELOAD="$MLIB" DNSCACHE_SOCKET="$W/dns.sock" $se DNSCACHE_FALLBACK=0 DNSCACHE_DEBUG=$d \
			"$B/musl-stackuse" $cases >"$fp/m.cache$d" 2>>"$e"
		env LD_PRELOAD="$MLIB" DNSCACHE_SOCKET="$W/missing.sock" $se DNSCACHE_FALLBACK=0 DNSCACHE_DEBUG=$d \
			"$B/musl-stackuse" $cases >"$fp/m.nosock$d" 2>>"$e"
	done
	cat "$fp/m.cache0" "$fp/m.cache1" "$fp/m.nosock0" "$fp/m.nosock1" >"$fp/m.all"
	grep -q 'gai:www.example.com. .* rc=0$' "$fp/m.cache0" || fail "footprint: musl: the cache did not answer: $(head -3 "$fp/m.cache0"; cat "$fp/err")"
	fp_judge "musl build, the cache answering, debug on and off, no socket" "$fp/m.all"
	# musl: the fallback to musl's own resolver, and getnameinfo (passed
	# to musl's own), beyond musl's own call.
	cases="$cases gni:127.0.0.1 gni:10.96.0.1"
	plain "$B/musl-stackuse" $cases >"$fp/m.ref" 2>>"$fp/err"
	env LD_PRELOAD="$MLIB" DNSCACHE_SOCKET="$W/missing.sock" "$B/musl-stackuse" $cases >"$fp/m.shim" 2>>"$fp/err"
	[ "$(cut -d' ' -f1,3 "$fp/m.ref")" = "$(cut -d' ' -f1,3 "$fp/m.shim")" ] ||
		fail "footprint: musl fallback: results differ from musl's own"
	fp_extra "$fp/m.shim" "$fp/m.ref" >"$fp/m.fallback"
	fp_judge "musl build, the fallback to musl's resolver and getnameinfo, beyond musl's own $(fp_worst "$fp/m.ref" | cut -d' ' -f2)" "$fp/m.fallback"
	# For the README: the public functions with and without the shim.
	for c in gai ghbnr; do
		a=$(plain env LD_BIND_NOW=1 "$B/stackuse" "$c:www.example.com" | cut -d' ' -f2)
		b=$(shim env LD_BIND_NOW=1 "$B/stackuse" "$c:www.example.com" | cut -d' ' -f2)
		echo "info footprint: glibc $c(www.example.com): $a bytes of stack with glibc's dns, $b through the shim"
	done
	a=$(plain "$B/musl-stackuse" gai:www.example.com | cut -d' ' -f2)
	b=$(env LD_PRELOAD="$MLIB" DNSCACHE_SOCKET="$W/dns.sock" "$B/musl-stackuse" gai:www.example.com | cut -d' ' -f2)
	echo "info footprint: musl getaddrinfo(www.example.com): $a bytes of stack with musl's resolver, $b through the shim"
	[ -s "$fp/err" ] && { echo "info footprint: stderr:"; head -5 "$fp/err"; }
	# FP_SHOW=1: every figure (for the README's table).
	[ -z "${FP_SHOW:-}" ] || for f in g.cache0 g.cache1 g.nosock0 g.nosock1 g.shim g.ref m.cache0 m.cache1 m.nosock0 m.nosock1 m.shim m.ref; do
		sed "s|^|$f |" "$fp/$f"; done
	return 0
}

# bench: the latency figure (bench/run.sh) against this namespace's server:
# the socket, and UDP on 127.0.0.1:53.  Not part of make test.
t_bench() {
	"$ROOT/bench/run.sh" -s "$W/dns.sock" -u 127.0.0.1:53
}

# clients NAMES...: every oracle program over NAMES, one block of output:
# getent hosts|ahosts, the C probe (getaddrinfo, getaddrinfo_a,
# gethostbyname, gethostbyname2_r with h_errno and errno), python3, perl,
# ruby, and curl's exit status (6: could not resolve).  Each line starts
# with the program's name, so a difference names its program.
clients() {
	# One getent per database for all names (a name not found prints no
	# line; the exit codes per name are the probe's and the others').
	for db in hosts ahosts; do
		getent $db "$@" 2>&1 | sed "s/^/getent $db /"
		echo "getent $db exit $?"
	done
	# curl's exit status for a few names: 6 could not resolve, else 0.
	for n in $(printf '%s\n' "$@" | sed -n '1p;9p;13p;17p;20p;25p;31p;$p'); do
		echo "curl $n: $(curl -s -o /dev/null --connect-timeout 3 "http://$n:1/" >/dev/null 2>&1; rc=$?; [ $rc -eq 6 ] || rc=0; echo $rc)"
	done
	"$B/probe" "$@" 2>&1 | sed 's/^/c /'
	python3 "$HERE/pyclient.py" "$@" 2>&1 | sed 's/^/python3 /'
	perl "$HERE/plclient.pl" "$@" 2>&1 | sed 's/^/perl /'
	ruby "$HERE/rbclient.rb" "$@" 2>&1 | sed 's/^/ruby /'
}

# compare LABEL: the clients over $NAMES under glibc and under the shim with
# glibc's dns fallback DISABLED (so any failure of the shim shows, not hidden
# by glibc answering the same); $DC_ENV (shell words, e.g. LOCALDOMAIN='a b')
# is exported to both.  Prints and counts the differing lines.
DIFFS=0
compare() {
	run='[ -z "$DC_ENV" ] || eval "export $DC_ENV"; . "$0"; B="$1"; HERE="$2"; shift 2; clients "$@"'
	env -u LD_PRELOAD DC_ENV="${DC_ENV:-}" sh -c "$run" "$HERE/sections.sh" "$B" "$HERE" $NAMES >"$W/cmp.glibc" 2>&1
	env DC_ENV="${DC_ENV:-}" LD_PRELOAD="$LIB" DNSCACHE_SOCKET="$W/dns.sock" DNSCACHE_FALLBACK=0 \
		sh -c "$run" "$HERE/sections.sh" "$B" "$HERE" $NAMES >"$W/cmp.shim" 2>&1
	nd=$(diff "$W/cmp.glibc" "$W/cmp.shim" | grep -c '^>')
	DIFFS=$((DIFFS + nd))
	if [ "$nd" -eq 0 ]; then ok "matrix: $1 ($(wc -l <"$W/cmp.glibc") lines identical)"; else
		fail "matrix: $1: $nd lines differ"
		diff "$W/cmp.glibc" "$W/cmp.shim" | head -"${MATRIX_SHOW:-12}"
	fi
}

# matrix: the glibc oracle over the hosts lines glibc users ship and the
# resolv.conf options and variables res_init reads.  nsswitch.conf and
# resolv.conf are bind mounts: rewritten in place, restored at the end.
MATRIX_NSS="files dns|dns files|files dns myhostname|files mdns4_minimal [NOTFOUND=return] dns myhostname|files [NOTFOUND=return] dns|files resolve [!UNAVAIL=return] dns myhostname|dns [!UNAVAIL=return] files|files dns [NOTFOUND=return] files|NONE|LAST"
t_matrix() {
	NAMES="$CORPUS $(hostname) servfail-w nodata-w"
	printf 'foo v4-alias.example.com\nkubernetes web\nweb kubernetes.default\n' >"$W/aliases"
	cp /etc/nsswitch.conf "$W/nss.saved"; cp /etc/resolv.conf "$W/resolv.saved"
	DC_ENV=""
	[ "${MATRIX_ONLY:-nss}" = nss ] && while read -r line; do
		case "$line" in
		NONE) printf 'passwd: files\n' >/etc/nsswitch.conf ;;
		LAST) printf 'hosts: files\nhosts: dns files\n' >/etc/nsswitch.conf ;;
		*) printf 'hosts: %s\n' "$line" >/etc/nsswitch.conf ;;
		esac
		compare "hosts: $line"
	done <<LINES
$(echo "$MATRIX_NSS" | tr '|' '\n')
LINES
	cat "$W/nss.saved" >/etc/nsswitch.conf
	base="nameserver 127.0.0.1"
	k8s="search default.svc.cluster.local svc.cluster.local cluster.local"
	[ "${MATRIX_ONLY:-resolv}" = resolv ] && while IFS='|' read -r label conf DC_ENV; do
		printf '%s\n%b\n' "$base" "$conf" >/etc/resolv.conf
		compare "resolv.conf $label${DC_ENV:+ with $DC_ENV}"
	done <<VARIANTS
ndots:0|$k8s\\noptions ndots:0|
ndots:1|$k8s\\noptions ndots:1|
ndots:5|$k8s\\noptions ndots:5|
ndots:15|$k8s\\noptions ndots:15 timeout:1|
no search list||
domain|domain svc.cluster.local|
6 search domains|search a.example.com default.svc.cluster.local b.example.com svc.cluster.local c.example.com cluster.local\\noptions ndots:2|
no-aaaa|$k8s\\noptions ndots:5 no-aaaa|
single-request rotate|$k8s\\noptions ndots:5 single-request rotate timeout:2 attempts:3|
SERVFAIL then NXDOMAIN|search example.com cluster.local\\noptions ndots:1 no-tld-query|
LOCALDOMAIN|$k8s\\noptions ndots:5|LOCALDOMAIN='svc.cluster.local  cluster.local'
RES_OPTIONS|$k8s\\noptions ndots:5|RES_OPTIONS='ndots:1 no-aaaa'
prefix options|$k8s\\noptions ndot:2 no-tld-query-x rotat|
ndots: without a number|$k8s\\noptions ndots:|
LOCALDOMAIN starting with a blank|$k8s\\noptions ndots:5|LOCALDOMAIN=' svc.cluster.local'
sortlist|$k8s\\nsortlist 198.18.183.5/255.255.255.255 198.18.183.3&255.255.255.255 10.0.0.0\\noptions ndots:5|
HOSTALIASES|$k8s\\noptions ndots:5|HOSTALIASES=$W/aliases
VARIANTS
	if [ "${MATRIX_ONLY:-resolv}" = resolv ]; then
		# More search domains than the old 32 (glibc has no limit): the
		# 40th answers kubernetes; the others are NXDOMAIN.
		{ printf 'nameserver 127.0.0.1\nsearch'
		  for i in $(seq 1 39); do printf ' n%d.cluster.local' "$i"; done
		  printf ' default.svc.cluster.local\noptions ndots:5\n'; } >/etc/resolv.conf
		compare "resolv.conf 40 search domains"
		# A file over 16 KiB: the options at its end count.
		{ printf 'nameserver 127.0.0.1\n%s\n' "$k8s"
		  for i in $(seq 1 300); do printf '# %070d\n' "$i"; done
		  printf 'options ndots:1 no-aaaa\n'; } >/etc/resolv.conf
		compare "resolv.conf of $(wc -c </etc/resolv.conf) bytes"
	fi
	DC_ENV=""
	cat "$W/resolv.saved" >/etc/resolv.conf
	echo "info matrix: $DIFFS lines differ from glibc in total"
}

# keep: the kept connection against what programs do to fds (test/keep.c):
# fork, exec, close_range, dup2 over its fd, RLIMIT_NOFILE 4, 1000 threads;
# answers compared with glibc's, the fallback off (a broken connection
# would show as an error, not hide behind glibc's dns).
KEEP_NAMES="v4-k1.example.com. v4-k2.example.com kubernetes v4-k3.example.com."
t_keep() {
	for m in fork exec closefrom dup2 rlimit; do
		# sorted: a fork's parent and child print in any order
		a=$(plain "$B/keep" $m $KEEP_NAMES 2>&1 | grep -v '^ok\|^dup2' | sort)
		b=$(shim env DNSCACHE_FALLBACK=0 "$B/keep" $m $KEEP_NAMES 2>&1)
		bad=$(echo "$b" | grep '^FAIL')
		b=$(echo "$b" | grep -v '^ok\|^dup2' | sort)
		if [ -z "$bad" ] && [ "$a" = "$b" ]; then ok "keep: $m"; else
			fail "keep: $m: $bad"; echo "$a" >"$W/k.glibc"; echo "$b" >"$W/k.shim"; diff "$W/k.glibc" "$W/k.shim" | head; fi
	done
	out=$(shim env DNSCACHE_FALLBACK=0 "$B/keep" threads 1000 $KEEP_NAMES 2>&1)
	n=$(echo "$out" | sed -n 's/^sockets //p')
	case "$out" in
	*FAIL*) fail "keep: 1000 threads: $(echo "$out" | grep FAIL)" ;;
	*) [ "${n:-99}" -le 4 ] && ok "keep: 1000 threads, $n connection(s) kept (DNSCACHE_CONNS 4)" ||
		fail "keep: 1000 threads left $n sockets open" ;;
	esac
	# A server restart under a running program: the kept connection is
	# reopened, and no lookup fails (fallback off).
	write_kill_conf
	start_coredns kill
	env LD_PRELOAD="$LIB" DNSCACHE_SOCKET="$W/kill.sock" DNSCACHE_FALLBACK=0 python3 -c '
import socket, sys, time
bad = 0
for i in range(40):
    try:
        socket.getaddrinfo("v4-r%d.example.com." % i, 80, socket.AF_INET, socket.SOCK_STREAM)
    except OSError as e:
        bad += 1
        print("lookup", i, e)
    time.sleep(0.05)
    if i == 19:
        open(sys.argv[1], "w").close()
        while open(sys.argv[1]).read().strip() != "restarted":
            time.sleep(0.02)
sys.exit(1 if bad else 0)' "$W/restart.flag" >"$W/restart.out" 2>&1 &
	cp=$!
	i=0; while [ ! -e "$W/restart.flag" ] && [ $i -lt 200 ]; do i=$((i + 1)); sleep 0.05; done
	stop kill
	start_coredns kill
	echo restarted >"$W/restart.flag"
	if wait $cp && [ "$(unix_requests 9154)" -ge 20 ]; then
		ok "keep: server restarted under a running program, 40 of 40 lookups answered by the cache"
	else fail "keep: server restart: $(cat "$W/restart.out") ($(unix_requests 9154) queries on the new server)"; fi
	stop kill
}

# lib_dirs: both builds installed as the DaemonSet installs them, under
# $W/dc/$LIB; prints the one LD_PRELOAD value for glibc and musl programs.
lib_dirs() {
	d=$W/dc
	for l in lib/x86_64-linux-gnu lib/aarch64-linux-gnu lib64 lib; do mkdir -p "$d/$l"; cp "$LIB" "$d/$l/libdnscache.so"; done
	mkdir -p "$d/\$LIB"; cp "$MLIB" "$d/\$LIB/libdnscache.so"
	echo "$d/\$LIB/libdnscache.so"
}

# musl: libdnscache-musl.so against musl's own resolver over UDP to the same
# server (the oracle), with musl-linked programs (test/mprobe.c): every AI_*
# flag, families, services, gethostbyname*, ERANGE, threads and fork; the
# fallback off, so a failure of the shim shows.  Names whose replies exceed
# 512 bytes are left out: musl 1.2.3 reads 512 bytes of a UDP reply (README
# Bugs).
MLIB=$B/libdnscache-musl.so
t_musl() {
	names=$(echo "$CORPUS servfail-w nodata-w" | tr ' ' '\n' | grep -v '^big' | tr '\n' ' ')
	m0=$(socket_queries)
	cp /etc/resolv.conf "$W/resolv.saved"
	while IFS='|' read -r label conf; do
		printf 'nameserver 127.0.0.1\n%b\n' "$conf" >/etc/resolv.conf
		a=$(plain "$B/musl-mprobe" $names 2>&1)
		b=$(env LD_PRELOAD="$MLIB" DNSCACHE_SOCKET="$W/dns.sock" DNSCACHE_FALLBACK=0 "$B/musl-mprobe" $names 2>&1)
		if [ "$a" = "$b" ]; then ok "musl: $label ($(echo "$a" | wc -l) lines identical)"; else
			echo "$a" >"$W/m.musl"; echo "$b" >"$W/m.shim"
			fail "musl: $label: $(diff "$W/m.musl" "$W/m.shim" | grep -c '^>') lines differ"
			diff "$W/m.musl" "$W/m.shim" | head -"${MATRIX_SHOW:-10}"
		fi
	done <<VARIANTS
ndots:5, k8s search list|search default.svc.cluster.local svc.cluster.local cluster.local\\noptions ndots:5 timeout:1 attempts:1
ndots:1|search default.svc.cluster.local svc.cluster.local cluster.local\\noptions ndots:1
domain, no options|domain svc.cluster.local
SERVFAIL then NXDOMAIN|search example.com cluster.local\\noptions ndots:2
VARIANTS
	cat "$W/resolv.saved" >/etc/resolv.conf
	for mode in "threads 16" fork; do
		a=$(plain "$B/musl-mprobe" $mode $KEEP_NAMES 2>&1 | sort)
		b=$(env LD_PRELOAD="$MLIB" DNSCACHE_SOCKET="$W/dns.sock" DNSCACHE_FALLBACK=0 "$B/musl-mprobe" $mode $KEEP_NAMES 2>&1 | sort)
		[ "$a" = "$b" ] && ok "musl: $mode ($(echo "$a" | wc -l) lookups identical)" || {
			fail "musl: $mode"; echo "$a" >"$W/m.musl"; echo "$b" >"$W/m.shim"; diff "$W/m.musl" "$W/m.shim" | head; }
	done
	m1=$(socket_queries)
	[ $((m1 - m0)) -gt 100 ] && ok "musl: $((m1 - m0)) queries on the socket" || fail "musl: only $((m1 - m0)) socket queries"
	# One LD_PRELOAD value for glibc and musl images: glibc's loader
	# expands $LIB (lib/x86_64-linux-gnu on Debian, lib64 on Red Hat, lib
	# elsewhere), musl's takes it literally, so the musl build lives in a
	# directory named "$LIB".
	pre=$(lib_dirs)
	q0=$(socket_queries)
	g=$(env LD_PRELOAD="$pre" DNSCACHE_SOCKET="$W/dns.sock" DNSCACHE_FALLBACK=0 getent ahostsv4 v4-lib.example.com. 2>&1)
	q1=$(socket_queries)
	m=$(env LD_PRELOAD="$pre" DNSCACHE_SOCKET="$W/dns.sock" DNSCACHE_FALLBACK=0 "$B/musl-mprobe" threads 1 v4-lib.example.com. 2>&1)
	q2=$(socket_queries)
	case "$g/$m" in
	*STREAM\ v4-lib*/*"rc=0 198.18."*) [ "$q1" -gt "$q0" ] && [ "$q2" -gt "$q1" ] &&
		ok "musl: one LD_PRELOAD=.../\$LIB/libdnscache.so serves glibc ($((q1 - q0)) socket queries) and musl ($((q2 - q1)))" ||
		fail "musl: \$LIB: socket queries $q0 $q1 $q2" ;;
	*) fail "musl: \$LIB: glibc '$g' musl '$m'" ;;
	esac
	got=$(env LD_PRELOAD="$MLIB" DNSCACHE_SOCKET="$W/missing.sock" "$B/musl-mprobe" www.example.com. | head -1)
	want=$(plain "$B/musl-mprobe" www.example.com. | head -1)
	[ "$got" = "$want" ] && ok "musl: fallback to musl's own resolver (socket missing)" || fail "musl: fallback: $got"
}
