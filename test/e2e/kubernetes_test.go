package e2e

import (
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/dnscache/dnscache/test/kit"
	"github.com/dnscache/dnscache/test/kit/controlplane"

	"github.com/miekg/dns"
)

// TestKubernetesLiveObjects runs bin/coredns's kubernetes plugin against a real kube-apiserver
// (test/kit/controlplane) and checks its answers against the objects there: a ClusterIP
// Service's A record and PTR, a headless Service's endpoints (A, per-endpoint name, SRV), an
// ExternalName's CNAME, `pods verified` answering for a Pod's IP and NXDOMAIN for an IP no Pod
// has, a Service created after start, and NXDOMAIN for a Service once it is deleted.
func TestKubernetesLiveObjects(t *testing.T) {
	cp := controlplane.Start(t)
	cp.Namespace(t, "apps", nil)
	web := cp.ClusterIP(t, "apps", "web")
	db := cp.Headless(t, "apps", "db", controlplane.Port("pg", 5432))
	cp.EndpointSlice(t, db, controlplane.Endpoint{IP: "10.1.0.5", Hostname: "primary"}, controlplane.Endpoint{IP: "10.1.0.6"},
		controlplane.Endpoint{IP: "10.1.0.9", NotReady: true})
	cp.ExternalName(t, "apps", "ext", "db.example.org")
	cp.Pod(t, "apps", "client", "10.1.0.7")

	s := kit.Start(t, `.:{{.Port}} {
    bind 127.0.0.1
    {{.Std}}
    kubernetes cluster.local in-addr.arpa ip6.arpa {
        endpoint `+cp.URL+`
        kubeconfig `+cp.Kubeconfig+`
        pods verified
        fallthrough in-addr.arpa ip6.arpa
        ttl 30
    }
}
`)
	ask := func(name string, qtype uint16) *dns.Msg {
		m := new(dns.Msg)
		m.SetQuestion(name, qtype)
		return s.Exchange(t, m, "udp")
	}
	want := func(name string, qtype uint16, rcode int, rdata ...string) {
		t.Helper()
		r := ask(name, qtype)
		got := kit.Answers(r, qtype)
		sort.Strings(rdata)
		if r.Rcode != rcode || strings.Join(got, " ") != strings.Join(rdata, " ") {
			t.Errorf("%s %s: %s %v, want %s %v\n%v", name, dns.TypeToString[qtype], dns.RcodeToString[r.Rcode], got, dns.RcodeToString[rcode], rdata, r)
		}
	}

	want("web.apps.svc.cluster.local.", dns.TypeA, dns.RcodeSuccess, web.Spec.ClusterIP)
	rev, err := dns.ReverseAddr(web.Spec.ClusterIP)
	if err != nil {
		t.Fatal(err)
	}
	want(rev, dns.TypePTR, dns.RcodeSuccess, "web.apps.svc.cluster.local.")
	want("db.apps.svc.cluster.local.", dns.TypeA, dns.RcodeSuccess, "10.1.0.5", "10.1.0.6") // not the not-ready 10.1.0.9
	want("primary.db.apps.svc.cluster.local.", dns.TypeA, dns.RcodeSuccess, "10.1.0.5")
	want("_pg._tcp.db.apps.svc.cluster.local.", dns.TypeSRV, dns.RcodeSuccess,
		"5432 primary.db.apps.svc.cluster.local.", "5432 10-1-0-6.db.apps.svc.cluster.local.")
	want("ext.apps.svc.cluster.local.", dns.TypeCNAME, dns.RcodeSuccess, "db.example.org.")
	want("10-1-0-7.apps.pod.cluster.local.", dns.TypeA, dns.RcodeSuccess, "10.1.0.7")
	want("10-1-0-99.apps.pod.cluster.local.", dns.TypeA, dns.RcodeNameError) // no pod has it: verified
	want("nosuch.apps.svc.cluster.local.", dns.TypeA, dns.RcodeNameError)

	// A real client sees the same.
	if out := s.Kdig(t, "+short", "web.apps.svc.cluster.local", "A"); strings.TrimSpace(out) != web.Spec.ClusterIP {
		t.Errorf("kdig web: %q, want %s", out, web.Spec.ClusterIP)
	}

	// Changes arrive through the watch.
	late := cp.ClusterIP(t, "apps", "late")
	k8sEventually(t, "late.apps.svc.cluster.local A", func() bool {
		return strings.Join(kit.Answers(ask("late.apps.svc.cluster.local.", dns.TypeA), dns.TypeA), "") == late.Spec.ClusterIP
	})
	cp.DeleteService(t, "apps", "web")
	k8sEventually(t, "web.apps.svc.cluster.local NXDOMAIN after delete", func() bool {
		return ask("web.apps.svc.cluster.local.", dns.TypeA).Rcode == dns.RcodeNameError
	})
}

// k8sEventually polls cond every 100 ms for up to 15 s.
func k8sEventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not after 15s", what)
		}
		time.Sleep(100 * time.Millisecond)
	}
}
