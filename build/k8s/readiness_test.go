package k8s

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/dnscache/dnscache/test/lab"

	"github.com/miekg/dns"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
)

// probeURLs returns the URLs, on the rewritten Corefile's addresses (see rewriteConfigMap),
// that the kubelet would probe for c's readinessProbe and livenessProbe, after checking that
// the probes' ports are the production Corefile's ready and health ports.
func probeURLs(t *testing.T, corefile string, p *ports, c *corev1.Container) (ready, live string) {
	t.Helper()
	rp, lp := c.ReadinessProbe, c.LivenessProbe
	if rp == nil || rp.HTTPGet == nil || lp == nil || lp.HTTPGet == nil {
		t.Fatalf("container %s: want httpGet readiness and liveness probes", c.Name)
	}
	if !strings.Contains(corefile, fmt.Sprintf("ready :%d\n", rp.HTTPGet.Port.IntValue())) {
		t.Fatalf("container %s: the readiness probe's port %s is not the Corefile's ready port", c.Name, rp.HTTPGet.Port.String())
	}
	if !strings.Contains(corefile, fmt.Sprintf("health :%d {", lp.HTTPGet.Port.IntValue())) {
		t.Fatalf("container %s: the liveness probe's port %s is not the Corefile's health port", c.Name, lp.HTTPGet.Port.String())
	}
	return "http://" + p.ready + rp.HTTPGet.Path, "http://" + p.health + lp.HTTPGet.Path
}

// probeOK is the kubelet's verdict on an HTTP probe's status code.
func probeOK(code int) bool { return code >= 200 && code < 400 }

// TestReadinessTellsTheTruth runs bin/coredns on the node cache's ConfigMap with racetls racing
// lab DoT upstreams, and probes it where the DaemonSet's readinessProbe and livenessProbe
// point. With the upstreams under a wrong certificate name every handshake fails: the
// readiness probe fails (503, naming racetls) for as long as that lasts, while the liveness
// probe passes (the pod is not restarted) and external names get SERVFAIL; a rollout of
// such a configuration never gets a ready pod. With the right name the readiness probe passes.
// The kube-dns Deployment's probes are checked the same way on the control plane (see
// checkKubeDNSAnswers).
func TestReadinessTellsTheTruth(t *testing.T) {
	b := loadBundle(t, "node-cache")
	c := container(t, "node-cache", one[*appsv1.DaemonSet](t, b).Spec.Template.Spec.Containers, "coredns")
	ca, err := lab.NewCA()
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ name, certName string }{{"right certificate name", ""}, {"wrong certificate name", "wrong.example"}} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			// Two upstreams: the Corefile races 2.
			ups := []*lab.Upstream{lab.StartTest(t, lab.Config{CA: ca}), lab.StartTest(t, lab.Config{CA: ca})}
			p := newPorts(t)
			if err := ca.WriteFiles(p.s.Dir); err != nil {
				t.Fatal(err)
			}
			cf := configMapText(t, "node-cache")
			ready, live := probeURLs(t, cf, p, c)
			p.s.Run(t, labUpstreamsNamed(t, rewriteConfigMap(t, cf, p), p, ups, tc.certName))
			m := new(dns.Msg)
			m.SetQuestion("www.example.", dns.TypeA)
			if tc.certName == "" {
				poll(t, "readiness probe passes", 30*time.Second, func() bool { code, _ := get(t, ready); return probeOK(code) })
				if r := p.s.Exchange(t, m, "udp"); r.Rcode != dns.RcodeSuccess {
					t.Errorf("www.example A: %s, want NOERROR", dns.RcodeToString[r.Rcode])
				}
				return
			}
			// Each upstream has been dialled three times (each handshake refused by racetls's
			// verification).
			poll(t, "three dials each", 30*time.Second, func() bool { return ups[0].Stats().Conns >= 3 && ups[1].Stats().Conns >= 3 })
			if code, body := get(t, ready); probeOK(code) || strings.TrimSpace(body) != "racetls" {
				t.Errorf("readiness probe %s with a wrong certificate name: %d %q, want a failure naming racetls", ready, code, body)
			}
			if code, body := get(t, live); !probeOK(code) {
				t.Errorf("liveness probe %s: %d %q, want a pass (the pod is not broken, its upstreams are)", live, code, body)
			}
			if r := p.s.Exchange(t, m, "udp"); r.Rcode != dns.RcodeServerFailure {
				t.Errorf("www.example A with no verified upstream: %s, want SERVFAIL", dns.RcodeToString[r.Rcode])
			}
			if !strings.Contains(p.s.Log(), "wrong.example") {
				t.Errorf("the log does not name the certificate name that failed:\n%s", p.s.Log())
			}
		})
	}
}

// TestRolloutHolds checks what makes a rollout whose pods never get ready hold instead of
// taking kube-dns down: the Deployment's new pods must pass the readiness probe (on racetls's
// truthful /ready, TestReadinessTellsTheTruth) before old ones go, and the rolling update may
// take down fewer pods than there are, so old pods keep serving while new ones stay unready.
func TestRolloutHolds(t *testing.T) {
	d := one[*appsv1.Deployment](t, loadBundle(t, "kube-dns"))
	c := container(t, "kube-dns", d.Spec.Template.Spec.Containers, "coredns")
	checkProbe(t, "kube-dns readiness", c.ReadinessProbe, "/ready", 8181)
	if d.Spec.Replicas == nil || *d.Spec.Replicas < 2 {
		t.Fatalf("kube-dns: %v replicas, want at least 2", d.Spec.Replicas)
	}
	replicas := int(*d.Spec.Replicas)
	ru := d.Spec.Strategy.RollingUpdate
	if d.Spec.Strategy.Type != appsv1.RollingUpdateDeploymentStrategyType || ru == nil || ru.MaxUnavailable == nil {
		t.Fatalf("kube-dns: strategy %+v, want RollingUpdate with maxUnavailable", d.Spec.Strategy)
	}
	// The Deployment controller rounds maxUnavailable down.
	down, err := intstr.GetScaledValueFromIntOrPercent(ru.MaxUnavailable, replicas, false)
	if err != nil {
		t.Fatal(err)
	}
	if replicas-down < 1 {
		t.Errorf("kube-dns: maxUnavailable %s of %d replicas lets a rollout take every old pod down", ru.MaxUnavailable.String(), replicas)
	}
}
