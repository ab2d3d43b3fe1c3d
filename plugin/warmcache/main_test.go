package warmcache

import (
	"testing"

	clog "github.com/coredns/coredns/plugin/pkg/log"

	"go.uber.org/goleak"
)

func init() { clog.Discard() }

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m,
		// Started once by packages we import (prometheus, glog-style flushers), not by tests.
		goleak.IgnoreTopFunction("github.com/coredns/coredns/plugin/pkg/log.(*P).Warning"),
		// forward's Proxy.Stop leaves the connection manager to a finalizer (CoreDNS v1.15.0).
		goleak.IgnoreTopFunction("github.com/coredns/coredns/plugin/pkg/proxy.(*Transport).connManager"),
	)
}
