package frontdoor

import (
	"github.com/coredns/coredns/plugin"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
)

var (
	hitsCount = promauto.NewCounterVec(prometheus.CounterOpts{
		Namespace: plugin.Namespace, Subsystem: "frontdoor", Name: "hits_total",
		Help: "UDP queries answered from the cache by the front door, without the chain.",
	}, []string{"server"})
	passedCount = promauto.NewCounterVec(prometheus.CounterOpts{
		Namespace: plugin.Namespace, Subsystem: "frontdoor", Name: "passed_total",
		Help: "UDP datagrams the front door handed to the server: misses, and anything not a plain query.",
	}, []string{"server"})
)

// HitsCounter returns the hits counter of server, for a front door outside this package
// (the socket's).
func HitsCounter(server string) prometheus.Counter { return hitsCount.WithLabelValues(server) }
