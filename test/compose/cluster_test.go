package compose

import (
	"flag"
	"regexp"
	"strings"
	"testing"

	"github.com/dnscache/dnscache/test/kit/controlplane"
)

// clusterFixture is the control plane the kubernetes cases share, with the objects they ask
// for (namespace apps):
//
//	web     ClusterIP Service, port 80/TCP "http"
//	db      headless Service with endpoints 10.1.0.5 and 10.1.0.6 (hostname b)
//	ext     ExternalName Service: a CNAME to www.example.com (the lab answers it)
//	client  Pod 10.1.0.7
//	local   Pod 127.0.0.1: the test's own address, so that autopath finds its search path
type clusterFixture struct {
	cp    *controlplane.ControlPlane
	ready chan struct{}
}

// start runs the control plane when a kubernetes case is selected, and releases those cases.
func (f *clusterFixture) start(t *testing.T) {
	defer close(f.ready)
	if !f.needed() {
		return
	}
	// Hold the servers' start lock: the control plane takes free ports too.
	var cp *controlplane.ControlPlane
	func() {
		startMu.Lock()
		defer startMu.Unlock() // also when Start fails the test
		cp = controlplane.Start(t)
	}()
	cp.Namespace(t, "apps", nil)
	cp.ClusterIP(t, "apps", "web")
	db := cp.Headless(t, "apps", "db")
	cp.EndpointSlice(t, db, controlplane.Endpoint{IP: "10.1.0.5"}, controlplane.Endpoint{IP: "10.1.0.6", Hostname: "b"})
	cp.ExternalName(t, "apps", "ext", "www.example.com")
	cp.Pod(t, "apps", "client", "10.1.0.7")
	cp.Pod(t, "apps", "local", "127.0.0.1")
	f.cp = cp
}

// needed reports whether -run selects a case that needs the control plane.
func (f *clusterFixture) needed() bool {
	run := ""
	if fl := flag.Lookup("test.run"); fl != nil {
		run = fl.Value.String()
	}
	parts := strings.SplitN(run, "/", 2)
	for _, c := range cases {
		if c.Needs != "kubernetes" {
			continue
		}
		if len(parts) < 2 {
			return true
		}
		if ok, _ := regexp.MatchString(parts[1], c.Name); ok {
			return true
		}
	}
	return false
}
