// Package controlplane runs a real Kubernetes control plane on loopback for tests: etcd from
// Debian (etcd-server) and kube-apiserver built from the Go module proxy at the release pinned
// in test/kit/controlplane/apiserver/go.mod, with kubectl built from the same release.
//
//	cp := controlplane.Start(t)               // etcd + kube-apiserver, stopped by t.Cleanup
//	cp.Kubectl(t, "get", "ns")                // bin/kubectl --kubeconfig cp.Kubeconfig get ns
//	cp.Client.CoreV1().Services("default")... // client-go, as the admin (system:masters)
//
//	cp.Namespace(t, "apps", nil)              // a namespace (and its "default" ServiceAccount)
//	svc := cp.ClusterIP(t, "apps", "web")     // a Service with a cluster IP, port 80/TCP "http"
//	cp.Headless(t, "apps", "db", Port("pg", 5432))
//	cp.ExternalName(t, "apps", "ext", "example.org")
//	cp.EndpointSlice(t, svc, Endpoint{IP: "10.1.0.5"}, Endpoint{IP: "10.1.0.6", Hostname: "b"})
//	cp.Pod(t, "apps", "client", "10.1.0.7") // a Pod whose status.podIP is set
//	kc := cp.ServiceAccountKubeconfig(t, "kube-system", "coredns") // authenticate as that SA
//
// What runs: one etcd (--data-dir in a temporary directory) and one kube-apiserver, each on
// free 127.0.0.1 ports, each stopped by its PID (SIGTERM, then SIGKILL) when the test ends;
// they also die with the test process (Pdeathsig). Start generates a CA, the API server's
// serving certificate, a service-account signing key pair and a static token file (an admin
// token in system:masters, and a token for "nobody", a user with no RBAC at all).
//
// The API server runs with RBAC authorization, the default admission plugins (PodSecurity and
// ServiceAccount included: Namespace creates the namespace's "default" ServiceAccount, as the
// controller manager would), a 10.96.0.0/12 service range (kubeadm's) and no controllers: no
// controller manager, no scheduler, no kubelet. So Deployments never get Pods, Services never
// get EndpointSlices by themselves (EndpointSlice creates them), Pods stay unscheduled (Pod
// writes status.podIP itself), and a deleted namespace stays Terminating. Service cluster IPs
// are allocated by the API server as in any cluster. Nothing is routed to those addresses.
//
// Binaries: see Binaries. The first build is slow (minutes); later ones reuse the Go build
// cache. Start takes a few seconds once built (about 4 s on 2 cores); one control plane
// uses about 340 MiB of RSS (kube-apiserver about 290, etcd about 45).
package controlplane

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/dnscache/dnscache/test/kit"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
)

// ControlPlane is a running etcd and kube-apiserver.
type ControlPlane struct {
	URL        string // https://127.0.0.1:PORT
	Kubeconfig string // an admin kubeconfig (bearer token in system:masters)
	CA         string // the CA certificate that signed the API server's certificate
	Dir        string // the temporary directory holding certificates, tokens and data
	Etcd       string // http://127.0.0.1:PORT

	// NobodyKubeconfig authenticates as the user "nobody", who has no RBAC binding: a negative
	// control for authorization checks.
	NobodyKubeconfig string

	Client *kubernetes.Clientset // as the admin
	Config *rest.Config          // the admin's client configuration

	kubectl string
	procs   []*kit.Process
}

// Start runs etcd and kube-apiserver and returns once /readyz answers 200 and the default
// namespace exists. Both are stopped when the test ends.
func Start(t testing.TB) *ControlPlane {
	t.Helper()
	apiserver, kubectl := Binaries(t)
	if _, err := exec.LookPath("etcd"); err != nil {
		t.Fatalf("etcd: %v (apt-get install etcd-server; scripts/deps.sh lists it)", err)
	}
	dir, err := os.MkdirTemp("", "dnscache-controlplane-")
	if err != nil {
		t.Fatal(err)
	}
	cp := &ControlPlane{Dir: dir, CA: filepath.Join(dir, "ca.crt"), kubectl: kubectl}
	t.Cleanup(func() {
		cp.stop()
		os.RemoveAll(dir)
	})
	p, err := writePKI(dir)
	if err != nil {
		t.Fatal(err)
	}

	etcdPort, peerPort, apiPort := kit.FreePort(t), kit.FreePort(t), kit.FreePort(t)
	cp.Etcd = "http://127.0.0.1:" + strconv.Itoa(etcdPort)
	peer := "http://127.0.0.1:" + strconv.Itoa(peerPort)
	etcd := cp.spawn(t, "etcd", "etcd",
		"--name=default",
		"--data-dir="+filepath.Join(dir, "etcd"),
		"--listen-client-urls="+cp.Etcd,
		"--advertise-client-urls="+cp.Etcd,
		"--listen-peer-urls="+peer,
		"--initial-advertise-peer-urls="+peer,
		"--initial-cluster=default="+peer,
		"--log-level=warn",
		"--logger=zap",
	)
	waitFor(t, etcd, 30*time.Second, func() bool {
		resp, err := http.Get(cp.Etcd + "/health")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	})

	cp.URL = "https://127.0.0.1:" + strconv.Itoa(apiPort)
	api := cp.spawn(t, "kube-apiserver", apiserver,
		"--etcd-servers="+cp.Etcd,
		"--bind-address=127.0.0.1",
		"--advertise-address=127.0.0.1",
		"--secure-port="+strconv.Itoa(apiPort),
		"--tls-cert-file="+p.cert,
		"--tls-private-key-file="+p.key,
		"--client-ca-file="+p.ca,
		"--cert-dir="+filepath.Join(dir, "certs"),
		"--token-auth-file="+p.tokens,
		"--service-account-issuer=https://kubernetes.default.svc.cluster.local",
		"--service-account-key-file="+p.saPub,
		"--service-account-signing-key-file="+p.saKey,
		"--authorization-mode=RBAC",
		"--service-cluster-ip-range=10.96.0.0/12",
		"--allow-privileged=true",
		// The lease reconciler would publish 127.0.0.1 as the kubernetes Service's endpoint,
		// which endpoint validation refuses (loopback); the Service is there without it.
		"--endpoint-reconciler-type=none",
		"--profiling=false",
		"--v=0",
	)
	pool := x509.NewCertPool()
	caPEM, err := os.ReadFile(p.ca)
	if err != nil {
		t.Fatal(err)
	}
	pool.AppendCertsFromPEM(caPEM)
	hc := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
	waitFor(t, api, 120*time.Second, func() bool {
		req, _ := http.NewRequest("GET", cp.URL+"/readyz", nil)
		req.Header.Set("Authorization", "Bearer "+p.adminToken)
		resp, err := hc.Do(req)
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	})

	cp.Kubeconfig = cp.WriteKubeconfig(t, "admin", p.adminToken)
	cp.NobodyKubeconfig = cp.WriteKubeconfig(t, "nobody", p.nobody)
	cp.Config = &rest.Config{Host: cp.URL, BearerToken: p.adminToken, TLSClientConfig: rest.TLSClientConfig{CAFile: p.ca}, QPS: 100, Burst: 200}
	cp.Client, err = kubernetes.NewForConfig(cp.Config)
	if err != nil {
		t.Fatal(err)
	}
	// The default namespace and its ServiceAccount, which the controller manager would create.
	ctx := context.Background()
	waitFor(t, api, 30*time.Second, func() bool {
		_, err := cp.Client.CoreV1().Namespaces().Get(ctx, "default", getOpts)
		return err == nil
	})
	cp.ensureDefaultServiceAccount(t, "default")
	cp.ensureDefaultServiceAccount(t, "kube-system")
	return cp
}

// WriteKubeconfig writes a kubeconfig that authenticates to this control plane with a bearer
// token, and returns its path. name only names the file and the context.
func (cp *ControlPlane) WriteKubeconfig(t testing.TB, name, token string) string {
	t.Helper()
	text := fmt.Sprintf(`apiVersion: v1
kind: Config
clusters:
- name: test
  cluster:
    server: %s
    certificate-authority: %s
users:
- name: %s
  user:
    token: %s
contexts:
- name: %s
  context:
    cluster: test
    user: %s
current-context: %s
`, cp.URL, cp.CA, name, token, name, name, name)
	f, err := os.CreateTemp(cp.Dir, "kubeconfig-"+name+"-*")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.WriteString(text); err != nil {
		t.Fatal(err)
	}
	return f.Name()
}

// Kubectl runs kubectl on the admin kubeconfig and returns its standard output. A non-zero
// exit fails the test, with both outputs.
func (cp *ControlPlane) Kubectl(t testing.TB, args ...string) string {
	t.Helper()
	out, errOut, err := cp.KubectlWith(cp.Kubeconfig, nil, args...)
	if err != nil {
		t.Fatalf("kubectl %s: %v\n%s%s", strings.Join(args, " "), err, out, errOut)
	}
	return out
}

// KubectlWith runs kubectl with the given kubeconfig (any file: an admin's, a
// ServiceAccount's, NobodyKubeconfig) and standard input (nil for none), and returns its
// standard output, standard error and exit error, for tests that expect a refusal.
func (cp *ControlPlane) KubectlWith(kubeconfig string, stdin []byte, args ...string) (stdout, stderr string, err error) {
	cmd := exec.Command(cp.kubectl, append([]string{"--kubeconfig", kubeconfig}, args...)...)
	cmd.Env = append(os.Environ(), "KUBECONFIG=", "HOME="+cp.Dir) // no cache or config from the user's ~/.kube
	if stdin != nil {
		cmd.Stdin = bytes.NewReader(stdin)
	}
	var o, e bytes.Buffer
	cmd.Stdout, cmd.Stderr = &o, &e
	err = cmd.Run()
	return o.String(), e.String(), err
}

func (cp *ControlPlane) spawn(t testing.TB, name, bin string, args ...string) *kit.Process {
	t.Helper()
	p, err := kit.StartProcess(name, cp.Dir, append([]string{bin}, args...)...)
	if err != nil {
		t.Fatal(err)
	}
	cp.procs = append(cp.procs, p)
	return p
}

// stop stops the API server, then etcd.
func (cp *ControlPlane) stop() {
	for i := len(cp.procs) - 1; i >= 0; i-- {
		cp.procs[i].Stop(10 * time.Second)
	}
}

// Log returns the last lines of kube-apiserver's output ("kube-apiserver") or etcd's ("etcd").
func (cp *ControlPlane) Log(name string) string {
	for _, p := range cp.procs {
		if p.Name == name {
			return p.Tail(40)
		}
	}
	return ""
}

// waitFor polls ok until it holds, failing the test when p exits or the timeout passes.
func waitFor(t testing.TB, p *kit.Process, timeout time.Duration, ok func() bool) {
	t.Helper()
	if err := p.Await(timeout, ok); err != nil {
		t.Fatal(err)
	}
}
