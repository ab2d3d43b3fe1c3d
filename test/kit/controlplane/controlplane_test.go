package controlplane

import (
	"context"
	"net"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// TestControlPlane starts the fixture and checks what the package doc promises: kubectl and the
// client reach it, the static tokens authenticate (admin) and RBAC refuses a user without a
// binding, Services get cluster IPs from 10.96.0.0/12, the object helpers create what they
// say, a ServiceAccount token authenticates as that ServiceAccount, and both processes are gone
// after the control plane is stopped.
func TestControlPlane(t *testing.T) {
	cp := Start(t)

	out := cp.Kubectl(t, "get", "ns", "-o", "name")
	for _, ns := range []string{"namespace/default", "namespace/kube-system"} {
		if !strings.Contains(out, ns) {
			t.Errorf("kubectl get ns: no %s in\n%s", ns, out)
		}
	}

	_, errOut, err := cp.KubectlWith(cp.NobodyKubeconfig, nil, "get", "services", "-A")
	if err == nil || !strings.Contains(errOut, "forbidden") {
		t.Errorf("nobody listed services: err=%v\n%s", err, errOut)
	}

	cp.Namespace(t, "apps", map[string]string{"pod-security.kubernetes.io/enforce": "baseline"})
	svc := cp.ClusterIP(t, "apps", "web")
	ip := net.ParseIP(svc.Spec.ClusterIP)
	_, svcNet, _ := net.ParseCIDR("10.96.0.0/12")
	if ip == nil || !svcNet.Contains(ip) {
		t.Errorf("cluster IP %q not in %v", svc.Spec.ClusterIP, svcNet)
	}
	hl := cp.Headless(t, "apps", "db", Port("pg", 5432))
	if hl.Spec.ClusterIP != corev1.ClusterIPNone {
		t.Errorf("headless service has cluster IP %q", hl.Spec.ClusterIP)
	}
	es := cp.EndpointSlice(t, hl, Endpoint{IP: "10.1.0.5", Hostname: "a"}, Endpoint{IP: "10.1.0.6"})
	if len(es.Endpoints) != 2 || *es.Ports[0].Port != 5432 {
		t.Errorf("EndpointSlice: %+v", es)
	}
	ext := cp.ExternalName(t, "apps", "ext", "example.org")
	if ext.Spec.ExternalName != "example.org" {
		t.Errorf("ExternalName: %+v", ext.Spec)
	}
	pod := cp.Pod(t, "apps", "client", "10.1.0.7")
	if pod.Status.PodIP != "10.1.0.7" {
		t.Errorf("pod IP %q", pod.Status.PodIP)
	}
	cp.DeleteService(t, "apps", "web")
	if _, err := cp.Client.CoreV1().Services("apps").Get(context.Background(), "web", metav1.GetOptions{}); err == nil {
		t.Error("deleted service still there")
	}

	// PodSecurity: baseline refuses a hostPath volume.
	podYAML := `apiVersion: v1
kind: Pod
metadata: {name: hostpath, namespace: apps}
spec:
  containers: [{name: main, image: registry.invalid/pause}]
  volumes: [{name: h, hostPath: {path: /run}}]
`
	_, errOut, err = cp.KubectlWith(cp.Kubeconfig, []byte(podYAML), "apply", "--dry-run=server", "-f", "-")
	if err == nil || !strings.Contains(errOut, "violates PodSecurity") {
		t.Errorf("hostPath pod admitted under baseline: err=%v\n%s", err, errOut)
	}

	// A ServiceAccount's token authenticates as it; without a binding it may read nothing.
	kc := cp.ServiceAccountKubeconfig(t, "apps", "default")
	who := func() string {
		out, errOut, err := cp.KubectlWith(kc, nil, "auth", "whoami", "-o", "jsonpath={.status.userInfo.username}")
		if err != nil {
			t.Fatalf("auth whoami: %v\n%s", err, errOut)
		}
		return out
	}()
	if who != "system:serviceaccount:apps:default" {
		t.Errorf("whoami = %q", who)
	}
	if _, _, err := cp.KubectlWith(kc, nil, "get", "pods", "-n", "apps"); err == nil {
		t.Error("a ServiceAccount without RBAC listed pods")
	}

	for _, p := range cp.procs {
		if rss, err := p.RSS(); err == nil {
			t.Logf("%s VmRSS: %d kB", p.Name, rss/1024)
		}
	}
	cp.stop()
	for _, p := range cp.procs {
		if exited, _ := p.Exited(); !exited {
			t.Errorf("%s (pid %d) still running after stop", p.Name, p.PID())
		}
	}
}
