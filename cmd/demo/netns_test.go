package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/dnscache/dnscache/test/kit"
)

// TestDemoLoopbackOnly runs the quick demo in a network namespace of its own that has only
// loopback (`unshare -n`, lo brought up), as on a machine with no network at all, and checks
// its output with scripts/demo-check.sh. It needs root (make test runs as root), bin/coredns
// and the shim (make build).
func TestDemoLoopbackOnly(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("unshare -n needs root (make test runs as root)")
	}
	root := kit.RepoRoot(t)
	coredns := kit.Binary(t)
	lib := filepath.Join(root, "preload", "build", "libnss_dnscache.so.2")
	if _, err := os.Stat(lib); err != nil {
		t.Fatalf("%v (run make build)", err)
	}
	bin := filepath.Join(t.TempDir(), "demo")
	build := exec.Command("go", "build", "-o", bin, "./cmd/demo")
	build.Dir = root
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build ./cmd/demo: %v\n%s", err, out)
	}
	// The namespace's addresses are printed first: only lo's may be there.
	script := `ip link set lo up && ip -o addr show | awk '{print "addr", $2, $4}' && exec "$0" -quick -coredns "$1" -lib "$2"`
	cmd := exec.Command("unshare", "-n", "sh", "-c", script, bin, coredns, lib)
	cmd.Dir = root
	out, err := cmd.CombinedOutput()
	t.Logf("demo in a loopback-only network namespace:\n%s", out)
	if err != nil {
		t.Fatalf("demo: %v", err)
	}
	addrs := 0
	for _, line := range strings.Split(string(out), "\n") {
		if f := strings.Fields(line); len(f) == 3 && f[0] == "addr" {
			addrs++
			if f[1] != "lo" {
				t.Errorf("the namespace has an address on %s: %s", f[1], line)
			}
		}
	}
	if addrs == 0 {
		t.Error("the namespace listed no address (lo's 127.0.0.1 expected)")
	}
	path := filepath.Join(t.TempDir(), "demo.out")
	if err := os.WriteFile(path, out, 0o644); err != nil {
		t.Fatal(err)
	}
	if check, err := exec.Command("bash", filepath.Join(root, "scripts", "demo-check.sh"), path).CombinedOutput(); err != nil {
		t.Errorf("demo-check.sh: %v\n%s", err, check)
	}
}
