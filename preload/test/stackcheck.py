#!/usr/bin/env python3
"""stackcheck: the worst stack path of the shim's own code, from gcc's call
graphs (-fcallgraph-info=su: every function's frame and its calls).

    stackcheck.py LIMIT ENTRY[,ENTRY...] FILE.ci...

For each entry point, the deepest chain of the shim's own frames, following
direct calls between its functions and the indirect calls listed below.
Calls into libc (and into glibc's dns module, musl's own resolver) count 0
here: their stack is measured for real by test/stackuse.c.  Fails (exit 1)
when a path exceeds LIMIT bytes, a frame is of unbounded (dynamic) size,
the shim's functions call each other recursively, or an indirect call is
not listed (so that a new one must be accounted for).  Static figures count
every byte a frame reserves, touched or not, which a painted stack cannot
see."""
import re
import sys

# Indirect calls: the function that makes them -> the shim's functions they
# can reach (none: only libc's, glibc's dns module or musl's own functions).
INDIRECT = {
    "dc_search_walk": ["lookup.c:query"],
    "_nss_dnscache_gethostbyname4_r": [],  # glibc's _nss_dns_gethostbyname4_r
    "_nss_dnscache_gethostbyname3_r": [],
    "_nss_dnscache_gethostbyaddr2_r": [],
    "_nss_dnscache_gethostbyaddr_r": [],
    "dc_dns_fn": [],  # glibc's __libc_dlopen_mode
    "getaddrinfo": [],  # musl's own, through dlsym(RTLD_NEXT)
    "gai_answer": [],
    "gethostbyname2_r": [],
    "freeaddrinfo": [],
    "getnameinfo": [],
}
# Callbacks: a libc function the shim passes one of its own functions to.
CALLBACKS = {"dl_iterate_phdr": ["nssdns.c:each"]}

NODE = re.compile(r'node: \{ title: "([^"]*)" label: "([^"]*)"( shape : ellipse)? \}')
EDGE = re.compile(r'edge: \{ sourcename: "([^"]*)" targetname: "([^"]*)"')
SIZE = re.compile(r'\\n(\d+) bytes \(([^)]*)\)')


def short(title):
    """A node's name as the tables above spell it: file:function for a
    static function, the bare name for a global one."""
    if ":" in title:
        path, fn = title.rsplit(":", 1)
        return path.rsplit("/", 1)[-1] + ":" + fn
    return title


def main():
    limit = int(sys.argv[1])
    entries = sys.argv[2].split(",")
    frames, quals, calls = {}, {}, {}
    for path in sys.argv[3:]:
        with open(path) as f:
            text = f.read()
        for title, label, ellipse in NODE.findall(text):
            if ellipse:
                continue
            m = SIZE.search(label)
            name = short(title)
            frames[name] = int(m.group(1)) if m else 0
            quals[name] = m.group(2) if m else "unknown"
        for src, dst in EDGE.findall(text):
            calls.setdefault(short(src), []).append(short(dst))
    bad = []
    memo = {}

    def callees(fn):
        out = []
        for c in calls.get(fn, []):
            if c == "__indirect_call":
                base = fn.split(":")[-1]
                if base not in INDIRECT and fn not in INDIRECT:
                    bad.append("%s: an indirect call not listed in stackcheck.py" % fn)
                out += INDIRECT.get(fn, INDIRECT.get(base, []))
            elif c in CALLBACKS:
                out += CALLBACKS[c]
            elif c in frames:
                out.append(c)
        return out

    def worst(fn, stack):
        if fn in stack:
            bad.append("recursion: " + " -> ".join(stack + [fn]))
            return 0, [fn]
        if fn in memo:
            return memo[fn]
        if "dynamic" in quals.get(fn, "") and "bounded" not in quals[fn]:
            bad.append("%s: a frame of unbounded size (%s)" % (fn, quals[fn]))
        best = (0, [])
        for c in callees(fn):
            if c not in frames:
                bad.append("%s calls %s, which has no call graph" % (fn, c))
                continue
            best = max(best, worst(c, stack + [fn]))
        memo[fn] = (frames[fn] + best[0], [fn] + best[1])
        return memo[fn]

    top = 0
    for e in entries:
        if e not in frames:
            bad.append("entry point %s not found" % e)
            continue
        total, path = worst(e, [])
        top = max(top, total)
        print("%-34s %5d  %s" % (e, total, " > ".join("%s(%d)" % (p, frames[p]) for p in path)))
    for b in sorted(set(bad)):
        print("error: " + b)
    if bad or top > limit:
        print("FAIL: worst %d bytes (limit %d)" % (top, limit))
        return 1
    print("worst %d bytes of the shim's own frames (limit %d)" % (top, limit))
    return 0


if __name__ == "__main__":
    sys.exit(main())
