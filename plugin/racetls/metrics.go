package racetls

import (
	"time"

	"github.com/coredns/coredns/plugin"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
)

// Variables declared for monitoring. Every series carries the server of the request
// (server), the upstream (to) and its transport: tls, quic, https or dns.
var (
	queryCount = promauto.NewCounterVec(prometheus.CounterOpts{
		Namespace: plugin.Namespace,
		Subsystem: "racetls",
		Name:      "queries_total",
		Help:      "Counter of client queries sent to each upstream (keepalive probes excluded).",
	}, []string{"server", "to", "transport"})

	winCount = promauto.NewCounterVec(prometheus.CounterOpts{
		Namespace: plugin.Namespace,
		Subsystem: "racetls",
		Name:      "wins_total",
		Help:      "Counter of races won by each upstream.",
	}, []string{"server", "to", "transport"})

	lateCount = promauto.NewCounterVec(prometheus.CounterOpts{
		Namespace: plugin.Namespace,
		Subsystem: "racetls",
		Name:      "late_replies_total",
		Help:      "Counter of replies read after their race was decided; they are dropped.",
	}, []string{"server", "to", "transport"})

	errorCount = promauto.NewCounterVec(prometheus.CounterOpts{
		Namespace: plugin.Namespace,
		Subsystem: "racetls",
		Name:      "errors_total",
		Help:      "Counter of failed replies and errors per upstream, by kind.",
	}, []string{"server", "to", "transport", "kind"})

	replyDuration = promauto.NewHistogramVec(prometheus.HistogramOpts{
		Namespace:                   plugin.Namespace,
		Subsystem:                   "racetls",
		Name:                        "reply_duration_seconds",
		Buckets:                     plugin.TimeBuckets,
		NativeHistogramBucketFactor: plugin.NativeHistogramBucketFactor,
		Help:                        "Histogram of the time from sending a query to reading its reply, for every reply (winners, losers, late).",
	}, []string{"server", "to", "transport"})

	reconnectCount = promauto.NewCounterVec(prometheus.CounterOpts{
		Namespace: plugin.Namespace,
		Subsystem: "racetls",
		Name:      "reconnects_total",
		Help:      "Counter of connections re-established after a connection to the upstream was lost.",
	}, []string{"server", "to", "transport"})

	handshakeCount = promauto.NewCounterVec(prometheus.CounterOpts{
		Namespace: plugin.Namespace,
		Subsystem: "racetls",
		Name:      "handshakes_total",
		Help:      "Counter of completed TLS handshakes, by whether the session was resumed.",
	}, []string{"server", "to", "transport", "resumed"})

	earlyCount = promauto.NewCounterVec(prometheus.CounterOpts{
		Namespace: plugin.Namespace,
		Subsystem: "racetls",
		Name:      "early_data_total",
		Help:      "Counter of resumed QUIC handshakes whose first queries went out as 0-RTT early data.",
	}, []string{"server", "to", "transport"})

	inflightGauge = promauto.NewGaugeVec(prometheus.GaugeOpts{
		Namespace: plugin.Namespace,
		Subsystem: "racetls",
		Name:      "inflight",
		Help:      "Gauge of queries written to the upstream and not yet answered or expired.",
	}, []string{"server", "to", "transport"})

	connGauge = promauto.NewGaugeVec(prometheus.GaugeOpts{
		Namespace: plugin.Namespace,
		Subsystem: "racetls",
		Name:      "conns",
		Help:      "Gauge of open connections to the upstream (for UDP: socket sets).",
	}, []string{"server", "to", "transport"})
)

// Error kinds, the values of errors_total's kind label.
const (
	kindServfail = "servfail"   // RCODE SERVFAIL
	kindRefused  = "refused"    // RCODE REFUSED
	kindFormerr  = "formerr"    // RCODE FORMERR
	kindRcode    = "rcode"      // any other failure RCODE (NOTIMP, ...)
	kindMismatch = "mismatch"   // a reply whose question is not the query's
	kindUnknown  = "unknown_id" // a reply with an ID that is not outstanding
	kindGarbage  = "garbage"    // unparsable bytes: the connection is dropped
	kindTimeout  = "timeout"    // no reply before the query's deadline
	kindConn     = "conn"       // the connection broke and the query could not be re-sent in time
	kindHalfOpen = "halfopen"   // nothing read for a whole timeout while queries were outstanding
	kindDown     = "down"       // no connection: the upstream could not be dialled
	kindBusy     = "busy"       // every connection at max_inflight and max_conns reached
	kindDial     = "dial"       // a failed dial or TLS handshake
	kindReset    = "reset"      // a QUIC stream reset or an HTTP/2 stream error under one query
	kindHTTP     = "http"       // a DoH reply with an HTTP status other than 200 or a wrong content type
)

// counters holds one upstream's metric children for one server label, resolved
// once per label so that the query path does no label lookups, and the upstream's
// tally behind the stats table (nil when the table is off: no work per reply).
type counters struct {
	queries, wins, late, reconnects prometheus.Counter
	full, resumed, early            prometheus.Counter
	inflight, conns                 prometheus.Gauge
	duration                        prometheus.Observer
	server, to, transport           string
	t                               *tally
}

func newCounters(server, to, tr string, t *tally) *counters {
	c := &counters{
		queries:    queryCount.WithLabelValues(server, to, tr),
		wins:       winCount.WithLabelValues(server, to, tr),
		late:       lateCount.WithLabelValues(server, to, tr),
		reconnects: reconnectCount.WithLabelValues(server, to, tr),
		full:       handshakeCount.WithLabelValues(server, to, tr, "false"),
		resumed:    handshakeCount.WithLabelValues(server, to, tr, "true"),
		inflight:   inflightGauge.WithLabelValues(server, to, tr),
		conns:      connGauge.WithLabelValues(server, to, tr),
		duration:   replyDuration.WithLabelValues(server, to, tr),
		server:     server,
		to:         to,
		transport:  tr,
		t:          t,
	}
	if tr == "quic" { // only QUIC has 0-RTT: no family without a DoQ upstream
		c.early = earlyCount.WithLabelValues(server, to, tr)
	}
	return c
}

func (c *counters) query() {
	c.queries.Inc()
	if c.t != nil {
		c.t.queries.Add(1)
	}
}

func (c *counters) win() {
	c.wins.Inc()
	if c.t != nil {
		c.t.wins.Add(1)
	}
}

func (c *counters) lateReply() {
	c.late.Inc()
	if c.t != nil {
		c.t.late.Add(1)
	}
}

func (c *counters) reconnect() {
	c.reconnects.Inc()
	if c.t != nil {
		c.t.reconnects.Add(1)
	}
}

func (c *counters) errorf(kind string) {
	errorCount.WithLabelValues(c.server, c.to, c.transport, kind).Inc()
	if c.t != nil {
		c.t.errors.Add(1)
	}
}

func (c *counters) handshake(hs handshake) {
	if !hs.tls {
		return
	}
	if hs.early && c.early != nil {
		c.early.Inc()
	}
	resumed := hs.resumed
	if resumed {
		c.resumed.Inc()
	} else {
		c.full.Inc()
	}
	if c.t == nil {
		return
	}
	if resumed {
		c.t.resumed.Add(1)
	} else {
		c.t.full.Add(1)
	}
}

func (c *counters) reply(rtt time.Duration) {
	c.duration.Observe(rtt.Seconds())
	if c.t != nil {
		c.t.observe(rtt)
	}
}

// forServer returns the upstream's counters under the server label of a request:
// a query that came over the Unix socket counts under unix://..., as in CoreDNS's
// own metrics. An empty label is the block's.
func (u *upstream) forServer(server string) *counters {
	if server == "" || server == u.ctr.server {
		return u.ctr
	}
	if m := u.byServer.Load(); m != nil {
		if c, ok := (*m)[server]; ok {
			return c
		}
	}
	u.mu.Lock()
	defer u.mu.Unlock()
	old := u.byServer.Load()
	if old != nil {
		if c, ok := (*old)[server]; ok {
			return c
		}
	}
	// Copy on write: readers look labels up without the lock.
	m := make(map[string]*counters, 1)
	if old != nil {
		for k, v := range *old {
			m[k] = v
		}
	}
	c := newCounters(server, u.name, u.tr.scheme(), u.tally)
	m[server] = c
	u.byServer.Store(&m)
	return c
}
