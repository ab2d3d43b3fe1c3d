package k8s

import (
	"maps"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	storagev1 "k8s.io/api/storage/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/util/validation"

	"github.com/dnscache/dnscache/build/csi"
	"github.com/dnscache/dnscache/test/kit"
	"github.com/dnscache/dnscache/test/kit/controlplane"
)

// The install units under build/k8s.
var bundles = []string{"kube-dns", "node-cache", "example-app", "example-app/alpine", "csi", "csi/example-app"}

const (
	// nodeDir is the node cache's directory on the node (the hostPath), hostDir the same
	// directory inside every pod that mounts it.
	nodeDir = "/run/dnscache"
	hostDir = "/dns_cache"
	// preloadValue is the apps' LD_PRELOAD, one value for glibc and musl images: glibc's loader
	// expands $LIB, musl's takes it literally (installedLayout).
	preloadValue = hostDir + "/$LIB/libdnscache.so"
	sockPath     = hostDir + "/dns.sock"
	kubeDNSNS    = "kube-system"
)

func TestManifestsDecodeStrictly(t *testing.T) {
	files := manifestFiles(t)
	if len(files) == 0 {
		t.Fatal("no manifests under build/k8s")
	}
	for _, f := range files {
		if _, err := decodeFile(f, f); err != nil {
			t.Error(err)
		}
	}
}

// TestDecodeStrictRejects shows the decoder is strict: each input is one mistake away from a
// valid object.
func TestDecodeStrictRejects(t *testing.T) {
	tests := []struct {
		name, doc string
	}{
		{"unknown field", "apiVersion: v1\nkind: Service\nspec:\n  clusterIp: 10.96.0.10\n"},
		{"unknown nested field", "apiVersion: apps/v1\nkind: DaemonSet\nspec:\n  template:\n    spec:\n      toleration: []\n"},
		{"duplicate key", "apiVersion: v1\nkind: ConfigMap\ndata:\n  Corefile: a\n  Corefile: b\n"},
		{"wrong type", "apiVersion: v1\nkind: Service\nspec:\n  ports: 53\n"},
		{"unknown top-level field", "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: x\nspec: {}\n"},
		{"two documents, one bad", "apiVersion: v1\nkind: ConfigMap\n---\napiVersion: v1\nkind: ConfigMap\ndata: [1]\n"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "x.yaml")
			if err := os.WriteFile(path, []byte(tc.doc), 0o644); err != nil {
				t.Fatal(err)
			}
			if _, err := decodeFile(path, "x.yaml"); err == nil {
				t.Errorf("%q decoded without error", tc.doc)
			}
		})
	}
	if _, err := newObject(metav1.TypeMeta{APIVersion: "v1", Kind: "Secret"}); err == nil {
		t.Error("an unexpected kind was accepted")
	}
}

// TestKustomizationsListEveryFile checks that each install unit's kustomization lists exactly
// the manifests of its directory, so `kubectl apply -k` and `kubectl apply -f` install the same.
func TestKustomizationsListEveryFile(t *testing.T) {
	for _, dir := range bundles {
		objs, err := decodeFile(filepath.Join(dir, "kustomization.yaml"), dir+"/kustomization.yaml")
		if err != nil {
			t.Fatal(err)
		}
		listed := slices.Sorted(slices.Values(objs[0].Obj.(*kustomization).Resources))
		var present []string
		ents, err := os.ReadDir(dir)
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range ents {
			if !e.IsDir() && strings.HasSuffix(e.Name(), ".yaml") && e.Name() != "kustomization.yaml" {
				present = append(present, e.Name())
			}
		}
		if !slices.Equal(listed, present) {
			t.Errorf("%s: kustomization lists %v, directory holds %v", dir, listed, present)
		}
	}
}

func TestObjectNames(t *testing.T) {
	for _, dir := range bundles {
		b := loadBundle(t, dir)
		for _, o := range b.Objs {
			var m metav1.Object
			switch v := o.Obj.(type) {
			case metav1.Object:
				m = v
			default:
				continue
			}
			clusterScoped := o.Kind == "ClusterRole" || o.Kind == "ClusterRoleBinding" || o.Kind == "Namespace" || o.Kind == "CSIDriver"
			// RBAC names may hold ':' (system:coredns); everything else is a DNS subdomain.
			if o.Kind != "ClusterRole" && o.Kind != "ClusterRoleBinding" {
				for _, e := range validation.IsDNS1123Subdomain(m.GetName()) {
					t.Errorf("%s: %s name %q: %s", o.File, o.Kind, m.GetName(), e)
				}
			}
			if m.GetName() == "" {
				t.Errorf("%s: %s without a name", o.File, o.Kind)
			}
			if !clusterScoped && m.GetNamespace() == "" {
				t.Errorf("%s: %s %s has no namespace", o.File, o.Kind, m.GetName())
			}
		}
	}
}

func TestKubeDNS(t *testing.T) {
	b := loadBundle(t, "kube-dns")
	d := one[*appsv1.Deployment](t, b)
	svc := one[*corev1.Service](t, b)

	if d.Namespace != kubeDNSNS || d.Spec.Template.Labels["k8s-app"] != "kube-dns" {
		t.Errorf("Deployment %s/%s: want namespace kube-system and pod label k8s-app: kube-dns", d.Namespace, d.Name)
	}
	// kubeadm's selector: a different one cannot be applied over an existing cluster's Deployment.
	if want := map[string]string{"k8s-app": "kube-dns"}; d.Spec.Selector == nil || !maps.Equal(d.Spec.Selector.MatchLabels, want) || len(d.Spec.Selector.MatchExpressions) != 0 {
		t.Errorf("Deployment selector %v, want matchLabels %v", d.Spec.Selector, want)
	}
	if d.Spec.Replicas == nil || *d.Spec.Replicas < 2 {
		t.Error("Deployment: want at least 2 replicas")
	}

	if svc.Name != "kube-dns" || svc.Namespace != kubeDNSNS {
		t.Errorf("Service %s/%s, want kube-system/kube-dns", svc.Namespace, svc.Name)
	}
	if svc.Labels["k8s-app"] != "kube-dns" {
		t.Error("Service: want label k8s-app: kube-dns")
	}
	if net.ParseIP(svc.Spec.ClusterIP) == nil {
		t.Errorf("Service clusterIP %q is not an IP address", svc.Spec.ClusterIP)
	}
	if !labels.SelectorFromSet(svc.Spec.Selector).Matches(labels.Set(d.Spec.Template.Labels)) || len(svc.Spec.Selector) == 0 {
		t.Errorf("Service selector %v does not select the Deployment's pods %v", svc.Spec.Selector, d.Spec.Template.Labels)
	}
	var ports []string
	for _, p := range svc.Spec.Ports {
		ports = append(ports, portKey(p.Port, p.Protocol))
		if p.TargetPort.IntValue() != int(p.Port) {
			t.Errorf("Service port %s targets %s", p.Name, p.TargetPort.String())
		}
	}
	wantPorts := []string{"53/TCP", "53/UDP", "9153/TCP"}
	if slices.Sort(ports); !slices.Equal(ports, wantPorts) {
		t.Errorf("Service ports %v, want %v", ports, wantPorts)
	}

	pdb := one[*policyv1.PodDisruptionBudget](t, b)
	if s, err := metav1.LabelSelectorAsSelector(pdb.Spec.Selector); err != nil || !s.Matches(labels.Set(d.Spec.Template.Labels)) {
		t.Errorf("PodDisruptionBudget selector does not select the Deployment's pods (%v)", err)
	}

	spec := &d.Spec.Template.Spec
	checkPodSpec(t, b, "Deployment "+d.Name, d.Spec.Selector, d.Spec.Template.Labels, spec)
	checkDNSServer(t, b, "Deployment "+d.Name, spec)
	if d := []string{"kubernetes", "cluster.local", "in-addr.arpa", "ip6.arpa"}; !hasDirective(configMapCorefile(t, b, spec), d...) {
		t.Errorf("Deployment: Corefile lacks %q", strings.Join(d, " "))
	}
	checkRBAC(t, b, spec.ServiceAccountName)
}

func TestNodeCache(t *testing.T) {
	b := loadBundle(t, "node-cache")
	ds := one[*appsv1.DaemonSet](t, b)
	spec := &ds.Spec.Template.Spec
	what := "DaemonSet " + ds.Name
	checkPodSpec(t, b, what, ds.Spec.Selector, ds.Spec.Template.Labels, spec)
	checkDNSServer(t, b, what, spec)

	// The node cache never talks to the API server: no RBAC, no token.
	if n := len(all[*rbacv1.ClusterRole](b)) + len(all[*rbacv1.ClusterRoleBinding](b)); n != 0 {
		t.Errorf("%s: %d RBAC objects, want none (the node cache does not read the API server)", b.Dir, n)
	}
	if sa := one[*corev1.ServiceAccount](t, b); sa.AutomountServiceAccountToken == nil || *sa.AutomountServiceAccountToken {
		t.Errorf("ServiceAccount %s: want automountServiceAccountToken: false", sa.Name)
	}
	// Its host directory is one that every node OS lets a pod write.
	if !strings.HasPrefix(nodeDir, "/run/") && !strings.HasPrefix(nodeDir, "/var/lib/") {
		t.Errorf("host directory %s is neither under /run nor /var/lib", nodeDir)
	}

	// Metrics: the pods carry the prometheus.io annotations, and a headless Service selects them
	// on the metrics port.
	wantAnn := map[string]string{"prometheus.io/scrape": "true", "prometheus.io/port": "9153"}
	for k, v := range wantAnn {
		if ds.Spec.Template.Annotations[k] != v {
			t.Errorf("%s: pod annotation %s=%q, want %q", what, k, ds.Spec.Template.Annotations[k], v)
		}
	}
	msvc := one[*corev1.Service](t, b)
	if msvc.Spec.ClusterIP != corev1.ClusterIPNone || !labels.SelectorFromSet(msvc.Spec.Selector).Matches(labels.Set(ds.Spec.Template.Labels)) || len(msvc.Spec.Selector) == 0 {
		t.Errorf("Service %s: want a headless Service selecting the node cache's pods", msvc.Name)
	}
	if len(msvc.Spec.Ports) != 1 || msvc.Spec.Ports[0].Port != 9153 || msvc.Annotations["prometheus.io/scrape"] != "true" || msvc.Annotations["prometheus.io/port"] != "9153" {
		t.Errorf("Service %s: want port 9153 and the prometheus.io annotations, have %v %v", msvc.Name, msvc.Spec.Ports, msvc.Annotations)
	}

	// The kube-dns Service must not pick up node cache pods: they serve a socket, not the cluster.
	svc := one[*corev1.Service](t, loadBundle(t, "kube-dns"))
	if labels.SelectorFromSet(svc.Spec.Selector).Matches(labels.Set(ds.Spec.Template.Labels)) {
		t.Errorf("the kube-dns Service selects the node cache's pods %v", ds.Spec.Template.Labels)
	}

	// Tolerate every taint: one toleration with no key, operator Exists, any effect.
	all := slices.ContainsFunc(spec.Tolerations, func(tl corev1.Toleration) bool {
		return tl.Key == "" && tl.Operator == corev1.TolerationOpExists && tl.Effect == ""
	})
	if !all {
		t.Errorf("%s: tolerations %v do not cover every node (want operator: Exists without key or effect)", what, spec.Tolerations)
	}

	vol := hostPathVolume(t, what, spec)
	server := container(t, what, spec.Containers, "coredns")
	checkDirMount(t, what+" coredns", server, vol, false)

	if len(spec.InitContainers) != 1 {
		t.Fatalf("%s: want one init container (the shim installer), have %d", what, len(spec.InitContainers))
	}
	ic := &spec.InitContainers[0]
	checkDirMount(t, what+" "+ic.Name, ic, vol, false)
	if ic.Image != server.Image {
		t.Errorf("%s: init image %s differs from the server's %s", what, ic.Image, server.Image)
	}
	script := installScript(t, ic)
	for _, w := range []string{" cp ", " mv -f "} {
		if !strings.Contains(script, w) {
			t.Errorf("%s: install script lacks %q:\n%s", what, w, script)
		}
	}
	// Kubernetes expands $$ to $ in commands, so a shell's $$ never reaches the shell.
	if strings.Contains(script, "$$") {
		t.Errorf("%s: install script uses $$, which Kubernetes rewrites to $", what)
	}

	corefile := configMapCorefile(t, b, spec)
	if !strings.Contains(corefile, "unixsock "+sockPath) {
		t.Errorf("%s: Corefile does not serve unixsock %s", what, sockPath)
	}
	if !hasDirective(corefile, "mode", "0666") {
		t.Errorf("%s: Corefile does not set the socket's mode 0666", what)
	}
	if strings.Contains(corefile, "kubernetes ") {
		t.Errorf("%s: Corefile runs the kubernetes plugin (a watch per node)", what)
	}
	for _, zone := range []string{"cluster.local", "in-addr.arpa", "ip6.arpa"} {
		stanza := "    forward " + zone + " " + kubeDNSUpstream + " {\n        force_tcp\n    }\n"
		if !strings.Contains(corefile, stanza) {
			t.Errorf("%s: Corefile does not forward %s to kube-dns over TCP (want %q)", what, zone, stanza)
		}
	}
}

// kubeDNSUpstream is the kube-dns Service's address in the node cache's Corefile: the
// variables Kubernetes sets in each pod for the Service kube-dns in its namespace and its port
// named dns-tcp.
const kubeDNSUpstream = "{$KUBE_DNS_SERVICE_HOST}:{$KUBE_DNS_SERVICE_PORT_DNS_TCP}"

// TestExampleApp checks the example apps: the glibc one (debian) and the musl one (alpine), each
// mounting the node cache's directory read-only and preloading the one LD_PRELOAD value.
// TestInstalledShimsResolve runs both libcs' programs with that value against what the node
// cache's init script installs.
func TestExampleApp(t *testing.T) {
	for dir, image := range map[string]string{"example-app": "debian", "example-app/alpine": "alpine"} {
		b := loadBundle(t, dir)
		d := one[*appsv1.Deployment](t, b)
		spec := &d.Spec.Template.Spec
		what := dir + ": Deployment " + d.Name
		checkPodSpec(t, b, what, d.Spec.Selector, d.Spec.Template.Labels, spec)
		vol := hostPathVolume(t, what, spec)
		for i := range spec.Containers {
			c := &spec.Containers[i]
			checkDirMount(t, what+" "+c.Name, c, vol, true)
			if v := ldPreload(t, what, c); v != preloadValue {
				t.Errorf("%s %s: LD_PRELOAD=%s, want %s", what, c.Name, v, preloadValue)
			}
			if name, _, _ := strings.Cut(c.Image, ":"); name != image {
				t.Errorf("%s %s: image %s, want %s", what, c.Name, c.Image, image)
			}
		}
	}
}

// ldPreload returns the container's LD_PRELOAD value.
func ldPreload(t *testing.T, what string, c *corev1.Container) string {
	t.Helper()
	i := slices.IndexFunc(c.Env, func(e corev1.EnvVar) bool { return e.Name == "LD_PRELOAD" })
	if i < 0 {
		t.Fatalf("%s %s: no LD_PRELOAD", what, c.Name)
	}
	return c.Env[i].Value
}

// checkPodSpec checks what every workload needs: a selector that selects its own pods, volumes
// for every mount, the ConfigMaps and ServiceAccount it names present in the same unit, and
// resources on every container.
func checkPodSpec(t *testing.T, b *bundle, what string, sel *metav1.LabelSelector, podLabels map[string]string, spec *corev1.PodSpec) {
	t.Helper()
	s, err := metav1.LabelSelectorAsSelector(sel)
	if err != nil || s.Empty() || !s.Matches(labels.Set(podLabels)) {
		t.Errorf("%s: selector %v does not select its pods %v (%v)", what, sel, podLabels, err)
	}
	vols := map[string]*corev1.Volume{}
	for i := range spec.Volumes {
		v := &spec.Volumes[i]
		vols[v.Name] = v
		if cm := v.ConfigMap; cm != nil {
			i := slices.IndexFunc(all[*corev1.ConfigMap](b), func(c *corev1.ConfigMap) bool { return c.Name == cm.Name })
			if i < 0 {
				t.Errorf("%s: volume %s names ConfigMap %s, which %s does not hold", what, v.Name, cm.Name, b.Dir)
				continue
			}
			for _, it := range cm.Items {
				if _, ok := all[*corev1.ConfigMap](b)[i].Data[it.Key]; !ok {
					t.Errorf("%s: ConfigMap %s has no key %s", what, cm.Name, it.Key)
				}
			}
		}
	}
	if sa := spec.ServiceAccountName; sa != "" && !slices.ContainsFunc(all[*corev1.ServiceAccount](b), func(s *corev1.ServiceAccount) bool { return s.Name == sa }) {
		t.Errorf("%s: ServiceAccount %s is not in %s", what, sa, b.Dir)
	}
	for _, c := range append(slices.Clone(spec.InitContainers), spec.Containers...) {
		for _, m := range c.VolumeMounts {
			if vols[m.Name] == nil {
				t.Errorf("%s %s: mount %s has no volume", what, c.Name, m.Name)
			}
		}
		r := c.Resources
		if r.Requests.Cpu().IsZero() || r.Requests.Memory().IsZero() || r.Limits.Memory().IsZero() {
			t.Errorf("%s %s: want cpu and memory requests and a memory limit, have %v", what, c.Name, r)
		}
		if c.Image == "" {
			t.Errorf("%s %s: no image", what, c.Name)
		}
		// A privileged container (the CSI driver's: mount propagation) escalates by definition;
		// the API server refuses allowPrivilegeEscalation: false on it.
		if sc := c.SecurityContext; sc == nil || (sc.Privileged == nil || !*sc.Privileged) && (sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation) {
			t.Errorf("%s %s: want allowPrivilegeEscalation: false", what, c.Name)
		}
	}
}

// checkDNSServer checks a CoreDNS pod: ports, probes on the ports the Corefile's health and
// ready plugins use, non-root with the one capability port 53 needs, and dnsPolicy Default.
func checkDNSServer(t *testing.T, b *bundle, what string, spec *corev1.PodSpec) {
	t.Helper()
	c := container(t, what, spec.Containers, "coredns")
	var ports []string
	for _, p := range c.Ports {
		ports = append(ports, portKey(p.ContainerPort, p.Protocol))
	}
	slices.Sort(ports)
	if want := []string{"53/TCP", "53/UDP", "9153/TCP"}; !slices.Equal(ports, want) {
		t.Errorf("%s: container ports %v, want %v", what, ports, want)
	}
	checkProbe(t, what+" liveness", c.LivenessProbe, "/health", 8080)
	checkProbe(t, what+" readiness", c.ReadinessProbe, "/ready", 8181)
	if spec.DNSPolicy != corev1.DNSDefault {
		t.Errorf("%s: dnsPolicy %q, want Default (a DNS server must not resolve through itself)", what, spec.DNSPolicy)
	}
	sc := c.SecurityContext
	if sc == nil || sc.RunAsNonRoot == nil || !*sc.RunAsNonRoot || sc.Capabilities == nil ||
		!slices.Equal(sc.Capabilities.Add, []corev1.Capability{"NET_BIND_SERVICE"}) ||
		!slices.Equal(sc.Capabilities.Drop, []corev1.Capability{"ALL"}) {
		t.Errorf("%s: want runAsNonRoot and capabilities add [NET_BIND_SERVICE] drop [ALL], have %+v", what, sc)
	}
	if len(c.Args) != 2 || c.Args[0] != "-conf" {
		t.Fatalf("%s: args %v, want -conf FILE", what, c.Args)
	}
	// The Corefile the server reads is the ConfigMap's, through the mount.
	mounted := false
	for _, m := range c.VolumeMounts {
		if filepath.Join(m.MountPath, "Corefile") == c.Args[1] {
			mounted = true
		}
	}
	if !mounted {
		t.Errorf("%s: %s is not in a mounted volume", what, c.Args[1])
	}
	corefile := configMapCorefile(t, b, spec)
	for _, d := range [][]string{{"health"}, {"ready"}, {"prometheus", ":9153"}, {"reload"}, {"loop"}, {"errors"}} {
		if !hasDirective(corefile, d...) {
			t.Errorf("%s: Corefile lacks %q", what, strings.Join(d, " "))
		}
	}
}

// checkRBAC checks that the service account is bound to a ClusterRole that may list and watch
// everything the kubernetes plugin watches.
func checkRBAC(t *testing.T, b *bundle, sa string) {
	t.Helper()
	var role *rbacv1.ClusterRole
	for _, crb := range all[*rbacv1.ClusterRoleBinding](b) {
		if !slices.ContainsFunc(crb.Subjects, func(s rbacv1.Subject) bool {
			return s.Kind == "ServiceAccount" && s.Name == sa && s.Namespace == kubeDNSNS
		}) || crb.RoleRef.Kind != "ClusterRole" {
			continue
		}
		for _, r := range all[*rbacv1.ClusterRole](b) {
			if r.Name == crb.RoleRef.Name {
				role = r
			}
		}
	}
	if role == nil {
		t.Fatalf("%s: no ClusterRole bound to ServiceAccount %s", b.Dir, sa)
	}
	need := map[string]string{"services": "", "pods": "", "namespaces": "", "endpointslices": "discovery.k8s.io"}
	for res, group := range need {
		for _, verb := range []string{"list", "watch"} {
			ok := slices.ContainsFunc(role.Rules, func(r rbacv1.PolicyRule) bool {
				return slices.Contains(r.APIGroups, group) && slices.Contains(r.Resources, res) && slices.Contains(r.Verbs, verb)
			})
			if !ok {
				t.Errorf("%s: ClusterRole %s may not %s %s", b.Dir, role.Name, verb, res)
			}
		}
	}
}

func checkProbe(t *testing.T, what string, p *corev1.Probe, path string, port int) {
	t.Helper()
	if p == nil || p.HTTPGet == nil {
		t.Errorf("%s: want an httpGet probe", what)
		return
	}
	if p.HTTPGet.Path != path || p.HTTPGet.Port.IntValue() != port {
		t.Errorf("%s: probe %s:%s, want %s:%d", what, p.HTTPGet.Path, p.HTTPGet.Port.String(), path, port)
	}
}

// hostPathVolume returns the pod's hostPath volume for /dns_cache, which must be a directory
// created when missing.
func hostPathVolume(t *testing.T, what string, spec *corev1.PodSpec) *corev1.Volume {
	t.Helper()
	for i := range spec.Volumes {
		v := &spec.Volumes[i]
		if v.HostPath == nil || v.HostPath.Path != nodeDir {
			continue
		}
		if v.HostPath.Type == nil || *v.HostPath.Type != corev1.HostPathDirectoryOrCreate {
			t.Errorf("%s: hostPath %s has type %v, want DirectoryOrCreate", what, nodeDir, v.HostPath.Type)
		}
		return v
	}
	t.Fatalf("%s: no hostPath volume for %s", what, nodeDir)
	return nil
}

// checkDirMount checks that c mounts the whole directory (never a file in it, nor a subPath,
// which would pin one inode of the socket) at /dns_cache.
func checkDirMount(t *testing.T, what string, c *corev1.Container, v *corev1.Volume, readOnly bool) {
	t.Helper()
	i := slices.IndexFunc(c.VolumeMounts, func(m corev1.VolumeMount) bool { return m.Name == v.Name })
	if i < 0 {
		t.Errorf("%s: does not mount %s", what, v.Name)
		return
	}
	m := c.VolumeMounts[i]
	if m.MountPath != hostDir || m.SubPath != "" || m.SubPathExpr != "" {
		t.Errorf("%s: mounts %s at %s (subPath %q), want the directory at %s", what, v.Name, m.MountPath, m.SubPath+m.SubPathExpr, hostDir)
	}
	if m.ReadOnly != readOnly {
		t.Errorf("%s: mount of %s readOnly=%v, want %v", what, hostDir, m.ReadOnly, readOnly)
	}
}

func container(t *testing.T, what string, cs []corev1.Container, name string) *corev1.Container {
	t.Helper()
	i := slices.IndexFunc(cs, func(c corev1.Container) bool { return c.Name == name })
	if i < 0 {
		t.Fatalf("%s: no container %s", what, name)
	}
	return &cs[i]
}

// configMapCorefile returns the Corefile of the ConfigMap the pod mounts.
func configMapCorefile(t *testing.T, b *bundle, spec *corev1.PodSpec) string {
	t.Helper()
	for _, v := range spec.Volumes {
		if v.ConfigMap == nil {
			continue
		}
		for _, cm := range all[*corev1.ConfigMap](b) {
			if cm.Name == v.ConfigMap.Name && cm.Data["Corefile"] != "" {
				return cm.Data["Corefile"]
			}
		}
	}
	t.Fatalf("%s: the pod mounts no ConfigMap with a Corefile", b.Dir)
	return ""
}

// installScript returns the shell script the init container runs (busybox sh -c SCRIPT).
func installScript(t *testing.T, c *corev1.Container) string {
	t.Helper()
	cmd := c.Command
	if len(cmd) != 4 || !strings.HasSuffix(cmd[0], "/busybox") || cmd[1] != "sh" || !strings.HasSuffix(cmd[2], "c") {
		t.Fatalf("init container %s: command %q, want [busybox sh -...c SCRIPT]", c.Name, cmd)
	}
	return cmd[3]
}

// hasDirective reports whether a line of the Corefile starts with the given words.
func hasDirective(corefile string, words ...string) bool {
	for _, line := range strings.Split(corefile, "\n") {
		f := strings.Fields(line)
		if len(f) >= len(words) && slices.Equal(f[:len(words)], words) {
			return true
		}
	}
	return false
}

func portKey(port int32, proto corev1.Protocol) string {
	if proto == "" {
		proto = corev1.ProtocolTCP
	}
	return strconv.Itoa(int(port)) + "/" + string(proto)
}

// TestKustomizationImages checks each kustomization's images stanza: one entry for every image
// its containers run, which maps the image to itself (so `kubectl apply -k` installs what the
// files say), and which changes every container when edited: kubectl's own kustomize (no
// separate binary) renders a copy of the unit with another tag.
func TestKustomizationImages(t *testing.T) {
	_, kubectl := controlplane.Binaries(t)
	for _, dir := range bundles {
		objs, err := decodeFile(filepath.Join(dir, "kustomization.yaml"), dir+"/kustomization.yaml")
		if err != nil {
			t.Fatal(err)
		}
		k := objs[0].Obj.(*kustomization)
		b := loadBundle(t, dir)
		var specs []*corev1.PodSpec
		for _, d := range all[*appsv1.Deployment](b) {
			specs = append(specs, &d.Spec.Template.Spec)
		}
		for _, d := range all[*appsv1.DaemonSet](b) {
			specs = append(specs, &d.Spec.Template.Spec)
		}
		names := map[string]bool{}
		for _, s := range specs {
			for _, c := range append(slices.Clone(s.InitContainers), s.Containers...) {
				name, _, _ := strings.Cut(c.Image, ":")
				names[name] = true
				i := slices.IndexFunc(k.Images, func(im kustImage) bool { return im.Name == name })
				if i < 0 {
					t.Errorf("%s: no images entry for %s", dir, name)
					continue
				}
				if im := k.Images[i]; im.NewName+":"+im.NewTag != c.Image || im.Digest != "" {
					t.Errorf("%s: images entry %+v does not map to %s", dir, im, c.Image)
				}
			}
		}
		if len(k.Images) != len(names) {
			t.Errorf("%s: %d images entries for %d images", dir, len(k.Images), len(names))
		}

		// Edit the copy's newTag and render it.
		tmp := t.TempDir()
		entries, err := os.ReadDir(dir)
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range entries {
			if e.IsDir() {
				continue
			}
			data, err := os.ReadFile(filepath.Join(dir, e.Name()))
			if err != nil {
				t.Fatal(err)
			}
			if e.Name() == "kustomization.yaml" {
				data = []byte(strings.ReplaceAll(string(data), "    newTag: ", "    newTag: edited-"))
			}
			if err := os.WriteFile(filepath.Join(tmp, e.Name()), data, 0o644); err != nil {
				t.Fatal(err)
			}
		}
		out, err := exec.Command(kubectl, "kustomize", tmp).CombinedOutput()
		if err != nil {
			t.Fatalf("kubectl kustomize %s: %v\n%s", dir, err, out)
		}
		n := 0
		for _, line := range strings.Split(string(out), "\n") {
			if img, ok := strings.CutPrefix(strings.TrimSpace(line), "image: "); ok {
				n++
				if _, tag, _ := strings.Cut(img, ":"); !strings.HasPrefix(tag, "edited-") {
					t.Errorf("%s: the edited images stanza left %s", dir, img)
				}
			}
		}
		if n == 0 {
			t.Errorf("%s: kubectl kustomize rendered no image", dir)
		}
	}
}

const (
	csiDriverName = csi.DefaultName // the CSIDriver object's name, and a pod volume's csi.driver
	csiExampleNS  = "dnscache-example"
	kubeletPods   = "/var/lib/kubelet/pods"
)

// TestCSIDriver checks the CSI unit: the CSIDriver object, and a DaemonSet whose driver and
// node-driver-registrar agree on the socket, publish from the node cache's directory and
// reach the kubelet's pods directory with Bidirectional propagation. The driver's arguments
// are given to the real cmd/dnscache-csi, which must accept them.
func TestCSIDriver(t *testing.T) {
	b := loadBundle(t, "csi")
	drv := one[*storagev1.CSIDriver](t, b)
	if drv.Name != csiDriverName {
		t.Errorf("CSIDriver %s, want %s (build/csi's DefaultName)", drv.Name, csiDriverName)
	}
	sp := drv.Spec
	if sp.AttachRequired == nil || *sp.AttachRequired || sp.PodInfoOnMount == nil || !*sp.PodInfoOnMount ||
		!slices.Equal(sp.VolumeLifecycleModes, []storagev1.VolumeLifecycleMode{storagev1.VolumeLifecycleEphemeral}) ||
		sp.FSGroupPolicy == nil || *sp.FSGroupPolicy != storagev1.NoneFSGroupPolicy {
		t.Errorf("CSIDriver spec %+v: want attachRequired false, podInfoOnMount true (the driver checks csi.storage.k8s.io/ephemeral), volumeLifecycleModes [Ephemeral], fsGroupPolicy None", sp)
	}
	if n := len(all[*rbacv1.ClusterRole](b)) + len(all[*rbacv1.ClusterRoleBinding](b)); n != 0 {
		t.Errorf("%s: %d RBAC objects, want none (the driver does not read the API server)", b.Dir, n)
	}
	if sa := one[*corev1.ServiceAccount](t, b); sa.AutomountServiceAccountToken == nil || *sa.AutomountServiceAccountToken {
		t.Errorf("ServiceAccount %s: want automountServiceAccountToken: false", sa.Name)
	}

	ds := one[*appsv1.DaemonSet](t, b)
	spec := &ds.Spec.Template.Spec
	what := "DaemonSet " + ds.Name
	checkPodSpec(t, b, what, ds.Spec.Selector, ds.Spec.Template.Labels, spec)
	if spec.AutomountServiceAccountToken == nil || *spec.AutomountServiceAccountToken {
		t.Errorf("%s: want automountServiceAccountToken: false", what)
	}
	vols := map[string]*corev1.Volume{}
	for i := range spec.Volumes {
		vols[spec.Volumes[i].Name] = &spec.Volumes[i]
	}
	// hostOf returns the node path that c sees at p, through its mounts' hostPath volumes.
	hostOf := func(c *corev1.Container, p string) (string, corev1.VolumeMount) {
		for _, m := range c.VolumeMounts {
			if v := vols[m.Name]; v != nil && v.HostPath != nil && (p == m.MountPath || strings.HasPrefix(p, m.MountPath+"/")) {
				return v.HostPath.Path + strings.TrimPrefix(p, m.MountPath), m
			}
		}
		t.Errorf("%s %s: %s is in no hostPath mount", what, c.Name, p)
		return "", corev1.VolumeMount{}
	}

	d := container(t, what, spec.Containers, "dnscache-csi")
	if !slices.Equal(d.Command, []string{imageCSI}) {
		t.Errorf("%s: command %v, want [%s] (the image's driver binary)", what, d.Command, imageCSI)
	}
	if server := container(t, "node-cache", one[*appsv1.DaemonSet](t, loadBundle(t, "node-cache")).Spec.Template.Spec.Containers, "coredns"); d.Image != server.Image {
		t.Errorf("%s: image %s, the node cache runs %s", what, d.Image, server.Image)
	}
	if sc := d.SecurityContext; sc == nil || sc.Privileged == nil || !*sc.Privileged {
		t.Errorf("%s: the driver must be privileged (mount propagation)", what)
	}
	args := map[string]string{}
	for i := 0; i+1 < len(d.Args); i += 2 {
		args[d.Args[i]] = d.Args[i+1]
	}
	if len(args)*2 != len(d.Args) {
		t.Fatalf("%s: args %v, want -flag value pairs", what, d.Args)
	}
	if args["-driver-name"] != csiDriverName {
		t.Errorf("%s: -driver-name %q, want %s", what, args["-driver-name"], csiDriverName)
	}
	if args["-node-id"] != "$(NODE_NAME)" || !slices.ContainsFunc(d.Env, func(e corev1.EnvVar) bool {
		return e.Name == "NODE_NAME" && e.ValueFrom != nil && e.ValueFrom.FieldRef != nil && e.ValueFrom.FieldRef.FieldPath == "spec.nodeName"
	}) {
		t.Errorf("%s: want -node-id $(NODE_NAME) with NODE_NAME from spec.nodeName", what)
	}
	if src, m := hostOf(d, args["-source"]); src != nodeDir || !m.ReadOnly {
		t.Errorf("%s: -source %s is the node's %s (readOnly %v), want the node cache's %s, read-only", what, args["-source"], src, m.ReadOnly, nodeDir)
	}
	if root, m := hostOf(d, args["-target-root"]); root != kubeletPods || args["-target-root"] != kubeletPods ||
		m.MountPropagation == nil || *m.MountPropagation != corev1.MountPropagationBidirectional {
		t.Errorf("%s: -target-root %s (node %s): want %s mounted at the same path with Bidirectional propagation", what, args["-target-root"], root, kubeletPods)
	}
	sock, _ := hostOf(d, args["-endpoint"])
	if want := "/var/lib/kubelet/plugins/" + csiDriverName + "/csi.sock"; sock != want {
		t.Errorf("%s: the driver's socket is the node's %s, want %s", what, sock, want)
	}

	r := container(t, what, spec.Containers, "node-driver-registrar")
	rargs := map[string]string{}
	for _, a := range r.Args {
		k, v, _ := strings.Cut(a, "=")
		rargs[k] = v
	}
	if rsock, _ := hostOf(r, rargs["--csi-address"]); rsock != sock {
		t.Errorf("%s: the registrar dials the node's %s, the driver listens on %s", what, rsock, sock)
	}
	if rargs["--kubelet-registration-path"] != sock {
		t.Errorf("%s: --kubelet-registration-path %s, want the socket's node path %s", what, rargs["--kubelet-registration-path"], sock)
	}
	if reg, _ := hostOf(r, "/registration"); reg != "/var/lib/kubelet/plugins_registry" {
		t.Errorf("%s: the registrar's /registration is the node's %s, want /var/lib/kubelet/plugins_registry", what, reg)
	}

	// The real driver accepts these arguments (-version exits after parsing them).
	bin := filepath.Join(t.TempDir(), "dnscache-csi")
	build := exec.Command("go", "build", "-o", bin, "./cmd/dnscache-csi")
	build.Dir = kit.RepoRoot(t)
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build ./cmd/dnscache-csi: %v\n%s", err, out)
	}
	if out, err := exec.Command(bin, append(slices.Clone(d.Args), "-version")...).CombinedOutput(); err != nil || !strings.HasPrefix(string(out), csiDriverName+" ") {
		t.Errorf("dnscache-csi %v -version: %v\n%s", d.Args, err, out)
	}
}

// TestCSIExampleApp checks the example app for restricted namespaces: the app of
// build/k8s/example-app, with the node cache's directory from a read-only inline volume of the
// CSI driver instead of a hostPath, in a namespace that enforces restricted.
func TestCSIExampleApp(t *testing.T) {
	b := loadBundle(t, "csi/example-app")
	ns := one[*corev1.Namespace](t, b)
	if ns.Name != csiExampleNS {
		t.Errorf("namespace %s, want %s", ns.Name, csiExampleNS)
	}
	for _, mode := range []string{"enforce", "warn", "audit"} {
		if lvl := ns.Labels["pod-security.kubernetes.io/"+mode]; lvl != "restricted" {
			t.Errorf("namespace %s: %s level %q, want restricted", ns.Name, mode, lvl)
		}
	}
	d := one[*appsv1.Deployment](t, b)
	if d.Namespace != ns.Name {
		t.Errorf("Deployment %s in namespace %s, want %s", d.Name, d.Namespace, ns.Name)
	}
	spec := &d.Spec.Template.Spec
	what := "Deployment " + d.Name
	checkPodSpec(t, b, what, d.Spec.Selector, d.Spec.Template.Labels, spec)
	if len(spec.Volumes) != 1 {
		t.Fatalf("%s: %d volumes, want one", what, len(spec.Volumes))
	}
	v := &spec.Volumes[0]
	if v.CSI == nil || v.CSI.Driver != csiDriverName || v.CSI.ReadOnly == nil || !*v.CSI.ReadOnly {
		t.Errorf("%s: volume %s: want csi driver %s with readOnly: true (the driver refuses it otherwise)", what, v.Name, csiDriverName)
	}
	// The same app as build/k8s/example-app, the volume aside.
	orig := one[*appsv1.Deployment](t, loadBundle(t, "example-app")).Spec.Template.Spec.Containers
	for i := range spec.Containers {
		c := &spec.Containers[i]
		checkDirMount(t, what+" "+c.Name, c, v, true)
		j := slices.IndexFunc(orig, func(o corev1.Container) bool { return o.Name == c.Name })
		if j < 0 || orig[j].Image != c.Image || !slices.Equal(orig[j].Args, c.Args) || !slices.Equal(orig[j].Env, c.Env) {
			t.Errorf("%s %s: not the example app of build/k8s/example-app", what, c.Name)
		}
	}
}
