package reliability

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/dnscache/dnscache/test/kit"
	"github.com/dnscache/dnscache/test/lab"
)

// inNamespace re-runs the calling test in new mount and network namespaces (unshare, as
// root) and returns false; inside them it brings loopback up, binds resolv as
// /etc/resolv.conf and returns true. A lab upstream on 127.0.0.1:53 then stands in for
// kube-dns, the glibc `dns` source the shim falls back to.
func inNamespace(t *testing.T, resolv string) bool {
	t.Helper()
	if os.Getenv("DNSCACHE_IN_NS") == "" {
		args := []string{"--mount", "--net", "--propagation", "private", os.Args[0],
			"-test.run", "^" + t.Name() + "$", "-test.v", "-test.count", "1"}
		cmd := exec.Command("unshare", args...)
		cmd.Env = append(os.Environ(), "DNSCACHE_IN_NS=1")
		out, err := cmd.CombinedOutput()
		t.Logf("in new mount and network namespaces:\n%s", out)
		if err != nil {
			t.Fatalf("unshare %v: %v", args, err)
		}
		return false
	}
	kit.Run(t, "ip", "link", "set", "lo", "up")
	f := filepath.Join(t.TempDir(), "resolv.conf")
	if err := os.WriteFile(f, []byte(resolv), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Mount(f, "/etc/resolv.conf", "", syscall.MS_BIND, ""); err != nil {
		t.Fatalf("bind mount resolv.conf: %v", err)
	}
	t.Cleanup(func() { syscall.Unmount("/etc/resolv.conf", 0) })
	return true
}

// shimLoop is a shell loop that resolves a new name with getent (a new process each time)
// until the file stop exists, and prints "ok N fail M".
const shimLoop = `ok=0; fail=0; i=0
while [ ! -e "$STOP" ]; do
	i=$((i+1))
	if getent hosts "sh$i.$RUN.example" >/dev/null; then ok=$((ok+1)); else fail=$((fail+1)); echo "fail sh$i at $(date +%s.%N)" >&2; fi
done
echo "ok $ok fail $fail"`

// pyLoop does the same from one long-lived python3 process (socket.getaddrinfo).
const pyLoop = `import os, socket, sys, time
ok = fail = i = 0
while not os.path.exists(os.environ["STOP"]):
    i += 1
    try:
        socket.getaddrinfo("py%d.%s.example" % (i, os.environ["RUN"]), 80, socket.AF_INET)
        ok += 1
    except OSError as e:
        fail += 1
        print("fail py%d at %.3f: %s" % (i, time.time(), e), file=sys.stderr)
print("ok %d fail %d" % (ok, fail))`

// TestShimRestart kills the server with SIGKILL while applications resolve through the
// preloaded shim (getent in a loop, and one python3 process), and starts a new server on
// the same socket path. The applications must keep resolving through glibc's `dns`
// fallback while the server is away, and return to the socket once it is back.
func TestShimRestart(t *testing.T) {
	lib := filepath.Join(kit.RepoRoot(t), "preload", "build", "libnss_dnscache.so.2")
	if _, err := os.Stat(lib); err != nil {
		t.Fatalf("shim: %v (run `make build`)", err)
	}
	if !inNamespace(t, "nameserver 127.0.0.1\noptions ndots:1 timeout:1 attempts:2\n") {
		return
	}
	kubedns, err := lab.Start(lab.Config{UDP: "127.0.0.1:53", TCP: "127.0.0.1:53", TLS: "-"})
	if err != nil {
		t.Fatalf("kube-dns stand-in on 127.0.0.1:53: %v", err)
	}
	defer kubedns.Close()
	ups := startLabs(t, 3, lab.Config{Latency: lab.Latency{Dist: lab.Fixed, Median: time.Millisecond}})
	first := startChain(t, ups, "success 10000", "")
	sock := first.Sock

	dir := t.TempDir()
	stop := filepath.Join(dir, "stop")
	env := append(os.Environ(), "LD_PRELOAD="+lib, "DNSCACHE_SOCKET="+sock, "STOP="+stop,
		fmt.Sprintf("RUN=r%d", time.Now().UnixNano()%1e6))
	apps := map[string]*exec.Cmd{
		"getent":  exec.Command("sh", "-c", shimLoop),
		"python3": exec.Command("python3", "-c", pyLoop),
	}
	outs := map[string]*strings.Builder{}
	for name, cmd := range apps {
		cmd.Env = env
		outs[name] = &strings.Builder{}
		cmd.Stdout, cmd.Stderr = outs[name], outs[name]
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
	}
	defer func() {
		os.WriteFile(stop, nil, 0o644)
		for _, cmd := range apps {
			cmd.Wait()
		}
	}()

	phase := func(d time.Duration) (fallback int64) {
		before := kubedns.Stats().Queries
		time.Sleep(d)
		return kubedns.Stats().Queries - before
	}
	viaKubeBefore := phase(time.Second)
	killed := time.Now()
	first.Kill(t)
	viaKubeDown := phase(2 * time.Second)

	second := kit.Prepare(t)
	if err := ups[0].CA().WriteFiles(second.Dir); err != nil {
		t.Fatal(err)
	}
	second.Run(t, strings.Replace(dnscacheCorefile(ups, "success 10000", ""), "{{.Sock}}", sock, 1))
	restarted := time.Now()
	phase(time.Second) // the shim's first lookups after the restart
	viaKubeAfter := phase(time.Second)
	viaSocket := second.Metric(t, "coredns_unixsock_requests_total", nil)
	t.Logf("fallback queries to kube-dns: before the kill %d, while down (2s) %d, 1-2 s after the restart %d",
		viaKubeBefore, viaKubeDown, viaKubeAfter)
	t.Logf("killed at %.3f, restarted (ready) at %.3f", float64(killed.UnixMilli())/1e3, float64(restarted.UnixMilli())/1e3)
	t.Logf("restarted server's socket queries within 2 s of the restart: %v", viaSocket)

	if err := os.WriteFile(stop, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	for name, cmd := range apps {
		if err := cmd.Wait(); err != nil {
			t.Errorf("%s: %v\n%s", name, err, outs[name])
		}
		out := strings.TrimSpace(outs[name].String())
		t.Logf("%s across the kill and restart: %s", name, out)
		var ok, fail int
		last := out[strings.LastIndex(out, "\n")+1:]
		if _, err := fmt.Sscanf(last, "ok %d fail %d", &ok, &fail); err != nil {
			t.Errorf("%s: unexpected output %q", name, out)
			continue
		}
		if fail > 0 || ok == 0 {
			t.Errorf("%s: %d lookups failed, %d succeeded across the server's kill and restart", name, fail, ok)
		}
	}
	if viaKubeDown == 0 {
		t.Error("no lookup fell back to glibc's dns source while the server was down")
	}
	if viaSocket == 0 {
		t.Error("no lookup reached the restarted server's socket")
	}
	second.Stop(t)
}
