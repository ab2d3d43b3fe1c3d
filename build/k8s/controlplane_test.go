package k8s

import (
	"context"
	"fmt"
	"net/http"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/dnscache/dnscache/test/kit"
	"github.com/dnscache/dnscache/test/kit/controlplane"
	"github.com/dnscache/dnscache/test/lab"

	"github.com/miekg/dns"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	storagev1 "k8s.io/api/storage/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// The PodSecurity level (https://kubernetes.io/docs/concepts/security/pod-security-standards/)
// each workload's pods are admitted at: the strictest level whose enforcement admits them.
// build/README.md documents this table; TestPodSecurityLevels asserts it on the API server.
var podSecurityLevel = map[string]string{
	"kube-dns":           "restricted", // no hostPath, non-root, drops ALL, adds only NET_BIND_SERVICE
	"node-cache":         "privileged", // hostPath (the socket and shim directory)
	"example-app":        "privileged", // hostPath (mounts the node cache's directory)
	"example-app/alpine": "privileged", // the same app on a musl image: hostPath
	"csi":                "privileged", // hostPaths, a privileged container (Bidirectional mount propagation)
	// The same app with the directory from the CSI driver's inline volume: no hostPath.
	"csi/example-app": "restricted",
}

var levels = []string{"privileged", "baseline", "restricted"}

// TestManifestsOnControlPlane installs every kustomization on a real kube-apiserver
// (test/kit/controlplane): a server-side dry run with strict field validation first, then for
// real, and checks that every object it lists is stored. Then, on what was installed: the RBAC
// the manifests grant, as the API server enforces it; the PodSecurity level of each workload;
// and bin/coredns on the kube-dns ConfigMap's Corefile, authenticated with the token of the
// ServiceAccount the manifests create, answering from live objects.
func TestManifestsOnControlPlane(t *testing.T) {
	cp := controlplane.Start(t)
	// A unit that brings its own namespace (csi/example-app) cannot be dry-run before that
	// namespace exists, as with any kubectl apply: its namespace is applied first.
	for _, dir := range bundles {
		for _, o := range loadBundle(t, dir).Objs {
			if o.Kind == "Namespace" {
				for _, dry := range []string{"--dry-run=server", "--dry-run=none"} {
					if _, errOut, err := cp.KubectlWith(cp.Kubeconfig, nil, "apply", dry, "--validate=strict", "-f", o.File); err != nil {
						t.Fatalf("kubectl apply %s -f %s: %v\n%s", dry, o.File, err, errOut)
					}
				}
			}
		}
	}
	for _, dir := range bundles {
		if _, errOut, err := cp.KubectlWith(cp.Kubeconfig, nil, "apply", "--dry-run=server", "--validate=strict", "-k", dir); err != nil {
			t.Fatalf("kubectl apply --dry-run=server --validate=strict -k %s: %v\n%s", dir, err, errOut)
		} else if strings.Contains(errOut, "Warning") {
			t.Errorf("kubectl apply --dry-run=server -k %s warns:\n%s", dir, errOut)
		}
		for _, name := range strings.Fields(cp.Kubectl(t, "get", "-k", dir, "--ignore-not-found", "-o", "name")) {
			if !strings.HasPrefix(name, "namespace/") {
				t.Errorf("the dry run of %s stored %s", dir, name)
			}
		}
	}
	for _, dir := range bundles {
		cp.Kubectl(t, "apply", "--validate=strict", "-k", dir)
		b := loadBundle(t, dir)
		got := strings.Fields(cp.Kubectl(t, "get", "-k", dir, "-o", "name"))
		if len(got) != len(b.Objs) {
			t.Errorf("%s: %d objects stored, want %d: %v", dir, len(got), len(b.Objs), got)
		}
	}
	// What is stored is what the files say: kubectl diff (a server-side dry run of the apply,
	// compared with the live objects) finds nothing, so a re-apply changes nothing.
	for _, dir := range bundles {
		if out, errOut, err := cp.KubectlWith(cp.Kubeconfig, nil, "diff", "-k", dir); err != nil {
			t.Errorf("kubectl diff -k %s after apply: %v\n%s%s", dir, err, out, errOut)
		}
	}

	t.Run("RBAC", func(t *testing.T) { checkRBACEnforced(t, cp) })
	t.Run("PodSecurity", func(t *testing.T) { checkPodSecurityLevels(t, cp) })
	t.Run("CSI", func(t *testing.T) { checkCSI(t, cp) })
	t.Run("kube-dns answers", func(t *testing.T) { checkKubeDNSAnswers(t, cp) })
}

// checkRBACEnforced asks the API server (kubectl auth can-i, impersonating) what each
// manifest's ServiceAccount may do: kube-dns's coredns everything the kubernetes plugin lists
// and watches, and nothing else that matters (secrets, writes); the node cache's dnscache-node
// (which forwards to kube-dns) nothing at all, like a ServiceAccount with no binding.
func checkRBACEnforced(t *testing.T, cp *controlplane.ControlPlane) {
	need := []string{"services", "endpointslices.discovery.k8s.io", "pods", "namespaces"}
	canI := func(sa, verb, res string) bool {
		out, errOut, err := cp.KubectlWith(cp.Kubeconfig, nil, "auth", "can-i", verb, res, "--as=system:serviceaccount:kube-system:"+sa)
		switch strings.TrimSpace(out) {
		case "yes":
			return true
		case "no":
			return false
		}
		t.Fatalf("kubectl auth can-i %s %s as %s: %q %v %s", verb, res, sa, out, err, errOut)
		return false
	}
	cp.Client.CoreV1().ServiceAccounts(kubeDNSNS).Create(context.Background(), &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: "no-rbac"}}, metav1.CreateOptions{})
	for _, sa := range []string{"coredns", "dnscache-node", "dnscache-csi", "no-rbac"} {
		granted := sa == "coredns"
		for _, res := range need {
			for _, verb := range []string{"list", "watch"} {
				if got := canI(sa, verb, res); got != granted {
					t.Errorf("%s may %s %s: %v, want %v", sa, verb, res, got, granted)
				}
			}
		}
		for _, vr := range [][2]string{{"get", "secrets"}, {"list", "configmaps"}, {"create", "services"}, {"update", "endpointslices.discovery.k8s.io"}, {"delete", "pods"}} {
			if canI(sa, vr[0], vr[1]) {
				t.Errorf("%s may %s %s", sa, vr[0], vr[1])
			}
		}
	}
}

// checkPodSecurityLevels creates (server-side dry run) a Pod from each workload's template in
// namespaces that enforce each PodSecurity level, and checks that it is admitted exactly at
// the levels up to podSecurityLevel's.
func checkPodSecurityLevels(t *testing.T, cp *controlplane.ControlPlane) {
	ctx := context.Background()
	for _, lvl := range levels {
		ns := "psa-" + lvl
		cp.Namespace(t, ns, map[string]string{"pod-security.kubernetes.io/enforce": lvl})
		for _, sa := range []string{"coredns", "dnscache-node", "dnscache-csi"} {
			cp.Client.CoreV1().ServiceAccounts(ns).Create(ctx, &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: sa}}, metav1.CreateOptions{})
		}
	}
	for _, dir := range bundles {
		b := loadBundle(t, dir)
		var templates []corev1.PodTemplateSpec
		for _, d := range all[*appsv1.Deployment](b) {
			templates = append(templates, d.Spec.Template)
		}
		for _, d := range all[*appsv1.DaemonSet](b) {
			templates = append(templates, d.Spec.Template)
		}
		if len(templates) != 1 {
			t.Fatalf("%s: %d workloads, want 1", dir, len(templates))
		}
		want := podSecurityLevel[dir]
		for i, lvl := range levels {
			pod := &corev1.Pod{
				ObjectMeta: metav1.ObjectMeta{Name: strings.ReplaceAll(dir, "/", "-"), Namespace: "psa-" + lvl, Labels: templates[0].Labels},
				Spec:       templates[0].Spec,
			}
			_, err := cp.Client.CoreV1().Pods(pod.Namespace).Create(ctx, pod, metav1.CreateOptions{DryRun: []string{metav1.DryRunAll}})
			admit := i <= slices.Index(levels, want)
			if admit && err != nil {
				t.Errorf("%s: refused under %s, want admitted (its level is %s): %v", dir, lvl, want, err)
			}
			if !admit && (err == nil || !strings.Contains(err.Error(), "violates PodSecurity")) {
				t.Errorf("%s: admitted under %s, want refused (its level is %s): %v", dir, lvl, want, err)
			}
		}
	}
}

// checkCSI checks what the API server stored of the CSI driver, and that the example app's pod
// is admitted in its own namespace (which enforces restricted, from the unit's namespace.yaml)
// while the hostPath variant of the same app is refused there.
func checkCSI(t *testing.T, cp *controlplane.ControlPlane) {
	ctx := context.Background()
	drv, err := cp.Client.StorageV1().CSIDrivers().Get(ctx, csiDriverName, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if modes := drv.Spec.VolumeLifecycleModes; len(modes) != 1 || modes[0] != storagev1.VolumeLifecycleEphemeral {
		t.Errorf("CSIDriver %s: volumeLifecycleModes %v, want [Ephemeral]", drv.Name, modes)
	}
	ns, err := cp.Client.CoreV1().Namespaces().Get(ctx, csiExampleNS, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if lvl := ns.Labels["pod-security.kubernetes.io/enforce"]; lvl != "restricted" {
		t.Fatalf("namespace %s enforces %q, want restricted", ns.Name, lvl)
	}
	// The ServiceAccount the controller manager (absent here) would create in the namespace.
	if _, err := cp.Client.CoreV1().ServiceAccounts(csiExampleNS).Create(ctx, &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: "default"}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	pod := func(dir string) *corev1.Pod {
		d := one[*appsv1.Deployment](t, loadBundle(t, dir))
		return &corev1.Pod{
			ObjectMeta: metav1.ObjectMeta{Name: "app", Namespace: csiExampleNS, Labels: d.Spec.Template.Labels},
			Spec:       d.Spec.Template.Spec,
		}
	}
	dry := metav1.CreateOptions{DryRun: []string{metav1.DryRunAll}}
	if _, err := cp.Client.CoreV1().Pods(csiExampleNS).Create(ctx, pod("csi/example-app"), dry); err != nil {
		t.Errorf("the CSI example app's pod is refused in %s: %v", csiExampleNS, err)
	}
	_, err = cp.Client.CoreV1().Pods(csiExampleNS).Create(ctx, pod("example-app"), dry)
	if err == nil || !strings.Contains(err.Error(), "violates PodSecurity") || !strings.Contains(err.Error(), "hostPath") {
		t.Errorf("the hostPath example app's pod in %s: %v, want refused for its hostPath volume", csiExampleNS, err)
	}
}

// kubeDNSCorefile returns the kube-dns ConfigMap's Corefile rewritten to run here (see
// rewriteConfigMap) against cp, authenticated by kubeconfig, with racetls racing the lab
// upstreams ups instead of the public resolvers (nothing leaves loopback).
func kubeDNSCorefile(t *testing.T, cp *controlplane.ControlPlane, p *ports, kubeconfig string, ups ...*lab.Upstream) string {
	t.Helper()
	corefile := rewriteConfigMap(t, configMapText(t, "kube-dns"), p)
	corefile = strings.Replace(corefile, "        endpoint "+p.kubeAPI+"\n",
		"        endpoint "+cp.URL+"\n        kubeconfig "+kubeconfig+"\n", 1)
	return labUpstreams(t, corefile, p, ups)
}

// labUpstreams replaces racetls's public resolvers with the lab upstreams ups, each under its
// own certificate name, verified against the lab CA (which the caller writes to p.s.Dir).
func labUpstreams(t *testing.T, corefile string, p *ports, ups []*lab.Upstream) string {
	t.Helper()
	return labUpstreamsNamed(t, corefile, p, ups, "")
}

// labUpstreamsNamed is labUpstreams with every upstream under the certificate name name
// instead of its own when name is not empty: a wrong name never passes verification.
func labUpstreamsNamed(t *testing.T, corefile string, p *ports, ups []*lab.Upstream, name string) string {
	t.Helper()
	re := regexp.MustCompile(`(?m)^([ \t]*)racetls \. [^{\n]*\{\n`) // not a commented-out variant
	if len(re.FindAllString(corefile, -1)) != 1 {
		t.Fatalf("want one racetls line in:\n%s", corefile)
	}
	line := "racetls ."
	for _, up := range ups {
		n := name
		if n == "" {
			n = up.ServerName()
		}
		line += fmt.Sprintf(" tls://%s%%%s", up.TLSAddr(), n)
	}
	return re.ReplaceAllString(corefile, "${1}"+strings.ReplaceAll(line+" {\n        tls "+p.s.CA+"\n", "$", "$$"))
}

// checkKubeDNSAnswers runs bin/coredns on the kube-dns ConfigMap's Corefile as the manifests'
// coredns ServiceAccount, with the node cache's Corefile forwarding to it, and kube-dns's as a
// ServiceAccount without RBAC (the negative control: never ready, SERVFAIL for cluster names,
// "forbidden" in its log).
func checkKubeDNSAnswers(t *testing.T, cp *controlplane.ControlPlane) {
	cp.Namespace(t, "apps", nil)
	web := cp.ClusterIP(t, "apps", "web")
	db := cp.Headless(t, "apps", "db", controlplane.Port("pg", 5432))
	cp.EndpointSlice(t, db, controlplane.Endpoint{IP: "10.1.0.5", Hostname: "primary"}, controlplane.Endpoint{IP: "10.1.0.6"})
	cp.ExternalName(t, "apps", "ext", "db.example.org")
	gone := cp.ClusterIP(t, "apps", "gone")

	ca, err := lab.NewCA()
	if err != nil {
		t.Fatal(err)
	}
	ups := []*lab.Upstream{lab.StartTest(t, lab.Config{CA: ca}), lab.StartTest(t, lab.Config{CA: ca})}

	t.Run("no RBAC", func(t *testing.T) {
		t.Parallel()
		p := newPorts(t)
		if err := ca.WriteFiles(p.s.Dir); err != nil {
			t.Fatal(err)
		}
		p.s.Run(t, kubeDNSCorefile(t, cp, p, cp.ServiceAccountKubeconfig(t, kubeDNSNS, "no-rbac"), ups...))
		if code, body := get(t, "http://"+p.ready+"/ready"); code == http.StatusOK {
			t.Errorf("/ready: %d %s without RBAC", code, body)
		}
		m := new(dns.Msg)
		m.SetQuestion("web.apps.svc.cluster.local.", dns.TypeA)
		if r := p.s.Exchange(t, m, "udp"); r.Rcode != dns.RcodeServerFailure {
			t.Errorf("without RBAC: web A: %s, want SERVFAIL", dns.RcodeToString[r.Rcode])
		}
		if !strings.Contains(p.s.Log(), "forbidden") {
			t.Errorf("no \"forbidden\" in the log:\n%s", p.s.Log())
		}
	})

	// The kube-dns Deployment's probes, on kube-dns's Corefile with the right RBAC but the
	// upstreams under a wrong certificate name: the kubernetes plugin syncs and answers, but
	// no upstream ever verifies, so the readiness probe fails naming racetls alone while the
	// liveness probe passes. A rollout of that configuration gets no ready pod and holds (see
	// TestRolloutHolds); the working one below gets ready.
	t.Run("wrong certificate name", func(t *testing.T) {
		t.Parallel()
		bad := []*lab.Upstream{lab.StartTest(t, lab.Config{CA: ca}), lab.StartTest(t, lab.Config{CA: ca})}
		p := newPorts(t)
		if err := ca.WriteFiles(p.s.Dir); err != nil {
			t.Fatal(err)
		}
		d := one[*appsv1.Deployment](t, loadBundle(t, "kube-dns"))
		ready, live := probeURLs(t, configMapText(t, "kube-dns"), p, container(t, "kube-dns", d.Spec.Template.Spec.Containers, "coredns"))
		corefile := kubeDNSCorefile(t, cp, p, cp.ServiceAccountKubeconfig(t, kubeDNSNS, "coredns"), bad...)
		if n := strings.Count(corefile, "%"+bad[0].ServerName()+" "); n != 2 {
			t.Fatalf("the racetls line names %s %d times, want 2:\n%s", bad[0].ServerName(), n, corefile)
		}
		p.s.Run(t, strings.ReplaceAll(corefile, "%"+bad[0].ServerName()+" ", "%wrong.example "))
		m := new(dns.Msg)
		m.SetQuestion("web.apps.svc.cluster.local.", dns.TypeA)
		poll(t, "kubernetes answers", 30*time.Second, func() bool {
			return slices.Equal(kit.Answers(p.s.Exchange(t, m, "udp"), dns.TypeA), []string{web.Spec.ClusterIP})
		})
		poll(t, "three dials each", 30*time.Second, func() bool { return bad[0].Stats().Conns >= 3 && bad[1].Stats().Conns >= 3 })
		if code, body := get(t, ready); probeOK(code) || strings.TrimSpace(body) != "racetls" {
			t.Errorf("readiness probe %s: %d %q, want a failure naming racetls alone", ready, code, body)
		}
		if code, body := get(t, live); !probeOK(code) {
			t.Errorf("liveness probe %s: %d %q, want a pass", live, code, body)
		}
		ext := new(dns.Msg)
		ext.SetQuestion("www.example.", dns.TypeA)
		if r := p.s.Exchange(t, ext, "udp"); r.Rcode != dns.RcodeServerFailure {
			t.Errorf("www.example A with no verified upstream: %s, want SERVFAIL", dns.RcodeToString[r.Rcode])
		}
	})

	t.Run("coredns ServiceAccount", func(t *testing.T) {
		t.Parallel()
		kd := newPorts(t)
		if err := ca.WriteFiles(kd.s.Dir); err != nil {
			t.Fatal(err)
		}
		kd.s.Run(t, kubeDNSCorefile(t, cp, kd, cp.ServiceAccountKubeconfig(t, kubeDNSNS, "coredns"), ups...))
		// The readiness probe the Deployment declares passes.
		d := one[*appsv1.Deployment](t, loadBundle(t, "kube-dns"))
		ready, _ := probeURLs(t, configMapText(t, "kube-dns"), kd, container(t, "kube-dns", d.Spec.Template.Spec.Containers, "coredns"))
		poll(t, "readiness probe passes", 30*time.Second, func() bool { code, _ := get(t, ready); return probeOK(code) })
		m := new(dns.Msg)
		m.SetQuestion("web.apps.svc.cluster.local.", dns.TypeA)
		if r := kd.s.Exchange(t, m, "udp"); !slices.Equal(kit.Answers(r, dns.TypeA), []string{web.Spec.ClusterIP}) {
			t.Errorf("kube-dns: web A: %v", r)
		}

		// The node cache, on its own ConfigMap's Corefile, forwarding the cluster's zones to
		// this kube-dns: every cluster answer below comes through both.
		nc := newPorts(t)
		nc.kubeDNS = kd.s.DNS
		if err := ca.WriteFiles(nc.s.Dir); err != nil {
			t.Fatal(err)
		}
		nc.s.Run(t, labUpstreams(t, rewriteConfigMap(t, configMapText(t, "node-cache"), nc), nc, ups))
		waitReady(t, nc.ready)
		// One query for a name nobody asked yet reaches kube-dns over TCP, not UDP (force_tcp).
		// Measured on a single query: kube-dns's own prefetches also count as requests.
		proto := func() (tcp, udp float64) {
			return kd.s.Metric(t, "coredns_dns_requests_total", map[string]string{"proto": "tcp"}),
				kd.s.Metric(t, "coredns_dns_requests_total", map[string]string{"proto": "udp"})
		}
		tcp0, udp0 := proto()
		probe := new(dns.Msg)
		probe.SetQuestion("tcp-probe.apps.svc.cluster.local.", dns.TypeA)
		if r := nc.s.Exchange(t, probe, "udp"); r.Rcode != dns.RcodeNameError {
			t.Errorf("node cache: tcp-probe A: %s, want NXDOMAIN from kube-dns", dns.RcodeToString[r.Rcode])
		}
		// kube-dns counts a request after it has written the reply: give it a moment.
		tcp1, udp1 := proto()
		for deadline := time.Now().Add(5 * time.Second); tcp1 == tcp0 && time.Now().Before(deadline); tcp1, udp1 = proto() {
			time.Sleep(20 * time.Millisecond)
		}
		if tcp1 != tcp0+1 || udp1 != udp0 {
			t.Errorf("kube-dns got %v TCP and %v UDP queries for one query to the node cache, want 1 and 0", tcp1-tcp0, udp1-udp0)
		}
		if r := exchangeUnix(t, nc.socket, m); !slices.Equal(kit.Answers(r, dns.TypeA), []string{web.Spec.ClusterIP}) {
			t.Errorf("node cache socket: web A: %v", r)
		}
		checkClusterAnswers(t, cp, nc.s.DNS, web, gone)
	})
}

// checkClusterAnswers checks a server whose cluster.local answers come, directly or through
// kube-dns, from cp: ClusterIP, headless, per-endpoint names, SRV, PTR, ExternalName (its
// target resolved through the cache and the lab upstream), a Service created now, and gone
// (asked once, so cached, then deleted) answering NXDOMAIN once the cached answer expires.
func checkClusterAnswers(t *testing.T, cp *controlplane.ControlPlane, addr string, web, gone *corev1.Service) {
	t.Helper()
	c := &dns.Client{Net: "udp", Timeout: 5 * time.Second}
	ask := func(name string, qtype uint16) *dns.Msg {
		t.Helper()
		m := new(dns.Msg)
		m.SetQuestion(name, qtype)
		r, _, err := c.Exchange(m, addr)
		if err != nil {
			t.Fatalf("%s %s: %v", name, dns.TypeToString[qtype], err)
		}
		return r
	}
	want := func(name string, qtype uint16, rcode int, rdata ...string) {
		t.Helper()
		r := ask(name, qtype)
		got := kit.Answers(r, qtype)
		sort.Strings(rdata)
		if r.Rcode != rcode || !slices.Equal(got, rdata) {
			t.Errorf("%s %s: %s %v, want %s %v", name, dns.TypeToString[qtype], dns.RcodeToString[r.Rcode], got, dns.RcodeToString[rcode], rdata)
		}
	}
	want("web.apps.svc.cluster.local.", dns.TypeA, dns.RcodeSuccess, web.Spec.ClusterIP)
	rev, _ := dns.ReverseAddr(web.Spec.ClusterIP)
	want(rev, dns.TypePTR, dns.RcodeSuccess, "web.apps.svc.cluster.local.")
	want("db.apps.svc.cluster.local.", dns.TypeA, dns.RcodeSuccess, "10.1.0.5", "10.1.0.6")
	want("primary.db.apps.svc.cluster.local.", dns.TypeA, dns.RcodeSuccess, "10.1.0.5")
	want("_pg._tcp.db.apps.svc.cluster.local.", dns.TypeSRV, dns.RcodeSuccess, "5432 10-1-0-6.db.apps.svc.cluster.local.", "5432 primary.db.apps.svc.cluster.local.")
	want("nosuch.apps.svc.cluster.local.", dns.TypeA, dns.RcodeNameError)
	r := ask("ext.apps.svc.cluster.local.", dns.TypeA)
	if cn := kit.Answers(r, dns.TypeCNAME); r.Rcode != dns.RcodeSuccess || !slices.Equal(cn, []string{"db.example.org."}) || len(kit.Answers(r, dns.TypeA)) == 0 {
		t.Errorf("ext A: want CNAME db.example.org. and its address from the upstream, have %v", r)
	}
	want("gone.apps.svc.cluster.local.", dns.TypeA, dns.RcodeSuccess, gone.Spec.ClusterIP)

	late := cp.ClusterIP(t, "apps", fmt.Sprintf("late-%d", time.Now().UnixNano()%100000))
	lateName := late.Name + ".apps.svc.cluster.local."
	// A first ask that reaches kube-dns before its watch delivers the Service is NXDOMAIN, and
	// cached as such (kube-dns and the node cache both run warmcache) for the denial TTL: on a
	// loaded machine the name can take that long to appear.
	poll(t, lateName+" appears", 75*time.Second, func() bool {
		return slices.Equal(kit.Answers(ask(lateName, dns.TypeA), dns.TypeA), []string{late.Spec.ClusterIP})
	})
	cp.DeleteService(t, "apps", "gone")
	// The positive answer is cached for the kubernetes plugin's ttl (30 s), by kube-dns and by
	// the node cache in front of it; after that the name is NXDOMAIN.
	poll(t, "gone NXDOMAIN after delete", 75*time.Second, func() bool {
		return ask("gone.apps.svc.cluster.local.", dns.TypeA).Rcode == dns.RcodeNameError
	})
}

func waitReady(t *testing.T, addr string) {
	t.Helper()
	poll(t, "/ready 200", 30*time.Second, func() bool {
		code, _ := get(t, "http://"+addr+"/ready")
		return code == http.StatusOK
	})
}

func poll(t *testing.T, what string, timeout time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %v", what, timeout)
		}
		time.Sleep(200 * time.Millisecond)
	}
}
