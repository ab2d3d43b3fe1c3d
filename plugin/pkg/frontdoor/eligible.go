package frontdoor

import "slices"

// skippable lists the plugins a hit may skip: those whose effect on a hit the front door
// reproduces (prometheus, loadbalance's round_robin: the caller checks the policy) or that
// have none (DESIGN §6.3).
var skippable = map[string]bool{
	"loadbalance": true,
	"prometheus":  true, "errors": true, "health": true, "ready": true, "reload": true,
	"loop": true, "bind": true, "debug": true, "unixsock": true, "root": true,
}

// Eligible reports whether a block whose chain is names (in order) may have a front door
// for the cache named self, and if not, the first plugin that keeps hits in the chain.
func Eligible(names []string, self string) (bool, string) {
	i := slices.Index(names, self)
	if i < 0 {
		return false, self + " not in the chain"
	}
	for _, n := range names[:i] {
		if !skippable[n] {
			return false, n
		}
	}
	for _, n := range names {
		if opcodes[n] {
			return false, n + " (accepts opcode UPDATE)"
		}
	}
	return true, ""
}

// opcodes lists the plugins that make the block's server accept an opcode other than QUERY
// and NOTIFY (dnsserver.Config.AllowOpcode, which the front door can't read): a miss is
// judged by miekg/dns's default, which answers such a message NOTIMP.
var opcodes = map[string]bool{"dynupdate": true}

// After returns the name of the plugin after prom in names, the plugin label prometheus
// gives the replies the chain writes (plugin.NextOrFailure's writer tells the recorder
// the name of the plugin it called).
func After(names []string, prom string) string {
	i := slices.Index(names, prom)
	if i < 0 || i+1 >= len(names) {
		return ""
	}
	return names[i+1]
}
