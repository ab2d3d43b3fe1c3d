package warmcache

import (
	"strings"
	"testing"
	"time"

	"github.com/coredns/caddy"
)

func TestSetup(t *testing.T) {
	tests := []struct {
		input string
		err   string // substring of the error; "" when valid
		check func(*WarmCache) bool
	}{
		{"warmcache", "", func(c *WarmCache) bool { return c.prefetch == 2 && c.pttl == time.Hour && c.Zones[0] == "." }},
		{"warmcache 60 example.org", "", func(c *WarmCache) bool {
			return c.pttl == time.Minute && c.nttl == time.Minute && c.Zones[0] == "example.org."
		}},
		{"warmcache {\n success 100 600 10\n denial 50 60 1\n}", "", func(c *WarmCache) bool {
			return c.pcap == 100 && c.pttl == 10*time.Minute && c.minpttl == 10*time.Second && c.ncap == 50 && c.minnttl == time.Second
		}},
		{"warmcache {\n servfail 0s\n max_bytes 8M\n shards 16\n}", "", func(c *WarmCache) bool {
			return c.failttl == 0 && c.maxBytes == 8<<20 && len(c.store.shards) == 16
		}},
		{"warmcache {\n prefetch 3 2m 20%\n sweep 500ms\n refreshes 8 100\n}", "", func(c *WarmCache) bool {
			return c.prefetch == 3 && c.window == 2*time.Minute && c.percentage == 20 && c.sweepEvery == 500*time.Millisecond && c.refreshMax == 8 && c.refreshPS == 100
		}},
		{"warmcache {\n prefetch 0\n}", "", func(c *WarmCache) bool { return c.prefetch == 0 }},
		{"warmcache {\n serve_stale\n}", "", func(c *WarmCache) bool { return c.staleUpTo == time.Hour }},
		{"warmcache {\n serve_stale 10m 500ms\n}", "", func(c *WarmCache) bool { return c.staleUpTo == 10*time.Minute && c.staleWait == 500*time.Millisecond }},
		{"warmcache", "", func(c *WarmCache) bool { return !c.flushOnReload }},
		{"warmcache {\n flush_on_reload\n}", "", func(c *WarmCache) bool { return c.flushOnReload }},

		{"warmcache 0", "TTL must be a positive number", nil},
		{"warmcache 30s", "TTL must be a whole number of seconds", nil},
		{"warmcache 1.5", "TTL must be a whole number of seconds", nil},
		{"warmcache 30sec", "TTL must be a whole number of seconds", nil},
		{"warmcache -1s example.org", "TTL must be a whole number of seconds", nil},
		{"warmcache {\n success 10 60 30\n success 10 20\n}", "success: minimum TTL 30s above maximum TTL 20s", nil},
		{"warmcache {\n bogus\n}", "unknown property 'bogus'", nil},
		{"warmcache\nwarmcache", "only be used once", nil},
		{"warmcache {\n success\n}", "success: wrong number", nil},
		{"warmcache {\n success x\n}", "success: capacity", nil},
		{"warmcache {\n success 10 0\n}", "success: TTL", nil},
		{"warmcache {\n success 10 60 -1\n}", "success: minimum TTL", nil},
		{"warmcache {\n success 10 60 120\n}", "success: minimum TTL", nil},
		{"warmcache {\n denial 0\n}", "denial: capacity", nil},
		{"warmcache {\n denial 10 60 90\n}", "denial: minimum TTL", nil},
		{"warmcache {\n servfail 6m\n}", "servfail: caching SERVFAIL over 5 minutes", nil},
		{"warmcache {\n servfail -1s\n}", "servfail: duration", nil},
		{"warmcache {\n servfail x\n}", "servfail:", nil},
		{"warmcache {\n servfail\n}", "servfail: wrong number", nil},
		{"warmcache {\n max_bytes 0\n}", "max_bytes:", nil},
		{"warmcache {\n max_bytes 12X\n}", "max_bytes:", nil},
		{"warmcache {\n prefetch -1\n}", "prefetch: amount", nil},
		{"warmcache {\n prefetch 1 0s\n}", "prefetch: duration", nil},
		{"warmcache {\n prefetch 1 1m 95%\n}", "prefetch: percentage", nil},
		{"warmcache {\n prefetch 1 1m 20\n}", "prefetch: percentage", nil},
		{"warmcache {\n prefetch 1 1m 10% x\n}", "prefetch: wrong number", nil},
		{"warmcache {\n sweep 1ms\n}", "sweep: duration", nil},
		{"warmcache {\n sweep\n}", "sweep: wrong number", nil},
		{"warmcache {\n refreshes 0\n}", "refreshes: maximum", nil},
		{"warmcache {\n refreshes 4 0\n}", "refreshes: rate", nil},
		{"warmcache {\n serve_stale 1ms\n}", "serve_stale: duration", nil},
		{"warmcache {\n serve_stale 1h -1s\n}", "serve_stale: duration", nil},
		{"warmcache {\n serve_stale 1h 1s 1\n}", "serve_stale: wrong number", nil},
		{"warmcache {\n shards 3\n}", "shards: count must be a power of two", nil},
		{"warmcache {\n shards 0\n}", "shards: count", nil},
		{"warmcache {\n flush_on_reload yes\n}", "flush_on_reload: wrong number", nil},
	}
	for _, tc := range tests {
		c, err := parse(caddy.NewTestController("dns", tc.input))
		if tc.err == "" {
			if err != nil {
				t.Errorf("%q: unexpected error %v", tc.input, err)
				continue
			}
			if !tc.check(c) {
				t.Errorf("%q: parsed to %+v", tc.input, c)
			}
			continue
		}
		if err == nil || !strings.Contains(err.Error(), tc.err) {
			t.Errorf("%q: error %v, want one containing %q", tc.input, err, tc.err)
		}
		if err != nil && !strings.HasPrefix(err.Error(), "Testfile:") {
			t.Errorf("%q: error %q does not name the file and line", tc.input, err)
		}
	}
}

// TestSetupErrorLine checks that an error names the line of what is wrong: the option's, or
// the directive's for a check across options.
func TestSetupErrorLine(t *testing.T) {
	tests := []struct {
		input string
		want  string
	}{
		{"warmcache 30s", "Testfile:1 - Error during parsing: "},
		{"warmcache {\n success 10\n servfail 10\n}", "Testfile:3 - Error during parsing: servfail: "},
		{"warmcache {\n prefetch 1 60\n}", "Testfile:2 - Error during parsing: prefetch: "},
		{"warmcache\nwarmcache", "Testfile:2 - Error during parsing: this plugin can only be used once"},
		{"warmcache 60 {\n success 10 60 30\n\n success 10 20\n}", "Testfile:1 - Error during parsing: success: minimum TTL"},
	}
	for _, tc := range tests {
		_, err := parse(caddy.NewTestController("dns", tc.input))
		if err == nil || !strings.HasPrefix(err.Error(), tc.want) {
			t.Errorf("%q: error %v, want one starting %q", tc.input, err, tc.want)
		}
	}
}

func TestSetupRegisters(t *testing.T) {
	c := caddy.NewTestController("dns", "warmcache")
	if err := setup(c); err != nil {
		t.Fatal(err)
	}
	if err := setup(caddy.NewTestController("dns", "warmcache {\n bogus\n}")); err == nil || !strings.HasPrefix(err.Error(), "plugin/warmcache: ") {
		t.Errorf("error %v, want it wrapped with plugin/warmcache", err)
	}
}
