// Package block reads a Corefile server block as a whole, for plugins whose setup needs the
// configs of all its keys, not only the one being set up.
package block

import (
	"github.com/coredns/caddy"
	"github.com/coredns/coredns/core/dnsserver"
)

// Configs returns the configs of every key of the server block c is setting up, in the
// order of c.ServerBlockKeys: the zones (and ports) the block serves.
func Configs(c *caddy.Controller) []*dnsserver.Config {
	cfgs := make([]*dnsserver.Config, 0, len(c.ServerBlockKeys))
	for i := range c.ServerBlockKeys {
		cc := *c
		cc.ServerBlockKeyIndex = i
		cfgs = append(cfgs, dnsserver.GetConfig(&cc))
	}
	return cfgs
}
