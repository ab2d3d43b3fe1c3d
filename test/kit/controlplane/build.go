package controlplane

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/dnscache/dnscache/test/kit"
)

// Binaries returns the paths of kube-apiserver and kubectl, building them first when needed.
//
// $DNSCACHE_KUBE_APISERVER and $DNSCACHE_KUBECTL, when set, name ready binaries and nothing is
// built. Otherwise they are <repo>/bin/kube-apiserver and <repo>/bin/kubectl, built with
// `go build` inside the module test/kit/controlplane/apiserver (which pins the Kubernetes
// release) when missing or older than that module's go.mod or go.sum. The build holds an
// exclusive lock on bin/.controlplane.lock, so test binaries running in parallel build once.
// The Go build cache makes a rebuild after a go.mod change fast; `make controlplane` (run by
// `make test`) always rebuilds, which is a no-op link check when nothing changed.
func Binaries(t testing.TB) (apiserver, kubectl string) {
	t.Helper()
	buildOnce.Do(func() { buildErr = build(t) })
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return apiserverBin, kubectlBin
}

var (
	buildOnce                sync.Once
	buildErr                 error
	apiserverBin, kubectlBin string

	kubeadmOnce sync.Once
	kubeadmErr  error
	kubeadmBin  string
)

// Kubeadm returns the path of kubeadm from the same release ($DNSCACHE_KUBEADM, or
// <repo>/bin/kubeadm built as Binaries builds the others), for tests of what kubeadm does to
// the cluster's objects: its addon phases run against a ControlPlane with --kubeconfig.
func Kubeadm(t testing.TB) string {
	t.Helper()
	kubeadmOnce.Do(func() {
		if kubeadmBin = os.Getenv("DNSCACHE_KUBEADM"); kubeadmBin != "" {
			_, kubeadmErr = os.Stat(kubeadmBin)
			return
		}
		kubeadmBin = filepath.Join(kit.RepoRoot(t), "bin", "kubeadm")
		kubeadmErr = goBuild(t, kubeadmBin, "k8s.io/kubernetes/cmd/kubeadm")
	})
	if kubeadmErr != nil {
		t.Fatal(kubeadmErr)
	}
	return kubeadmBin
}

func build(t testing.TB) error {
	apiserverBin, kubectlBin = os.Getenv("DNSCACHE_KUBE_APISERVER"), os.Getenv("DNSCACHE_KUBECTL")
	if apiserverBin != "" && kubectlBin != "" {
		for _, p := range []string{apiserverBin, kubectlBin} {
			if _, err := os.Stat(p); err != nil {
				return fmt.Errorf("control plane binary: %v", err)
			}
		}
		return nil
	}
	bin := filepath.Join(kit.RepoRoot(t), "bin")
	apiserverBin, kubectlBin = filepath.Join(bin, "kube-apiserver"), filepath.Join(bin, "kubectl")
	if err := goBuild(t, apiserverBin, "k8s.io/kubernetes/cmd/kube-apiserver"); err != nil {
		return err
	}
	return goBuild(t, kubectlBin, "k8s.io/kubernetes/cmd/kubectl")
}

// goBuild builds pkg to out inside the module test/kit/controlplane/apiserver, unless out is
// newer than that module's go.mod and go.sum, holding bin/.controlplane.lock.
func goBuild(t testing.TB, out, pkg string) error {
	root := kit.RepoRoot(t)
	bin := filepath.Join(root, "bin")
	mod := filepath.Join(root, "test", "kit", "controlplane", "apiserver")
	if err := os.MkdirAll(bin, 0o755); err != nil {
		return err
	}
	lock, err := os.OpenFile(filepath.Join(bin, ".controlplane.lock"), os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return err
	}
	defer lock.Close()
	if err := syscall.Flock(int(lock.Fd()), syscall.LOCK_EX); err != nil {
		return fmt.Errorf("lock %s: %v", lock.Name(), err)
	}
	defer syscall.Flock(int(lock.Fd()), syscall.LOCK_UN)

	var newest time.Time
	for _, f := range []string{"go.mod", "go.sum"} {
		st, err := os.Stat(filepath.Join(mod, f))
		if err != nil {
			return err
		}
		if st.ModTime().After(newest) {
			newest = st.ModTime()
		}
	}
	if st, err := os.Stat(out); err == nil && st.ModTime().After(newest) {
		return nil
	}
	t.Logf("building %s (cold: several minutes; `make controlplane` does this ahead)", pkg)
	begin := time.Now()
	cmd := exec.Command("go", "build", "-o", out, pkg)
	cmd.Dir = mod
	if b, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("go build %s: %v\n%s", pkg, err, b)
	}
	t.Logf("built %s in %v", out, time.Since(begin).Round(time.Second))
	return nil
}
