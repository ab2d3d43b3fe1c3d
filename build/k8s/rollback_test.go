package k8s

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/dnscache/dnscache/test/kit"
	"github.com/dnscache/dnscache/test/kit/controlplane"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// coreDNSObjects is what the rollback test compares at each step: the ConfigMap's Corefile,
// the Deployment's image, volumes and labels, and the ClusterRole's resources.
type coreDNSObjects struct {
	corefile  string
	cmKeys    []string
	image     string
	volumes   []corev1.Volume
	labels    map[string]string
	ports     []string // the container's named ports
	roleRes   []string
	clusterIP string
}

func readCoreDNS(t *testing.T, cp *controlplane.ControlPlane) coreDNSObjects {
	t.Helper()
	ctx := context.Background()
	cm, err := cp.Client.CoreV1().ConfigMaps(kubeDNSNS).Get(ctx, "coredns", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	d, err := cp.Client.AppsV1().Deployments(kubeDNSNS).Get(ctx, "coredns", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	cr, err := cp.Client.RbacV1().ClusterRoles().Get(ctx, "system:coredns", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	svc, err := cp.Client.CoreV1().Services(kubeDNSNS).Get(ctx, "kube-dns", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	o := coreDNSObjects{
		corefile:  cm.Data["Corefile"],
		image:     d.Spec.Template.Spec.Containers[0].Image,
		volumes:   d.Spec.Template.Spec.Volumes,
		labels:    d.Labels,
		clusterIP: svc.Spec.ClusterIP,
	}
	for _, p := range d.Spec.Template.Spec.Containers[0].Ports {
		o.ports = append(o.ports, p.Name)
	}
	slices.Sort(o.ports)
	for k := range cm.Data {
		o.cmKeys = append(o.cmKeys, k)
	}
	slices.Sort(o.cmKeys)
	for _, r := range cr.Rules {
		o.roleRes = append(o.roleRes, r.Resources...)
	}
	slices.Sort(o.roleRes)
	return o
}

// configVolume is the Deployment's config-volume as kubeadm and our manifests both write it:
// the ConfigMap coredns, key Corefile.
func configVolumeOK(vols []corev1.Volume) bool {
	for _, v := range vols {
		if v.Name == "config-volume" && v.ConfigMap != nil && v.ConfigMap.Name == "coredns" &&
			len(v.ConfigMap.Items) == 1 && v.ConfigMap.Items[0].Key == "Corefile" && v.ConfigMap.Items[0].Path == "Corefile" {
			return len(vols) == 1
		}
	}
	return false
}

// readmeBlocks returns the shell blocks of build/README.md's "Rollback and upgrade" section.
func readmeBlocks(t *testing.T) []string {
	t.Helper()
	b, err := os.ReadFile("../README.md")
	if err != nil {
		t.Fatal(err)
	}
	text := string(b)
	i := strings.Index(text, "### Rollback and upgrade")
	if i < 0 {
		t.Fatal("build/README.md has no Rollback and upgrade section")
	}
	text = text[i:]
	if j := strings.Index(text[4:], "\n### "); j >= 0 {
		text = text[:j+4]
	}
	var blocks []string
	for _, m := range regexp.MustCompile("(?s)~~~ sh\n(.*?)\n\\s*~~~").FindAllStringSubmatch(text, -1) {
		// The blocks are indented under list items.
		var lines []string
		for _, l := range strings.Split(m[1], "\n") {
			lines = append(lines, strings.TrimSpace(l))
		}
		blocks = append(blocks, strings.ReplaceAll(strings.Join(lines, "\n"), "\\\n", ""))
	}
	return blocks
}

// readmeBlock returns the README block that contains marker.
func readmeBlock(t *testing.T, blocks []string, marker string) string {
	t.Helper()
	for _, b := range blocks {
		if strings.Contains(b, marker) {
			return b
		}
	}
	t.Fatalf("build/README.md's Rollback and upgrade section has no sh block with %q: %q", marker, blocks)
	return ""
}

// shell runs script with bash in dir, with the control plane's kubectl first on PATH and its
// admin kubeconfig in KUBECONFIG, as an operator's shell would be set up.
func shell(t *testing.T, cp *controlplane.ControlPlane, dir, script string) (string, error) {
	t.Helper()
	_, kubectl := controlplane.Binaries(t)
	pathDir := t.TempDir()
	if err := os.Symlink(kubectl, filepath.Join(pathDir, "kubectl")); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("bash", "-euo", "pipefail", "-c", script)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "PATH="+pathDir+":"+os.Getenv("PATH"), "KUBECONFIG="+cp.Kubeconfig)
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// TestRollbackOnControlPlane does on a real kube-apiserver what build/README.md tells an
// operator, running the README's own shell blocks: kubeadm (built from the pinned release)
// installs its stock CoreDNS objects; the README's backup; our kube-dns unit applied over them;
// the rollback by re-applying the backup (no resourceVersion conflict, where a plain
// `get -o yaml` backup conflicts); ours applied again. At each step the ConfigMap's Corefile,
// the Deployment's image and volumes and the ClusterRole are checked. Then what a kubeadm
// upgrade's addon/coredns phase (kubeadm's EnsureDNSAddon, run here by `kubeadm init phase
// addon coredns`, the same function) does over our objects: with our image's tag it stops
// with an error and changes nothing; with a tag equal to kubeadm's CoreDNS version it
// replaces our Deployment with its stock one and keeps our Corefile, and re-applying our unit
// repairs that. The rollout steps (`rollout status`, `rollout undo`) need a controller manager
// and are not run here.
func TestRollbackOnControlPlane(t *testing.T) {
	cp := controlplane.Start(t)
	kubeadm := controlplane.Kubeadm(t)
	root := kit.RepoRoot(t)
	ctx := context.Background()
	work := t.TempDir()
	if err := os.Symlink(filepath.Join(root, "build"), filepath.Join(work, "build")); err != nil {
		t.Fatal(err)
	}
	blocks := readmeBlocks(t)
	backup := readmeBlock(t, blocks, "> coredns-backup.yaml")
	rollback := readmeBlock(t, blocks, "kubectl apply -f coredns-backup.yaml")

	// kubeadm's release, as the apiserver module pins it.
	gomod, err := os.ReadFile(filepath.Join(root, "test", "kit", "controlplane", "apiserver", "go.mod"))
	if err != nil {
		t.Fatal(err)
	}
	pin := regexp.MustCompile(`(?m)^require k8s\.io/kubernetes (v[0-9.]+)$`).FindStringSubmatch(string(gomod))
	if pin == nil {
		t.Fatal("test/kit/controlplane/apiserver/go.mod does not pin k8s.io/kubernetes")
	}
	release := pin[1]
	runKubeadm := func(args ...string) (string, error) {
		cmd := exec.Command(kubeadm, append(args, "--kubeconfig", cp.Kubeconfig, "--kubernetes-version", release)...)
		begin := time.Now()
		out, err := cmd.CombinedOutput()
		t.Logf("kubeadm %s: %v in %v", strings.Join(args, " "), err, time.Since(begin).Round(time.Millisecond))
		return string(out), err
	}
	// `kubeadm upgrade plan` to the pinned release: its preflight checks come first and read
	// only the cluster. (IsPrivilegedUser: the checks kubeadm runs as root on a node.)
	// A short API timeout, so that it gives up at once on the kubeadm-config it then looks for.
	upgradeCfg := filepath.Join(work, "upgrade.yaml")
	if err := os.WriteFile(upgradeCfg, []byte("apiVersion: kubeadm.k8s.io/v1beta4\nkind: UpgradeConfiguration\ntimeouts:\n  kubernetesAPICall: 1s\nplan:\n  ignorePreflightErrors: [IsPrivilegedUser]\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	upgradePlan := func() (string, error) {
		cmd := exec.Command(kubeadm, "upgrade", "plan", release, "--kubeconfig", cp.Kubeconfig, "--config", upgradeCfg)
		begin := time.Now()
		out, err := cmd.CombinedOutput()
		t.Logf("kubeadm upgrade plan: %v in %v", err, time.Since(begin).Round(time.Millisecond))
		return string(out), err
	}
	images, err := runKubeadm("config", "images", "list")
	if err != nil {
		t.Fatalf("kubeadm config images list: %v\n%s", err, images)
	}
	stockImage := regexp.MustCompile(`(?m)^\S+/coredns:v[0-9.]+$`).FindString(images)
	if stockImage == "" {
		t.Fatalf("kubeadm config images list names no CoreDNS image:\n%s", images)
	}
	stockVersion := stockImage[strings.LastIndex(stockImage, ":")+1:]

	// 1. kubeadm's stock objects, created by kubeadm itself (the same addon phase as kubeadm init).
	if out, err := runKubeadm("init", "phase", "addon", "coredns"); err != nil {
		t.Fatalf("kubeadm init phase addon coredns: %v\n%s", err, out)
	}
	stock := readCoreDNS(t, cp)
	if stock.image != stockImage || !strings.Contains(stock.corefile, "forward . /etc/resolv.conf") || !strings.Contains(stock.corefile, "cache 30") ||
		!configVolumeOK(stock.volumes) || !slices.Contains(stock.roleRes, "endpoints") || stock.clusterIP != "10.96.0.10" {
		t.Fatalf("kubeadm's objects: %+v", stock)
	}

	// 2. The README's backup, before the first apply; and a plain one, for the negative control.
	if out, err := shell(t, cp, work, backup); err != nil {
		t.Fatalf("the README's backup: %v\n%s", err, out)
	}
	data, err := os.ReadFile(filepath.Join(work, "coredns-backup.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	for _, field := range []string{"resourceVersion:", "uid:", "creationTimestamp:"} {
		if strings.Contains(string(data), field) {
			t.Errorf("the README's backup still holds %s", field)
		}
	}
	for _, obj := range []string{"kind: Deployment", "kind: ConfigMap", "kind: Service", "kind: ServiceAccount", "kind: ClusterRole", "kind: ClusterRoleBinding"} {
		if !strings.Contains(string(data), obj) {
			t.Errorf("the README's backup has no %s", obj)
		}
	}
	if out, err := shell(t, cp, work, strings.SplitN(backup, "|", 2)[0]+" > plain-backup.yaml"); err != nil {
		t.Fatalf("plain backup: %v\n%s", err, out)
	}

	// 3. Ours over kubeadm's.
	b := loadBundle(t, "kube-dns")
	ours := coreDNSObjects{
		corefile: one[*corev1.ConfigMap](t, b).Data["Corefile"],
		image:    one[*appsv1.Deployment](t, b).Spec.Template.Spec.Containers[0].Image,
	}
	checkOurs := func(step string) {
		t.Helper()
		got := readCoreDNS(t, cp)
		if got.corefile != ours.corefile || got.image != ours.image || !configVolumeOK(got.volumes) ||
			got.labels["app.kubernetes.io/name"] != "dnscache" || slices.Contains(got.roleRes, "endpoints") || got.clusterIP != "10.96.0.10" {
			t.Fatalf("%s: the objects are not ours: image %q labels %v volumes %+v role %v Corefile:\n%s", step, got.image, got.labels, got.volumes, got.roleRes, got.corefile)
		}
		if out, errOut, err := cp.KubectlWith(cp.Kubeconfig, nil, "diff", "-k", "kube-dns"); err != nil {
			t.Errorf("%s: kubectl diff -k kube-dns: %v\n%s%s", step, err, out, errOut)
		}
	}
	if out, err := shell(t, cp, work, "kubectl apply -k build/k8s/kube-dns"); err != nil {
		t.Fatalf("kubectl apply -k build/k8s/kube-dns: %v\n%s", err, out)
	}
	checkOurs("first apply")
	// kubeadm's objects carry no last-applied-configuration: the first apply keeps what kubeadm
	// set and ours does not (its named probe ports), as build/README.md says.
	if got := readCoreDNS(t, cp); !slices.Contains(got.ports, "liveness-probe") {
		t.Errorf("after the first apply the container's ports are %v: kubeadm's liveness-probe port is gone", got.ports)
	}

	// 4. A plain `get -o yaml` backup conflicts: the objects changed since it was taken.
	out, err := shell(t, cp, work, "kubectl apply -f plain-backup.yaml")
	if err == nil || !strings.Contains(out, "the object has been modified") {
		t.Errorf("re-applying a backup with resourceVersion: want a conflict, got %v\n%s", err, out)
	}
	if got := readCoreDNS(t, cp); got.image != ours.image {
		// kubectl applies object by object; the conflict must not have left half a rollback.
		t.Logf("after the conflicting apply the Deployment runs %s", got.image)
	}

	// 5. The README's rollback: kubeadm's objects back, exactly.
	rb := strings.Join(slices.DeleteFunc(strings.Split(rollback, "\n"), func(l string) bool {
		return strings.Contains(l, "rollout status") // waits for pods: needs a controller manager
	}), "\n")
	if out, err := shell(t, cp, work, rb); err != nil {
		t.Fatalf("the README's rollback: %v\n%s", err, out)
	}
	got := readCoreDNS(t, cp)
	if got.corefile != stock.corefile || got.image != stock.image || !configVolumeOK(got.volumes) ||
		!slices.Equal(got.roleRes, stock.roleRes) || !slices.Equal(got.cmKeys, stock.cmKeys) || got.clusterIP != stock.clusterIP {
		t.Fatalf("after the rollback: %+v, want kubeadm's %+v", got, stock)
	}
	for k := range got.labels {
		if strings.HasPrefix(k, "app.kubernetes.io/") {
			t.Errorf("after the rollback the Deployment still carries our label %s", k)
		}
	}

	// Positive control for step 7: over kubeadm's own objects, `kubeadm upgrade plan` passes its
	// CoreDNS checks (it then stops at reading its kubeadm-config, which this cluster lacks).
	if out, _ := upgradePlan(); strings.Contains(out, "CoreDNS") || !strings.Contains(out, "kubeadm-config") {
		t.Errorf("kubeadm upgrade plan over kubeadm's own CoreDNS objects:\n%s", out)
	}
	if _, err := cp.Client.PolicyV1().PodDisruptionBudgets(kubeDNSNS).Get(ctx, "coredns", metav1.GetOptions{}); err != nil {
		t.Errorf("after the rollback our PodDisruptionBudget, which the README says stays: %v", err)
	}

	// 6. Ours again over the restored objects: now kubectl knows what the backup applied, and
	// kubeadm's fields that ours do not set go.
	if out, err := shell(t, cp, work, "kubectl apply -k build/k8s/kube-dns"); err != nil {
		t.Fatalf("re-apply: %v\n%s", err, out)
	}
	checkOurs("re-apply")
	if got := readCoreDNS(t, cp); slices.Contains(got.ports, "liveness-probe") {
		t.Errorf("after the re-apply the container's ports are %v, want ours only", got.ports)
	}

	// 7. A kubeadm upgrade over ours. kubeadm reads the running CoreDNS version from the
	// Deployment's image tag (ours: 0.1.0), which corefile-migration does not know: the upgrade's
	// preflight fails (`upgrade plan` runs the same CoreDNS checks as `upgrade apply`), and the
	// addon/coredns phase, if the checks are ignored, fails and changes nothing.
	tag := ours.image[strings.LastIndex(ours.image, ":")+1:]
	out, err = upgradePlan()
	for _, check := range []string{"CoreDNSUnsupportedPlugins", "CoreDNSMigration"} {
		if err == nil || !strings.Contains(out, "[ERROR "+check+"]") || !strings.Contains(out, "start version '"+tag+"' not supported") {
			t.Errorf("kubeadm upgrade plan over ours: want the preflight error %s: start version '%s' not supported, got %v\n%s", check, tag, err, out)
		}
	}
	out, err = runKubeadm("init", "phase", "addon", "coredns")
	if err == nil || !strings.Contains(out, "start version '"+tag+"' not supported") {
		t.Errorf("kubeadm's addon phase over ours: want the error \"start version '%s' not supported\", got %v\n%s", tag, err, out)
	}
	checkOurs("kubeadm's addon phase with our tag")

	// With our image tagged as kubeadm's CoreDNS version, the phase goes through: it keeps our
	// Corefile (not kubeadm's default) and puts its stock Deployment and ClusterRole back.
	d, err := cp.Client.AppsV1().Deployments(kubeDNSNS).Get(ctx, "coredns", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	d.Spec.Template.Spec.Containers[0].Image = strings.TrimSuffix(ours.image, tag) + stockVersion
	if _, err := cp.Client.AppsV1().Deployments(kubeDNSNS).Update(ctx, d, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	if out, err := runKubeadm("init", "phase", "addon", "coredns"); err != nil {
		t.Fatalf("kubeadm's addon phase with a tag %s: %v\n%s", stockVersion, err, out)
	}
	got = readCoreDNS(t, cp)
	if got.corefile != ours.corefile {
		t.Errorf("kubeadm's addon phase replaced our Corefile:\n%s", got.corefile)
	}
	if got.image != stockImage || !slices.Contains(got.roleRes, "endpoints") || got.labels["app.kubernetes.io/name"] != "" {
		t.Errorf("kubeadm's addon phase: image %q role %v labels %v, want its stock Deployment (%s) and ClusterRole", got.image, got.roleRes, got.labels, stockImage)
	}
	// The README's remedy: re-apply our unit after the upgrade.
	if out, err := shell(t, cp, work, "kubectl apply -k build/k8s/kube-dns"); err != nil {
		t.Fatalf("re-apply after kubeadm: %v\n%s", err, out)
	}
	checkOurs("re-apply after kubeadm's addon phase")
}
