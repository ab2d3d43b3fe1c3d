package csi

import (
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"testing"

	"github.com/dnscache/dnscache/test/kit"
)

// TestSanity runs csi-sanity (kubernetes-csi/csi-test, the release pinned in ./sanity/go.mod,
// built from the module proxy) against the driver's socket: the Identity and Node service
// specs. The Controller specs are left out (there is no controller service), and so is "should
// remove target path", which needs CreateVolume from a controller; TestPublishMounts publishes
// and unpublishes on real directories instead.
func TestSanity(t *testing.T) {
	bin := filepath.Join(t.TempDir(), "csi-sanity")
	build := exec.Command("go", "build", "-o", bin, "github.com/kubernetes-csi/csi-test/v5/cmd/csi-sanity")
	build.Dir = filepath.Join(kit.RepoRoot(t), "build", "csi", "sanity")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build csi-sanity: %v\n%s", err, out)
	}
	root := t.TempDir()
	_, sock := serve(t, Config{NodeID: "node-1", Source: t.TempDir(), TargetRoot: root})
	out, err := exec.Command(bin,
		"-csi.endpoint", "unix://"+sock,
		"-csi.mountdir", filepath.Join(root, "mount"),
		"-csi.stagingdir", filepath.Join(root, "staging"),
		"-ginkgo.focus", "Identity Service|Node Service",
		"-ginkgo.skip", "should remove target path",
		"-ginkgo.no-color",
	).CombinedOutput()
	t.Logf("csi-sanity:\n%s", out)
	if err != nil {
		t.Fatalf("csi-sanity: %v", err)
	}
	m := regexp.MustCompile(`Ran (\d+) of \d+ Specs`).FindSubmatch(out)
	if m == nil {
		t.Fatal("csi-sanity printed no spec count")
	}
	// Identity: GetPluginCapabilities, Probe, GetPluginInfo. Node: NodeGetCapabilities,
	// NodeGetInfo, NodePublishVolume x3 and NodeUnpublishVolume x2 (the refusals).
	if n, _ := strconv.Atoi(string(m[1])); n < 10 {
		t.Errorf("csi-sanity ran %d specs, want at least 10", n)
	}
	if !regexp.MustCompile(`\b0 Failed\b`).Match(out) {
		t.Error("csi-sanity reports failures")
	}
}
