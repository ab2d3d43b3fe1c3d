package warmcache

import (
	"fmt"
	"math/bits"
	"strconv"
	"strings"
	"time"

	"github.com/coredns/caddy"
	"github.com/coredns/coredns/core/dnsserver"
	"github.com/coredns/coredns/plugin"
	"github.com/dnscache/dnscache/plugin/pkg/block"
)

func init() { plugin.Register("warmcache", setup) }

func setup(c *caddy.Controller) error {
	wc, err := parse(c)
	if err != nil {
		return plugin.Error("warmcache", err)
	}
	wc.id, wc.inst = identity(c), instanceOf(c)
	wc.keys = c.ServerBlockKeys
	cfg := dnsserver.GetConfig(c)
	cfgs := block.Configs(c)
	c.OnStartup(func() error {
		// The block's chain is built by now (caddy makes the servers before OnStartup).
		wc.blockMode, wc.blockWhy = blockMode(cfg, wc.Name())
		wc.await()
		return wc.prepareDoor(cfgs)
	})
	c.OnStartup(wc.onStartup)
	c.OnRestartFailed(wc.onRestartFailed)
	c.OnShutdown(wc.onShutdown)

	dnsserver.GetConfig(c).AddPlugin(func(next plugin.Handler) plugin.Handler {
		wc.Next = next
		return wc
	})
	return nil
}

func parse(c *caddy.Controller) (*WarmCache, error) {
	wc := New()
	i := 0
	for c.Next() {
		if i > 0 {
			return nil, c.Err(plugin.ErrOnce.Error())
		}
		i++
		// warmcache [TTL] [ZONES...]
		args := c.RemainingArgs()
		if len(args) > 0 {
			if ttl, err := strconv.Atoi(args[0]); err == nil {
				if ttl <= 0 {
					return nil, c.Errf("TTL must be a positive number of seconds: %d", ttl)
				}
				wc.pttl = time.Duration(ttl) * time.Second
				wc.nttl = wc.pttl
				args = args[1:]
			} else if notZone(args[0]) {
				// "warmcache 30s" would otherwise cache only the zone "30s.": nothing.
				return nil, c.Errf("TTL must be a whole number of seconds, got '%s'", args[0])
			}
		}
		if zones := plugin.OriginsFromArgsOrServerBlock(args, c.ServerBlockKeys); len(zones) > 0 {
			wc.Zones = zones
		}

		// The checks across options name the directive's line.
		file, line := c.File(), c.Line()
		for c.NextBlock() {
			if err := parseOption(c, wc); err != nil {
				return nil, err
			}
		}
		if wc.minpttl > wc.pttl {
			return nil, fmt.Errorf("%s:%d - Error during parsing: success: minimum TTL %s above maximum TTL %s", file, line, wc.minpttl, wc.pttl)
		}
		if wc.minnttl > wc.nttl {
			return nil, fmt.Errorf("%s:%d - Error during parsing: denial: minimum TTL %s above maximum TTL %s", file, line, wc.minnttl, wc.nttl)
		}
	}
	wc.init()
	return wc, nil
}

func parseOption(c *caddy.Controller, wc *WarmCache) error {
	opt := c.Val()
	args := c.RemainingArgs()
	switch opt {
	case "success", "denial":
		// success|denial CAPACITY [TTL [MINTTL]]
		if len(args) < 1 || len(args) > 3 {
			return argErr(c, opt)
		}
		capacity, err := positive(c, opt, "capacity", args[0])
		if err != nil {
			return err
		}
		ttl, minttl := &wc.pttl, &wc.minpttl
		cp := &wc.pcap
		if opt == "denial" {
			ttl, minttl, cp = &wc.nttl, &wc.minnttl, &wc.ncap
		}
		*cp = capacity
		if len(args) > 1 {
			t, err := positive(c, opt, "TTL", args[1])
			if err != nil {
				return err
			}
			*ttl = time.Duration(t) * time.Second
		}
		if len(args) > 2 {
			t, err := strconv.Atoi(args[2])
			if err != nil || t < 0 {
				return c.Errf("%s: minimum TTL must be a non-negative number of seconds: %q", opt, args[2])
			}
			*minttl = time.Duration(t) * time.Second
			if *minttl > *ttl {
				return c.Errf("%s: minimum TTL %s above maximum TTL %s", opt, *minttl, *ttl)
			}
		}
	case "servfail":
		// servfail DURATION
		if len(args) != 1 {
			return argErr(c, opt)
		}
		d, err := duration(c, opt, args[0], 0)
		if err != nil {
			return err
		}
		if d > 5*time.Minute { // RFC 2308 §7.1
			return c.Errf("servfail: caching SERVFAIL over 5 minutes is not permitted: %s", d)
		}
		wc.failttl = d
	case "max_bytes":
		// max_bytes SIZE (suffixes k, M, G: powers of 1024)
		if len(args) != 1 {
			return argErr(c, opt)
		}
		n, err := parseSize(args[0])
		if err != nil {
			return c.Errf("max_bytes: %v", err)
		}
		wc.maxBytes = n
	case "prefetch":
		// prefetch AMOUNT [DURATION [PERCENTAGE%]]
		if len(args) < 1 || len(args) > 3 {
			return argErr(c, opt)
		}
		n, err := strconv.Atoi(args[0])
		if err != nil || n < 0 {
			return c.Errf("prefetch: amount must be a non-negative integer: %q", args[0])
		}
		wc.prefetch = n
		if len(args) > 1 {
			if wc.window, err = duration(c, opt, args[1], time.Second); err != nil {
				return err
			}
		}
		if len(args) > 2 {
			pct, ok := strings.CutSuffix(args[2], "%")
			p, err := strconv.Atoi(pct)
			if !ok || err != nil || p < 1 || p > 90 {
				return c.Errf("prefetch: percentage must be 1%% to 90%%: %q", args[2])
			}
			wc.percentage = p
		}
	case "sweep":
		// sweep INTERVAL
		if len(args) != 1 {
			return argErr(c, opt)
		}
		d, err := duration(c, opt, args[0], 100*time.Millisecond)
		if err != nil {
			return err
		}
		wc.sweepEvery = d
	case "refreshes":
		// refreshes MAX [RATE]
		if len(args) < 1 || len(args) > 2 {
			return argErr(c, opt)
		}
		n, err := positive(c, opt, "maximum", args[0])
		if err != nil {
			return err
		}
		wc.refreshMax = n
		if len(args) > 1 {
			if wc.refreshPS, err = positive(c, opt, "rate", args[1]); err != nil {
				return err
			}
		}
	case "serve_stale":
		// serve_stale [DURATION [WAIT]]
		if len(args) > 2 {
			return argErr(c, opt)
		}
		wc.staleUpTo = time.Hour
		if len(args) > 0 {
			d, err := duration(c, opt, args[0], time.Second)
			if err != nil {
				return err
			}
			wc.staleUpTo = d
		}
		if len(args) > 1 {
			d, err := duration(c, opt, args[1], 0)
			if err != nil {
				return err
			}
			wc.staleWait = d
		}
	case "flush_on_reload":
		if len(args) != 0 {
			return argErr(c, opt)
		}
		wc.flushOnReload = true
	case "front_door":
		// front_door on|off: hits answered where UDP datagrams arrive (DESIGN §6.3).
		if len(args) != 1 || (args[0] != "on" && args[0] != "off") {
			return c.Errf("front_door needs on or off, got %v", args)
		}
		wc.fd.on = args[0] == "on"
	case "shards":
		// shards N (a power of two)
		if len(args) != 1 {
			return argErr(c, opt)
		}
		n, err := positive(c, opt, "count", args[0])
		if err != nil {
			return err
		}
		if bits.OnesCount(uint(n)) != 1 || n > 4096 {
			return c.Errf("shards: count must be a power of two up to 4096: %d", n)
		}
		wc.shards = n
	default:
		return c.Errf("unknown property '%s'", opt)
	}
	return nil
}

// positive parses a positive integer for option opt.
func positive(c *caddy.Controller, opt, what, s string) (int, error) {
	n, err := strconv.Atoi(s)
	if err != nil || n <= 0 {
		return 0, c.Errf("%s: %s must be a positive integer: %q", opt, what, s)
	}
	return n, nil
}

// duration parses a Go duration of at least least for option opt.
func duration(c *caddy.Controller, opt, s string, least time.Duration) (time.Duration, error) {
	d, err := time.ParseDuration(s)
	if err != nil {
		return 0, c.Errf("%s: %v", opt, err)
	}
	if d < least {
		return 0, c.Errf("%s: duration must be at least %s: %s", opt, least, s)
	}
	return d, nil
}

// notZone reports whether a first argument of warmcache that strconv.Atoi refused is a TTL
// written wrong (a duration, a fraction, "30sec") rather than a zone: no top-level domain
// starts with a digit.
func notZone(s string) bool {
	if s == "" {
		return false
	}
	if _, err := time.ParseDuration(s); err == nil {
		return true
	}
	if _, err := strconv.ParseFloat(s, 64); err == nil && strings.IndexAny(s[:1], "0123456789+-.") == 0 {
		return true
	}
	return strings.IndexAny(s[:1], "0123456789+-") == 0 && !strings.Contains(s, ".")
}

// parseSize parses a byte count with an optional k, M or G suffix (powers of 1024).
func parseSize(s string) (int64, error) {
	mult := int64(1)
	switch {
	case strings.HasSuffix(s, "k"):
		mult, s = 1<<10, strings.TrimSuffix(s, "k")
	case strings.HasSuffix(s, "M"):
		mult, s = 1<<20, strings.TrimSuffix(s, "M")
	case strings.HasSuffix(s, "G"):
		mult, s = 1<<30, strings.TrimSuffix(s, "G")
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n <= 0 || n > (1<<40)/mult {
		return 0, fmt.Errorf("size must be a positive number of bytes (suffix k, M or G): %q", s)
	}
	return n * mult, nil
}

func argErr(c *caddy.Controller, opt string) error {
	return c.Errf("%s: wrong number of arguments", opt)
}
