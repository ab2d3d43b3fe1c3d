package warmcache

import (
	"context"
	"slices"
	"strings"

	"github.com/coredns/coredns/core/dnsserver"
	"github.com/coredns/coredns/plugin"

	"github.com/miekg/dns"
)

// Raw bytes or WriteMsg (DESIGN §6.1). A hit is written as raw bytes only when every writer
// between the client and the cache passes raw bytes unchanged and every recorder learns what
// it needs from them. The plugins above the cache in a block are known when the block's
// chain is built, so the choice is made once per block at startup; the rest is a context
// value checked per request (see reentered). Everything else gets WriteMsg, as from cache.

// rawMode says when a hit may be written as raw bytes.
type rawMode uint8

const (
	rawNever   rawMode = iota // some plugin above works in WriteMsg
	rawNoError                // a recorder above reads the rcode and size: raw only for NOERROR without EDNS
	rawAlways                 // nothing above looks at the reply
)

// transparent lists the plugins that may sit above the cache without seeing a hit's bytes:
// they do not wrap the writer, or only pass Write through. A plugin not listed here (log,
// dnstap, rewrite, loadbalance, dns64, autopath, nsid, any plugin we don't know) keeps hits
// on WriteMsg.
var transparent = map[string]rawMode{
	"unixsock": rawAlways, "root": rawAlways, "metadata": rawAlways, "geoip": rawAlways,
	"cancel": rawAlways, "proxyproto": rawAlways, "quic": rawAlways, "grpc_server": rawAlways,
	"https": rawAlways, "https3": rawAlways, "timeouts": rawAlways, "multisocket": rawAlways,
	"reload": rawAlways, "bufsize": rawAlways, "bind": rawAlways, "debug": rawAlways,
	"ready": rawAlways, "health": rawAlways, "pprof": rawAlways, "errors": rawAlways,
	"local": rawAlways, "chaos": rawAlways, "acl": rawAlways, "any": rawAlways,
	"tls": rawAlways, "view": rawAlways, "loop": rawAlways,
	// metrics.Recorder and trace's dnstest.Recorder record the rcode in WriteMsg only.
	"prometheus": rawNoError, "trace": rawNoError,
}

// chainMode returns the raw mode of a chain whose handlers, in chain order, are named
// names, and the first plugin above self that keeps hits on WriteMsg, if any.
func chainMode(names []string, self string) (rawMode, string) {
	i := slices.Index(names, self)
	if i < 0 {
		return rawNever, "?"
	}
	mode, why := rawAlways, ""
	for _, n := range names[:i] {
		m, ok := transparent[n]
		if !ok {
			return rawNever, n
		}
		if m < mode {
			mode, why = m, n
		}
	}
	return mode, why
}

// blockMode computes the raw mode of the block whose config is cfg; the chain is built
// before OnStartup runs.
func blockMode(cfg *dnsserver.Config, self string) (rawMode, string) {
	hs := cfg.Handlers()
	names := make([]string, len(hs))
	for i, h := range hs {
		names[i] = h.Name()
	}
	return chainMode(names, self)
}

func (m rawMode) String() string {
	switch m {
	case rawAlways:
		return "raw bytes"
	case rawNoError:
		return "raw bytes for NOERROR without EDNS, WriteMsg for the rest"
	}
	return "WriteMsg"
}

// chainKey marks the context of a request that warmcache passed down the chain. A plugin
// below may re-enter the server with it (pkg/upstream: file's out-of-zone CNAMEs, template,
// kubernetes ExternalName), under a nonwriter that captures WriteMsg only: a cache that
// sees the mark must answer with WriteMsg.
type chainKey struct{}

// down returns the context for calling the next plugin.
func down(ctx context.Context) context.Context {
	if ctx.Value(chainKey{}) != nil {
		return ctx
	}
	return context.WithValue(ctx, chainKey{}, true)
}

// reentered reports whether ctx belongs to a request made from inside another request's
// chain.
func reentered(ctx context.Context) bool { return ctx.Value(chainKey{}) != nil }

// next calls the rest of the chain with the context marked.
func (c *WarmCache) next(ctx context.Context, w dns.ResponseWriter, r *dns.Msg) (int, error) {
	return plugin.NextOrFailure(c.Name(), c.Next, down(ctx), w, r)
}

// reentrant lists the directives whose plugins query the server again from inside a
// request (pkg/upstream, or their own nonwriter).
var reentrant = []string{"file", "auto", "secondary", "kubernetes", "k8s_external", "etcd",
	"template", "nomad", "autopath", "route53", "azure", "clouddns", "sign"}

// foreignReentry reports whether a server block of the Corefile body re-enters the server
// without a warmcache above the plugin that does it: such a re-entry carries no chainKey.
// A body that can't be read counts as one.
func foreignReentry(blocks [][]string) bool {
	for _, dirs := range blocks {
		if slices.Contains(dirs, "warmcache") {
			continue
		}
		for _, d := range dirs {
			if slices.Contains(reentrant, d) {
				return true
			}
		}
	}
	return false
}

// describe returns the startup log line for a block's mode.
func describe(keys []string, mode rawMode, why string) string {
	s := "Hits in " + strings.Join(keys, " ") + ": " + mode.String()
	if why != "" {
		s += " (because of " + why + ")"
	}
	return s
}
