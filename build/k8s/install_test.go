package k8s

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
)

// Paths inside the image, as build/Dockerfile lays it out.
const (
	imageBusybox = "/usr/local/bin/busybox"
	imageShim    = "/usr/local/lib/dnscache/libnss_dnscache.so.2"
	imageCSI     = "/dnscache-csi" // the CSI node driver, cmd/dnscache-csi
)

// TestInstallShim runs the node cache's init script with busybox (the same Debian
// busybox-static the image carries) against a temporary directory standing in for the
// hostPath. The script is taken from daemonset.yaml and rewritten textually: /dns_cache becomes
// the temporary directory, the image's shim and busybox paths become a test file and the local
// busybox, and, when the test does not run as root, the chown target 0:65532 becomes the
// caller's uid and gid. A "running app" maps the old library first; the test checks that the
// new library replaced it by rename (new inode, old mapping intact), that no temporary file is
// left, that the directory ends up sticky and group-writable, and that a second run (a restarted
// pod) works too.
func TestInstallShim(t *testing.T) {
	busybox, err := exec.LookPath("busybox")
	if err != nil {
		t.Fatalf("busybox not installed (Debian package busybox-static; run `make deps`): %v", err)
	}
	ds := one[*appsv1.DaemonSet](t, loadBundle(t, "node-cache"))
	script := installScript(t, &ds.Spec.Template.Spec.InitContainers[0])
	for _, p := range []string{imageBusybox, imageShim, hostDir} {
		if !strings.Contains(script, p) {
			t.Fatalf("install script does not mention %s:\n%s", p, script)
		}
	}

	tmp := t.TempDir()
	dir := filepath.Join(tmp, "dns_cache")
	src := filepath.Join(tmp, "image-shim.so")
	target := filepath.Join(dir, "libnss_dnscache.so.2")
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	owner := "0:65532"
	wantGID := 65532
	if os.Geteuid() != 0 {
		owner = fmt.Sprintf("%d:%d", os.Getuid(), os.Getgid())
		wantGID = os.Getgid()
	}
	script = strings.NewReplacer(
		imageBusybox, busybox,
		imageShim, src,
		hostDir, dir,
		"chown 0:65532", "chown "+owner,
	).Replace(script)

	old := bytes.Repeat([]byte("old library "), 1000)
	if err := os.WriteFile(target, old, 0o644); err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(target)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	mapped, err := syscall.Mmap(int(f.Fd()), 0, len(old), syscall.PROT_READ, syscall.MAP_SHARED)
	if err != nil {
		t.Fatal(err)
	}
	defer syscall.Munmap(mapped)
	oldIno := inode(t, target)

	for run, content := range []string{"new library v1", "new library v2"} {
		if err := os.WriteFile(src, []byte(content), 0o755); err != nil {
			t.Fatal(err)
		}
		cmd := exec.Command(busybox, "sh", "-euc", script)
		cmd.Env = []string{"HOSTNAME=dnscache-node-x7k2p", "PATH=/nonexistent"}
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("run %d: install script: %v\n%s\nscript:\n%s", run, err, out, script)
		}
		got, err := os.ReadFile(target)
		if err != nil || string(got) != content {
			t.Fatalf("run %d: %s holds %q (%v), want %q", run, target, got, err, content)
		}
		if !bytes.Equal(mapped, old) {
			t.Fatalf("run %d: the library a running process mapped was changed in place", run)
		}
		if ino := inode(t, target); ino == oldIno {
			t.Fatalf("run %d: %s kept its inode: not replaced by rename", run, target)
		}
		ents, _ := os.ReadDir(dir)
		if len(ents) != 1 {
			t.Fatalf("run %d: %s holds %d entries, want only the library (temporary file left?)", run, dir, len(ents))
		}
		st, err := os.Stat(target)
		if err != nil || st.Mode().Perm() != 0o644 {
			t.Fatalf("run %d: library mode %v (%v), want 0644", run, st.Mode(), err)
		}
		ds, err := os.Stat(dir)
		if err != nil {
			t.Fatal(err)
		}
		if ds.Mode()&os.ModeSticky == 0 || ds.Mode().Perm() != 0o775 {
			t.Fatalf("run %d: %s mode %v, want sticky 0775", run, dir, ds.Mode())
		}
		if gid := int(ds.Sys().(*syscall.Stat_t).Gid); gid != wantGID {
			t.Fatalf("run %d: %s group %d, want %d", run, dir, gid, wantGID)
		}
	}
}

func inode(t *testing.T, path string) uint64 {
	t.Helper()
	st, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	return st.Sys().(*syscall.Stat_t).Ino
}
