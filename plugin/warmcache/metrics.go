package warmcache

import (
	"sync"
	"sync/atomic"

	"github.com/coredns/coredns/plugin"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
)

const subsystem = "warmcache"

var (
	hitsCount = promauto.NewCounterVec(prometheus.CounterOpts{
		Namespace: plugin.Namespace, Subsystem: subsystem, Name: "hits_total",
		Help: "Requests answered from the cache, stale answers included.",
	}, []string{"server"})
	missesCount = promauto.NewCounterVec(prometheus.CounterOpts{
		Namespace: plugin.Namespace, Subsystem: subsystem, Name: "misses_total",
		Help: "Requests that found no usable entry.",
	}, []string{"server"})
	coalescedCount = promauto.NewCounterVec(prometheus.CounterOpts{
		Namespace: plugin.Namespace, Subsystem: subsystem, Name: "coalesced_total",
		Help: "Misses that waited for a query already in flight instead of sending their own.",
	}, []string{"server"})
	prefetchCount = promauto.NewCounterVec(prometheus.CounterOpts{
		Namespace: plugin.Namespace, Subsystem: subsystem, Name: "prefetch_total",
		Help: "Refreshes of popular entries by the sweeper, by result (ok or failed).",
	}, []string{"server", "result"})
	prunedCount = promauto.NewCounterVec(prometheus.CounterOpts{
		Namespace: plugin.Namespace, Subsystem: subsystem, Name: "pruned_total",
		Help: "Expired entries removed by the sweeper.",
	}, []string{"server"})
	evictionsCount = promauto.NewCounterVec(prometheus.CounterOpts{
		Namespace: plugin.Namespace, Subsystem: subsystem, Name: "evictions_total",
		Help: "Entries removed to stay within the entry and byte bounds.",
	}, []string{"server"})
	staleCount = promauto.NewCounterVec(prometheus.CounterOpts{
		Namespace: plugin.Namespace, Subsystem: subsystem, Name: "stale_total",
		Help: "Stale answers served because the upstream failed (RFC 8767).",
	}, []string{"server"})
	entriesGauge = promauto.NewGaugeVec(prometheus.GaugeOpts{
		Namespace: plugin.Namespace, Subsystem: subsystem, Name: "entries",
		Help: "Entries in the cache.",
	}, []string{"server"})
	bytesGauge = promauto.NewGaugeVec(prometheus.GaugeOpts{
		Namespace: plugin.Namespace, Subsystem: subsystem, Name: "bytes",
		Help: "Memory held by the cache's entries: payload blocks with their size-class slack, records and index tables (what max_bytes bounds).",
	}, []string{"server"})
)

// serverMetrics holds one server's metric children, looked up once instead of per request.
type serverMetrics struct {
	server                                     string
	hits, misses, coalesced, pruned, evictions prometheus.Counter
	stale, prefetchOK, prefetchFailed          prometheus.Counter
	entries, bytes                             prometheus.Gauge
}

func newServerMetrics(server string) *serverMetrics {
	return &serverMetrics{
		server:         server,
		hits:           hitsCount.WithLabelValues(server),
		misses:         missesCount.WithLabelValues(server),
		coalesced:      coalescedCount.WithLabelValues(server),
		pruned:         prunedCount.WithLabelValues(server),
		evictions:      evictionsCount.WithLabelValues(server),
		stale:          staleCount.WithLabelValues(server),
		prefetchOK:     prefetchCount.WithLabelValues(server, "ok"),
		prefetchFailed: prefetchCount.WithLabelValues(server, "failed"),
		entries:        entriesGauge.WithLabelValues(server),
		bytes:          bytesGauge.WithLabelValues(server),
	}
}

// metricSet caches serverMetrics per server label. A plugin instance normally serves one
// server, so the last one used is checked first with a single atomic load.
type metricSet struct {
	last atomic.Pointer[serverMetrics]
	all  sync.Map // server -> *serverMetrics
}

func (ms *metricSet) get(server string) *serverMetrics {
	if m := ms.last.Load(); m != nil && m.server == server {
		return m
	}
	v, ok := ms.all.Load(server)
	if !ok {
		v, _ = ms.all.LoadOrStore(server, newServerMetrics(server))
	}
	m := v.(*serverMetrics)
	ms.last.Store(m)
	return m
}

// current returns the metrics of the server seen last, for work done off the request path.
func (ms *metricSet) current() *serverMetrics {
	if m := ms.last.Load(); m != nil {
		return m
	}
	return ms.get("")
}
