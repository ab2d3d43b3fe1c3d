package block

import (
	"testing"

	"github.com/coredns/caddy"
	"github.com/coredns/coredns/core/dnsserver"
)

func TestConfigs(t *testing.T) {
	c := caddy.NewTestController("dns", "warmcache")
	c.ServerBlockKeys = []string{"example.org:53", "example.net:53", "example.com:1053"}
	for i := range c.ServerBlockKeys {
		c.ServerBlockKeyIndex = i
		dnsserver.GetConfig(c).Zone = c.ServerBlockKeys[i]
	}
	c.ServerBlockKeyIndex = 1

	cfgs := Configs(c)
	if len(cfgs) != len(c.ServerBlockKeys) {
		t.Fatalf("%d configs, want %d", len(cfgs), len(c.ServerBlockKeys))
	}
	for i, cfg := range cfgs {
		if cfg.Zone != c.ServerBlockKeys[i] {
			t.Errorf("config %d is for %q, want %q", i, cfg.Zone, c.ServerBlockKeys[i])
		}
	}
	if c.ServerBlockKeyIndex != 1 {
		t.Errorf("Configs changed the controller's key index to %d", c.ServerBlockKeyIndex)
	}
	if dnsserver.GetConfig(c) != cfgs[1] {
		t.Error("the current key's config is not the one GetConfig returns")
	}
}
