package unixsock

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"github.com/coredns/caddy"
	"github.com/coredns/coredns/core/dnsserver"
	"github.com/coredns/coredns/plugin"
	"github.com/dnscache/dnscache/plugin/pkg/block"
)

func init() { plugin.Register(name, setup) }

// registerHook registers commitHook unless it is there. caddy's SIGUSR1 handler drops every
// event hook before it reloads and restores them only when the reload fails, so a hook
// registered once (in init) would be gone from the first SIGUSR1 on, and a socket path that a
// reload adds would never be served. Each setup registers it again; caddy says "already
// registered" with a panic, which is the expected case here.
func registerHook() {
	defer func() { _ = recover() }()
	caddy.RegisterEventHook(name, commitHook)
}

// maxPathLen is the room in sockaddr_un.sun_path (108 bytes on Linux) minus the NUL.
const maxPathLen = 107

// pathsKey keys the instance storage that maps the socket paths of one Corefile to the
// instance of the first server block that names each.
type pathsKey struct{}

func setup(c *caddy.Controller) error {
	registerHook()
	u, err := parse(c)
	if err != nil {
		return plugin.Error(name, err)
	}

	// Several blocks may name one path: the socket then routes between them as a port routes
	// between the blocks on it (zones, then views, in Corefile order). The first block's
	// instance serves the socket; a later block adds its configs to it, and has a pass-through
	// instance in its own chain, which publishes the peer metadata there.
	paths, _ := c.Get(pathsKey{}).(map[string]*Unixsock)
	if paths == nil {
		paths = map[string]*Unixsock{}
		c.Set(pathsKey{}, paths)
	}
	if first := paths[u.path]; first != nil {
		if u.optsSet && u.opts != first.opts {
			return plugin.Error(name, fmt.Errorf("%s - Error during parsing: socket %s: options differ from the first server block that names it, %s (give them there only)", u.at, u.path, first.at))
		}
		first.configs = append(first.configs, block.Configs(c)...)
		dnsserver.GetConfig(c).AddPlugin(func(next plugin.Handler) plugin.Handler {
			u.Next = next
			return u
		})
		return nil
	}
	paths[u.path] = u

	u.configs = block.Configs(c)

	c.OnStartup(u.OnStartup)
	c.OnRestartFailed(u.OnRestartFailed)
	c.OnShutdown(u.OnShutdown)

	dnsserver.GetConfig(c).AddPlugin(func(next plugin.Handler) plugin.Handler {
		u.Next = next
		return u
	})
	return nil
}

func parse(c *caddy.Controller) (*Unixsock, error) {
	var u *Unixsock
	for c.Next() {
		if u != nil {
			return nil, c.Err(plugin.ErrOnce.Error())
		}
		at := fmt.Sprintf("%s:%d", c.File(), c.Line())
		args := c.RemainingArgs()
		path := DefaultPath
		switch len(args) {
		case 0:
		case 1:
			path = args[0]
		default:
			return nil, c.ArgErr()
		}
		if !filepath.IsAbs(path) {
			return nil, c.Errf("socket path '%s' is not absolute", path)
		}
		path = filepath.Clean(path)
		if len(path) > maxPathLen {
			return nil, c.Errf("socket path '%s' is longer than %d bytes", path, maxPathLen)
		}
		u = New(path)
		u.at = at

		var share string // where max_connections_per_uid was given, for its error
		for c.NextBlock() {
			if c.Val() == "max_connections_per_uid" {
				share = fmt.Sprintf("%s:%d", c.File(), c.Line())
			}
			if err := parseOption(c, &u.opts); err != nil {
				return nil, err
			}
			u.optsSet = true
		}
		switch {
		case share == "":
			u.opts.maxConnsUID = shareOf(u.opts.maxConns)
		case u.opts.maxConnsUID > u.opts.maxConns:
			return nil, fmt.Errorf("%s - Error during parsing: max_connections_per_uid %d is more than max_connections %d", share, u.opts.maxConnsUID, u.opts.maxConns)
		}
	}
	if u == nil {
		return nil, c.ArgErr()
	}
	return u, nil
}

func parseOption(c *caddy.Controller, o *options) error {
	prop := c.Val()
	args := c.RemainingArgs()
	if len(args) != 1 {
		switch prop {
		case "mode", "max_connections", "max_connections_per_uid", "max_inflight", "idle_timeout", "read_timeout", "write_timeout":
			return c.ArgErr()
		}
		return c.Errf("unknown property '%s'", prop)
	}
	arg := args[0]
	switch prop {
	case "mode":
		m, err := strconv.ParseUint(arg, 8, 32)
		if err != nil || m > 0o777 {
			return c.Errf("mode '%s' is not an octal permission between 0 and 0777", arg)
		}
		o.mode = os.FileMode(m)
	case "max_connections":
		n, err := positive(arg)
		if err != nil {
			return c.Errf("max_connections: %v", err)
		}
		o.maxConns = n
	case "max_connections_per_uid":
		n, err := positive(arg)
		if err != nil {
			return c.Errf("max_connections_per_uid: %v", err)
		}
		o.maxConnsUID = n
	case "max_inflight":
		n, err := positive(arg)
		if err != nil {
			return c.Errf("max_inflight: %v", err)
		}
		o.maxInflight = n
	case "idle_timeout", "read_timeout", "write_timeout":
		d, err := time.ParseDuration(arg)
		if err != nil || d <= 0 {
			return c.Errf("%s '%s' is not a positive duration", prop, arg)
		}
		switch prop {
		case "idle_timeout":
			o.idleTimeout = d
		case "read_timeout":
			o.readTimeout = d
		default:
			o.writeTimeout = d
		}
	default:
		return c.Errf("unknown property '%s'", prop)
	}
	return nil
}

func positive(s string) (int, error) {
	n, err := strconv.Atoi(s)
	if err != nil || n <= 0 {
		return 0, fmt.Errorf("'%s' is not a positive integer", s)
	}
	return n, nil
}
