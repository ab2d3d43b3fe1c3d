package controlplane

import (
	"context"
	"testing"
	"time"

	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
)

var getOpts = metav1.GetOptions{}

// Port is a named TCP service port whose target port is the same number.
func Port(name string, port int32) corev1.ServicePort {
	return corev1.ServicePort{Name: name, Port: port, Protocol: corev1.ProtocolTCP, TargetPort: intstr.FromInt32(port)}
}

// UDPPort is a named UDP service port whose target port is the same number.
func UDPPort(name string, port int32) corev1.ServicePort {
	p := Port(name, port)
	p.Protocol = corev1.ProtocolUDP
	return p
}

// Namespace creates a namespace with the given labels (for instance
// "pod-security.kubernetes.io/enforce": "restricted") and its "default" ServiceAccount. An
// existing namespace gets the labels added.
func (cp *ControlPlane) Namespace(t testing.TB, name string, labels map[string]string) *corev1.Namespace {
	t.Helper()
	ctx := context.Background()
	ns, err := cp.Client.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name, Labels: labels}}, metav1.CreateOptions{})
	if apierrors.IsAlreadyExists(err) {
		ns, err = cp.Client.CoreV1().Namespaces().Get(ctx, name, getOpts)
		if err == nil && len(labels) > 0 {
			if ns.Labels == nil {
				ns.Labels = map[string]string{}
			}
			for k, v := range labels {
				ns.Labels[k] = v
			}
			ns, err = cp.Client.CoreV1().Namespaces().Update(ctx, ns, metav1.UpdateOptions{})
		}
	}
	if err != nil {
		t.Fatalf("namespace %s: %v", name, err)
	}
	cp.ensureDefaultServiceAccount(t, name)
	return ns
}

func (cp *ControlPlane) ensureDefaultServiceAccount(t testing.TB, ns string) {
	t.Helper()
	_, err := cp.Client.CoreV1().ServiceAccounts(ns).Create(context.Background(), &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: "default"}}, metav1.CreateOptions{})
	if err != nil && !apierrors.IsAlreadyExists(err) {
		t.Fatalf("ServiceAccount %s/default: %v", ns, err)
	}
}

// Service creates a Service as given (its namespace must exist) and returns it as stored, with
// the cluster IP the API server allocated.
func (cp *ControlPlane) Service(t testing.TB, svc *corev1.Service) *corev1.Service {
	t.Helper()
	out, err := cp.Client.CoreV1().Services(svc.Namespace).Create(context.Background(), svc, metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("service %s/%s: %v", svc.Namespace, svc.Name, err)
	}
	return out
}

func defaultPorts(ports []corev1.ServicePort) []corev1.ServicePort {
	if len(ports) == 0 {
		return []corev1.ServicePort{Port("http", 80)}
	}
	return ports
}

// ClusterIP creates a ClusterIP Service (port 80/TCP "http" when no port is given), selecting
// the label app=NAME.
func (cp *ControlPlane) ClusterIP(t testing.TB, ns, name string, ports ...corev1.ServicePort) *corev1.Service {
	t.Helper()
	return cp.Service(t, &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
		Spec:       corev1.ServiceSpec{Type: corev1.ServiceTypeClusterIP, Selector: map[string]string{"app": name}, Ports: defaultPorts(ports)},
	})
}

// Headless creates a headless Service (clusterIP: None; port 80/TCP "http" when no port is
// given), selecting the label app=NAME. Its names answer with the addresses of the
// EndpointSlices made for it (EndpointSlice).
func (cp *ControlPlane) Headless(t testing.TB, ns, name string, ports ...corev1.ServicePort) *corev1.Service {
	t.Helper()
	return cp.Service(t, &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
		Spec:       corev1.ServiceSpec{Type: corev1.ServiceTypeClusterIP, ClusterIP: corev1.ClusterIPNone, Selector: map[string]string{"app": name}, Ports: defaultPorts(ports)},
	})
}

// ExternalName creates an ExternalName Service: its name is a CNAME to target.
func (cp *ControlPlane) ExternalName(t testing.TB, ns, name, target string) *corev1.Service {
	t.Helper()
	return cp.Service(t, &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
		Spec:       corev1.ServiceSpec{Type: corev1.ServiceTypeExternalName, ExternalName: target},
	})
}

// DeleteService deletes a Service (it is gone at once: Services have no finalizer here).
func (cp *ControlPlane) DeleteService(t testing.TB, ns, name string) {
	t.Helper()
	if err := cp.Client.CoreV1().Services(ns).Delete(context.Background(), name, metav1.DeleteOptions{}); err != nil {
		t.Fatalf("delete service %s/%s: %v", ns, name, err)
	}
}

// Endpoint is one address of an EndpointSlice. Hostname, when set, gives it a name of its own
// under a headless Service (HOSTNAME.SERVICE.NS.svc.cluster.local). NotReady marks it not
// ready (the kubernetes plugin leaves such addresses out).
type Endpoint struct {
	IP       string
	Hostname string
	NotReady bool
}

// EndpointSlice creates an IPv4 EndpointSlice for svc (labelled
// kubernetes.io/service-name, as the EndpointSlice controller does), with svc's ports (their
// target port numbers) and the given endpoints, and returns it as stored.
func (cp *ControlPlane) EndpointSlice(t testing.TB, svc *corev1.Service, endpoints ...Endpoint) *discoveryv1.EndpointSlice {
	t.Helper()
	es := &discoveryv1.EndpointSlice{
		ObjectMeta: metav1.ObjectMeta{
			Namespace:    svc.Namespace,
			GenerateName: svc.Name + "-",
			Labels:       map[string]string{discoveryv1.LabelServiceName: svc.Name, discoveryv1.LabelManagedBy: "dnscache-test"},
		},
		AddressType: discoveryv1.AddressTypeIPv4,
	}
	for _, p := range svc.Spec.Ports {
		name, proto, port := p.Name, p.Protocol, p.TargetPort.IntVal
		if port == 0 {
			port = p.Port
		}
		es.Ports = append(es.Ports, discoveryv1.EndpointPort{Name: &name, Protocol: &proto, Port: &port})
	}
	for _, e := range endpoints {
		ready := !e.NotReady
		ep := discoveryv1.Endpoint{Addresses: []string{e.IP}, Conditions: discoveryv1.EndpointConditions{Ready: &ready}}
		if e.Hostname != "" {
			h := e.Hostname
			ep.Hostname = &h
		}
		es.Endpoints = append(es.Endpoints, ep)
	}
	out, err := cp.Client.DiscoveryV1().EndpointSlices(svc.Namespace).Create(context.Background(), es, metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("EndpointSlice for %s/%s: %v", svc.Namespace, svc.Name, err)
	}
	return out
}

// Pod creates a Pod (one container, image "registry.invalid/pause", never run: there is no
// kubelet) and, when ip is not empty, writes status.podIP and status.podIPs = [ip] as a
// kubelet would. It returns the Pod as stored.
func (cp *ControlPlane) Pod(t testing.TB, ns, name, ip string) *corev1.Pod {
	t.Helper()
	ctx := context.Background()
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name, Labels: map[string]string{"app": name}},
		Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "main", Image: "registry.invalid/pause"}}},
	}
	out, err := cp.Client.CoreV1().Pods(ns).Create(ctx, pod, metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("pod %s/%s: %v", ns, name, err)
	}
	if ip == "" {
		return out
	}
	out.Status.Phase = corev1.PodRunning
	out.Status.PodIP = ip
	out.Status.PodIPs = []corev1.PodIP{{IP: ip}}
	out, err = cp.Client.CoreV1().Pods(ns).UpdateStatus(ctx, out, metav1.UpdateOptions{})
	if err != nil {
		t.Fatalf("pod %s/%s status: %v", ns, name, err)
	}
	return out
}

// ServiceAccountToken returns a bearer token for the ServiceAccount ns/name (which must
// exist), from the TokenRequest API as a kubelet gets one for a pod, valid for an hour.
func (cp *ControlPlane) ServiceAccountToken(t testing.TB, ns, name string) string {
	t.Helper()
	secs := int64(time.Hour / time.Second)
	tr, err := cp.Client.CoreV1().ServiceAccounts(ns).CreateToken(context.Background(), name,
		&authenticationv1.TokenRequest{Spec: authenticationv1.TokenRequestSpec{ExpirationSeconds: &secs}}, metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("token for ServiceAccount %s/%s: %v", ns, name, err)
	}
	return tr.Status.Token
}

// ServiceAccountKubeconfig writes a kubeconfig that authenticates as the ServiceAccount
// ns/name (see ServiceAccountToken) and returns its path: what a pod running under that
// ServiceAccount would present, so RBAC decides what it may read.
func (cp *ControlPlane) ServiceAccountKubeconfig(t testing.TB, ns, name string) string {
	t.Helper()
	return cp.WriteKubeconfig(t, "sa-"+ns+"-"+name, cp.ServiceAccountToken(t, ns, name))
}
