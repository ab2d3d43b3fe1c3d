package unixsock

import (
	"github.com/coredns/coredns/plugin"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
)

var (
	connections = promauto.NewGaugeVec(prometheus.GaugeOpts{
		Namespace: plugin.Namespace,
		Subsystem: name,
		Name:      "connections",
		Help:      "Gauge of open connections on the socket.",
	}, []string{"server"})

	connectionsTotal = promauto.NewCounterVec(prometheus.CounterOpts{
		Namespace: plugin.Namespace,
		Subsystem: name,
		Name:      "connections_total",
		Help:      "Counter of connections accepted on the socket, including those closed at once by max_connections or max_connections_per_uid.",
	}, []string{"server"})

	requestsTotal = promauto.NewCounterVec(prometheus.CounterOpts{
		Namespace: plugin.Namespace,
		Subsystem: name,
		Name:      "requests_total",
		Help:      "Counter of DNS messages read from the socket and dispatched to the server block.",
	}, []string{"server"})

	writesTotal = promauto.NewCounterVec(prometheus.CounterOpts{
		Namespace: plugin.Namespace,
		Subsystem: name,
		Name:      "writes_total",
		Help:      "Counter of writes of replies to the socket's connections; replies written together count once.",
	}, []string{"server"})

	// errorsCount counts by kind: accept, max_connections, max_connections_per_uid, zero_frame,
	// short_frame, read, read_timeout, formerr, notimp, ignored, write, peer_closed, shutdown.
	errorsCount = promauto.NewCounterVec(prometheus.CounterOpts{
		Namespace: plugin.Namespace,
		Subsystem: name,
		Name:      "errors_total",
		Help:      "Counter of errors on the socket by kind.",
	}, []string{"server", "kind"})
)
