#!/usr/bin/env python3
"""A small DNS responder for the preload tests: the lab's synthetic zone
(CONTRIBUTING.md, test/lab) over UDP, TCP and a Unix socket with RFC 1035
two-byte framing, with the faults the fallback tests need.

Zone: the first label selects the answer (loop*, v4*, v6*, nodata*, nx*,
servfail*, big*, cnameN-*, ttlN-*, anything else: A 198.18.x.y and AAAA
2001:db8::x:y derived from the name).  With --k8s SUFFIX, names under SUFFIX
are NXDOMAIN unless listed with --exists, so search lists behave as in a
cluster.  Unix-socket faults (--fault): hang, garbage, close, servfail.
Every Unix-socket query is appended to --log as "TYPE NAME"."""
import argparse, hashlib, os, random, select, signal, socket, struct, sys, threading

A, CNAME, SOA, AAAA, OPT = 1, 5, 6, 28, 41
args = None
log_lock = threading.Lock()


def name_wire(name):
    out = b""
    for label in name.rstrip(".").split("."):
        if label:
            out += bytes([len(label)]) + label.encode()
    return out + b"\0"


def parse_q(msg):
    """Returns (id, flags, qname text, qtype, end of question, has_opt)."""
    qid, flags, qd, an, ns, ar = struct.unpack("!6H", msg[:12])
    off, labels = 12, []
    while msg[off]:
        n = msg[off]
        labels.append(msg[off + 1:off + 1 + n].decode("latin-1"))
        off += 1 + n
    off += 1
    qtype, qclass = struct.unpack("!HH", msg[off:off + 4])
    return qid, flags, ".".join(labels), qtype, off + 4, ar > 0


def derived(name, v6):
    h = hashlib.sha256(name.lower().encode()).digest()
    if v6:
        return bytes.fromhex("20010db8") + bytes(8) + bytes([0, h[0], 0, h[1]])
    return bytes([198, 18, h[0], h[1]])


def rr(owner, rtype, ttl, rdata):
    return owner + struct.pack("!HHIH", rtype, 1, ttl, len(rdata)) + rdata


def soa(name):
    labels = [l for l in name.split(".") if l]
    zone = labels[-1] if len(labels) > 1 else ""
    mname = name_wire("ns." + zone if zone else "ns")
    rdata = mname + name_wire("hostmaster." + zone if zone else "hostmaster") + struct.pack("!5I", 1, 3600, 600, 86400, 30)
    return rr(name_wire(zone), SOA, 60, rdata)


def answer(name, qtype):
    """Returns (rcode, answers list, authority list)."""
    lname = name.lower()
    first = lname.split(".")[0] if lname else ""
    ttl = args.ttl
    if args.k8s and (lname == args.k8s or lname.endswith("." + args.k8s)) and lname not in args.exists:
        return 3, [], [soa(name)]
    m = first.split("-")[0]
    if m.startswith("ttl") and m[3:].isdigit():
        ttl = int(m[3:])
    if first.startswith("nx"):
        return 3, [], [soa(name)]
    if first.startswith("servfail"):
        return 2, [], []
    owner = b"\xc0\x0c"
    ans = []
    if first.startswith("cname") and m[5:].isdigit() and int(m[5:]) > 0:
        n = int(m[5:])
        rest = first[len(m):]
        cur = name
        for i in range(n, 0, -1):
            nxt = "cname%d%s.%s" % (i - 1, rest, ".".join(name.split(".")[1:])) if "." in name else "cname%d%s" % (i - 1, rest)
            ans.append(rr(owner if cur == name else name_wire(cur), CNAME, ttl, name_wire(nxt)))
            cur = nxt
        owner = name_wire(cur)
        name_for_addr = cur
    else:
        name_for_addr = name
    if first.startswith("nodata") or (first.startswith("v4") and qtype == AAAA) or (first.startswith("v6") and qtype == A) or qtype not in (A, AAAA):
        if ans:
            return 0, ans, []
        return 0, [], [soa(name)]
    if first.startswith("loop"):
        addrs = [bytes([127, 0, 0, 1]) if qtype == A else bytes(15) + b"\1"]
    elif first.startswith("big"):
        addrs = [bytes([198, 19, 0, i]) if qtype == A else bytes.fromhex("20010db8") + bytes(11) + bytes([i]) for i in range(1, 41)]
    else:
        addrs = [derived(name_for_addr, qtype == AAAA)]
    for a in addrs:
        ans.append(rr(owner, qtype, ttl, a))
    return 0, ans, []


def reply(msg, udp):
    qid, flags, name, qtype, qend, has_opt = parse_q(msg)
    rcode, ans, auth = answer(name, qtype)
    opt = b""
    if has_opt:
        opt = b"\0" + struct.pack("!HHIH", OPT, 1232, 0, 0)
    rflags = 0x8000 | (flags & 0x0100) | 0x0080 | rcode
    body = msg[12:qend] + b"".join(ans) + b"".join(auth) + opt
    out = struct.pack("!6H", qid, rflags, 1, len(ans), len(auth), 1 if has_opt else 0) + body
    limit = 1232 if has_opt else 512
    if udp and len(out) > limit:
        out = struct.pack("!6H", qid, rflags | 0x0200, 1, 0, 0, 0) + msg[12:qend]
    return out


def log(msg):
    if args.log:
        _, _, name, qtype, _, _ = parse_q(msg)
        with log_lock, open(args.log, "a") as f:
            f.write("%s %s\n" % ({A: "A", AAAA: "AAAA"}.get(qtype, str(qtype)), name))


def recv_exact(c, n):
    b = b""
    while len(b) < n:
        d = c.recv(n - len(b))
        if not d:
            raise EOFError
        b += d
    return b


def serve_stream(c, unix):
    fault = args.fault if unix else None
    try:
        while fault == "hang":
            # Read and log every query, answer none.
            log(recv_exact(c, struct.unpack("!H", recv_exact(c, 2))[0]))
        while True:
            batch = []
            while True:
                n = struct.unpack("!H", recv_exact(c, 2))[0]
                batch.append(recv_exact(c, n))
                if not args.reverse or not select.select([c], [], [], 0.005)[0]:
                    break
            if unix:
                for m in batch:
                    log(m)
            if fault == "close":
                return
            if args.reverse:
                batch.reverse()
            for m in batch:
                if fault == "garbage":
                    out = bytes(random.getrandbits(8) for _ in range(40))
                elif fault == "servfail":
                    out = m[:2] + bytes([0x81, 0x82]) + m[4:]
                else:
                    out = reply(m, False)
                c.sendall(struct.pack("!H", len(out)) + out)
    except (EOFError, OSError):
        pass
    finally:
        c.close()


def accept_loop(s, unix):
    while True:
        c, _ = s.accept()
        threading.Thread(target=serve_stream, args=(c, unix), daemon=True).start()


def udp_loop(s):
    while True:
        m, peer = s.recvfrom(4096)
        try:
            s.sendto(reply(m, True), peer)
        except Exception:
            pass


def main():
    global args
    p = argparse.ArgumentParser()
    p.add_argument("--udp", help="host:port for UDP and TCP")
    p.add_argument("--unix")
    p.add_argument("--fault", choices=["hang", "garbage", "close", "servfail"])
    p.add_argument("--reverse", action="store_true", help="answer pipelined queries in reverse order")
    p.add_argument("--ttl", type=int, default=300)
    p.add_argument("--k8s")
    p.add_argument("--exists", action="append", default=[])
    p.add_argument("--log")
    p.add_argument("--ready", help="file created when listening")
    args = p.parse_args()
    args.exists = [e.lower().rstrip(".") for e in args.exists]
    threads = []
    if args.udp:
        host, port = args.udp.rsplit(":", 1)
        u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        u.bind((host, int(port)))
        t = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        t.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        t.bind((host, int(port)))
        t.listen(64)
        threads += [threading.Thread(target=udp_loop, args=(u,), daemon=True),
                    threading.Thread(target=accept_loop, args=(t, False), daemon=True)]
    if args.unix:
        if os.path.exists(args.unix):
            os.unlink(args.unix)
        x = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        x.bind(args.unix)
        x.listen(256)
        threads.append(threading.Thread(target=accept_loop, args=(x, True), daemon=True))
    for t in threads:
        t.start()
    if args.ready:
        open(args.ready, "w").close()
    signal.signal(signal.SIGTERM, lambda *a: sys.exit(0))
    threading.Event().wait()


if __name__ == "__main__":
    main()
