package csi

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/container-storage-interface/spec/lib/go/csi"

	"github.com/dnscache/dnscache/test/kit"
)

// inNamespace is set in the environment of the test binary that TestPublishMounts re-runs
// in a mount namespace of its own.
const inNamespace = "DNSCACHE_CSI_MOUNT_NS"

// TestPublishMounts runs the real cmd/dnscache-csi and calls NodePublishVolume and
// NodeUnpublishVolume over its socket against real directories, with real bind mounts. It
// needs root; the mounts are made in a private mount namespace that this test creates (the
// test binary re-runs itself there, unshare(CLONE_NEWNS) with / made private, as
// `unshare -m` does), so nothing reaches the machine's own mount table.
func TestPublishMounts(t *testing.T) {
	if os.Getenv(inNamespace) == "" {
		if os.Geteuid() != 0 {
			t.Skip("bind mounts need root (make test runs as root)")
		}
		bin := filepath.Join(t.TempDir(), "dnscache-csi")
		build := exec.Command("go", "build", "-o", bin, "./cmd/dnscache-csi")
		build.Dir = kit.RepoRoot(t)
		if out, err := build.CombinedOutput(); err != nil {
			t.Fatalf("go build ./cmd/dnscache-csi: %v\n%s", err, out)
		}
		cmd := exec.Command(os.Args[0], "-test.run=^TestPublishMounts$", "-test.v", "-test.count=1")
		cmd.Env = append(os.Environ(), inNamespace+"="+bin, inNamespace+"_PARENT="+nsID(t, "/proc/self/ns/mnt"))
		cmd.SysProcAttr = &syscall.SysProcAttr{Unshareflags: syscall.CLONE_NEWNS, Pdeathsig: syscall.SIGKILL}
		out, err := cmd.CombinedOutput()
		t.Logf("in a private mount namespace:\n%s", out)
		if err != nil {
			t.Fatalf("the test in the mount namespace failed: %v", err)
		}
		if !bytes.Contains(out, []byte("--- PASS: TestPublishMounts")) {
			t.Fatal("the test in the mount namespace did not run")
		}
		return
	}
	publishMounts(t, os.Getenv(inNamespace))
}

// publishMounts is TestPublishMounts inside the mount namespace; bin is cmd/dnscache-csi.
func publishMounts(t *testing.T, bin string) {
	// The test's own view of the machine must not be the host's: the namespace is private.
	if self, parent := nsID(t, "/proc/self/ns/mnt"), os.Getenv(inNamespace+"_PARENT"); self == parent || parent == "" {
		t.Fatal("not in a mount namespace of its own")
	}

	// The node cache's directory: its socket (a server that answers "pong <n>") and the shim.
	src := t.TempDir()
	shim := []byte("\x7fELF not really a shim\n")
	if err := os.WriteFile(filepath.Join(src, "libnss_dnscache.so.2"), shim, 0o644); err != nil {
		t.Fatal(err)
	}
	stopPong := pong(t, filepath.Join(src, "dns.sock"), "1")

	root := t.TempDir()
	sock := filepath.Join(t.TempDir(), "csi.sock")
	drv := startDriver(t, bin, sock, src, root)
	c := dial(t, sock)
	ctx := context.Background()

	target := kubeletTarget(t, root, "pod-a")
	if _, err := c.NodePublishVolume(ctx, publishReq(target)); err != nil {
		t.Fatalf("NodePublishVolume: %v", err)
	}
	m := mountAt(t, target)
	if m == nil {
		t.Fatalf("%s is not a mount point after publish", target)
	}
	for _, opt := range []string{"ro", "nosuid", "nodev"} {
		if !strings.Contains(","+m.opts+",", ","+opt+",") {
			t.Errorf("mount options %q lack %s", m.opts, opt)
		}
	}
	// The pod sees the directory: the shim, and a socket it can connect to (connect(2) on a
	// read-only mount works: the socket is not written through the mount).
	if got, err := os.ReadFile(filepath.Join(target, "libnss_dnscache.so.2")); err != nil || !bytes.Equal(got, shim) {
		t.Errorf("shim through the mount: %q %v", got, err)
	}
	if got := ping(t, filepath.Join(target, "dns.sock")); got != "pong 1" {
		t.Errorf("socket through the mount: %q", got)
	}
	// Nothing can be written through it: not a new file, not over the shim.
	if err := os.WriteFile(filepath.Join(target, "x"), nil, 0o644); !errors.Is(err, syscall.EROFS) {
		t.Errorf("create through the mount: %v, want EROFS", err)
	}
	if err := os.WriteFile(filepath.Join(target, "libnss_dnscache.so.2"), nil, 0o644); !errors.Is(err, syscall.EROFS) {
		t.Errorf("write over the shim through the mount: %v, want EROFS", err)
	}
	// The node cache restarts and re-creates its socket: the pod sees the new one, because
	// the directory is bound, not the socket file.
	stopPong()
	stopPong = pong(t, filepath.Join(src, "dns.sock"), "2")
	if got := ping(t, filepath.Join(target, "dns.sock")); got != "pong 2" {
		t.Errorf("re-created socket through the mount: %q", got)
	}

	// Publishing again (the kubelet retries) succeeds and does not stack a second mount.
	if _, err := c.NodePublishVolume(ctx, publishReq(target)); err != nil {
		t.Errorf("NodePublishVolume again: %v", err)
	}
	if n := mountCount(t, target); n != 1 {
		t.Errorf("%d mounts on %s after publishing twice, want 1", n, target)
	}

	// A second pod's volume.
	target2 := kubeletTarget(t, root, "pod-b")
	if _, err := c.NodePublishVolume(ctx, publishReq(target2)); err != nil {
		t.Fatalf("NodePublishVolume, second pod: %v", err)
	}

	// Unpublish: unmounted and removed; again: success.
	for i := 0; i < 2; i++ {
		if _, err := c.NodeUnpublishVolume(ctx, &csi.NodeUnpublishVolumeRequest{VolumeId: "v", TargetPath: target}); err != nil {
			t.Errorf("NodeUnpublishVolume #%d: %v", i+1, err)
		}
	}
	if n := mountCount(t, target); n != 0 {
		t.Errorf("%d mounts on %s after unpublish", n, target)
	}
	if _, err := os.Lstat(target); !os.IsNotExist(err) {
		t.Errorf("target %s still there after unpublish: %v", target, err)
	}
	if _, err := os.Stat(filepath.Join(src, "libnss_dnscache.so.2")); err != nil {
		t.Errorf("unpublish touched the source: %v", err)
	}

	// The driver stops on SIGTERM, removes its socket and leaves the pods' mounts: a driver
	// upgrade does not take DNS away from running pods.
	if err := drv.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if err := drv.Wait(); err != nil {
		t.Errorf("driver exit after SIGTERM: %v", err)
	}
	if _, err := os.Lstat(sock); !os.IsNotExist(err) {
		t.Errorf("CSI socket left after SIGTERM: %v", err)
	}
	if got := ping(t, filepath.Join(target2, "dns.sock")); got != "pong 2" {
		t.Errorf("second pod's socket with the driver stopped: %q", got)
	}
	// A new driver unpublishes what the old one published.
	startDriver(t, bin, sock, src, root)
	c = dial(t, sock)
	if _, err := c.NodeUnpublishVolume(ctx, &csi.NodeUnpublishVolumeRequest{VolumeId: "v", TargetPath: target2}); err != nil {
		t.Errorf("NodeUnpublishVolume by a restarted driver: %v", err)
	}
	if n := mountCount(t, target2); n != 0 {
		t.Errorf("%d mounts on %s after unpublish", n, target2)
	}
	stopPong()

	// A target that already holds something else (not a directory) is refused, and nothing
	// is mounted on it.
	target3 := kubeletTarget(t, root, "pod-c")
	if err := os.WriteFile(target3, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := c.NodePublishVolume(ctx, publishReq(target3)); err == nil {
		t.Error("NodePublishVolume onto a regular file succeeded")
	}
	if n := mountCount(t, target3); n != 0 {
		t.Errorf("%d mounts on the regular file %s", n, target3)
	}
}

// startDriver runs bin serving on sock and waits until the socket answers. The process is
// killed, by its PID, when the test ends if it still runs.
func startDriver(t *testing.T, bin, sock, src, root string) *exec.Cmd {
	t.Helper()
	cmd := exec.Command(bin, "-endpoint", "unix://"+sock, "-node-id", "node-1", "-source", src, "-target-root", root)
	cmd.Stderr = &prefixWriter{t: t}
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if cmd.ProcessState == nil {
			cmd.Process.Kill()
			cmd.Wait()
		}
	})
	waitSocket(t, sock)
	return cmd
}

// prefixWriter logs the driver's stderr into the test log.
type prefixWriter struct{ t *testing.T }

func (w *prefixWriter) Write(p []byte) (int, error) {
	w.t.Logf("dnscache-csi: %s", strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

// pong serves path: each connection gets "pong " + tag. The returned func stops it and
// removes the socket.
func pong(t *testing.T, path, tag string) func() {
	t.Helper()
	l, err := net.Listen("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			io.WriteString(c, "pong "+tag+"\n")
			c.Close()
		}
	}()
	stopped := false
	stop := func() {
		if !stopped {
			stopped = true
			l.Close()
			<-done
		}
	}
	t.Cleanup(stop)
	return stop
}

// ping connects to path and returns the line it sends.
func ping(t *testing.T, path string) string {
	t.Helper()
	c, err := net.DialTimeout("unix", path, 5*time.Second)
	if err != nil {
		t.Errorf("connect %s: %v", path, err)
		return ""
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	line, err := bufio.NewReader(c).ReadString('\n')
	if err != nil {
		t.Errorf("read %s: %v", path, err)
	}
	return strings.TrimSpace(line)
}

type mountEntry struct{ root, opts string }

// mountAt returns the topmost mount on path from /proc/self/mountinfo, or nil.
func mountAt(t *testing.T, path string) *mountEntry {
	t.Helper()
	data, err := os.ReadFile(mountInfo)
	if err != nil {
		t.Fatal(err)
	}
	var m *mountEntry
	for _, line := range strings.Split(string(data), "\n") {
		f := strings.Fields(line)
		if len(f) > 5 && unescapeOctal(f[4]) == path {
			m = &mountEntry{root: unescapeOctal(f[3]), opts: f[5]}
		}
	}
	return m
}

// mountCount returns how many mounts are stacked on path.
func mountCount(t *testing.T, path string) int {
	t.Helper()
	mp, err := mountPoints()
	if err != nil {
		t.Fatal(err)
	}
	return mp[path]
}

// nsID returns the namespace a /proc/PID/ns link names.
func nsID(t *testing.T, link string) string {
	t.Helper()
	s, err := os.Readlink(link)
	if err != nil {
		t.Fatal(err)
	}
	return s
}
