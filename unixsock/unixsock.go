// Package unixsock implements a listener that serves the server block's plugin chain over a Unix
// stream socket: DNS messages with 2-byte length framing (RFC 1035 §4.2.2), pipelined, answered
// out of order and matched by ID (RFC 7766 §6.2.1.1).
package unixsock

import (
	"context"
	"os"
	"strconv"
	"time"

	"github.com/coredns/coredns/core/dnsserver"
	"github.com/coredns/coredns/plugin"
	"github.com/coredns/coredns/plugin/metadata"
	"github.com/coredns/coredns/request"

	"github.com/miekg/dns"
)

const name = "unixsock"

// Defaults for the options of the unixsock directive.
const (
	DefaultPath         = "/dns_cache/dns.sock"
	DefaultMode         = os.FileMode(0o666)
	DefaultMaxConns     = 1024
	DefaultMaxInflight  = 64
	DefaultIdleTimeout  = 10 * time.Second
	DefaultReadTimeout  = 2 * time.Second
	DefaultWriteTimeout = 5 * time.Second
)

// Unixsock is the plugin of one server block. It is a listener, not a filter: its ServeDNS only
// calls Next. Queries that arrive on the socket enter the block through a dnsserver.Server built
// from the configs of every block that names the path, so they see the whole chain, zone and
// view routing between those blocks, and panic recovery. In a later block that names a path
// already named, the instance is only a pass-through and a metadata provider.
type Unixsock struct {
	Next plugin.Handler

	path    string
	at      string // "FILE:LINE" of the directive, for errors at startup
	opts    options
	optsSet bool // the directive had an options block

	configs []*dnsserver.Config // the configs of the blocks that name the path, one per key
	srv     *dnsserver.Server   // built on startup from configs
	addr    string              // "unix://" + path: the server label
	gate    *gate               // queries in srv's chain
	door    *door               // hits answered in the readers, or nil (door.go)
	doorWhy string              // why there is no door, for the log
}

type options struct {
	mode         os.FileMode
	maxConns     int
	maxConnsUID  int // max_connections_per_uid
	maxInflight  int
	idleTimeout  time.Duration
	readTimeout  time.Duration
	writeTimeout time.Duration
}

// shareOf is the default max_connections_per_uid: half of max_connections, rounded up, so that
// one uid cannot hold the whole socket and another uid always finds room.
func shareOf(maxConns int) int { return (maxConns + 1) / 2 }

// New returns a Unixsock for path with default options.
func New(path string) *Unixsock {
	return &Unixsock{
		path: path,
		addr: "unix://" + path,
		gate: newGate(),
		opts: options{
			mode:         DefaultMode,
			maxConns:     DefaultMaxConns,
			maxConnsUID:  shareOf(DefaultMaxConns),
			maxInflight:  DefaultMaxInflight,
			idleTimeout:  DefaultIdleTimeout,
			readTimeout:  DefaultReadTimeout,
			writeTimeout: DefaultWriteTimeout,
		},
	}
}

// ServeDNS implements the plugin.Handler interface. It passes every query on.
func (u *Unixsock) ServeDNS(ctx context.Context, w dns.ResponseWriter, r *dns.Msg) (int, error) {
	return plugin.NextOrFailure(u.Name(), u.Next, ctx, w, r)
}

// Name implements the plugin.Handler interface.
func (u *Unixsock) Name() string { return name }

// Metadata implements metadata.Provider: for queries that came over the socket it sets
// unixsock/path and, when SO_PEERCRED told them, unixsock/pid, unixsock/uid and unixsock/gid.
// Unknown credentials are left unset (shown as "-"), never reported as uid 0.
func (u *Unixsock) Metadata(ctx context.Context, _ request.Request) context.Context {
	p, ok := ctx.Value(peerKey{}).(*peer)
	if !ok {
		return ctx
	}
	metadata.SetValueFunc(ctx, name+"/path", func() string { return p.path })
	if p.pid < 0 {
		return ctx
	}
	metadata.SetValueFunc(ctx, name+"/pid", func() string { return strconv.Itoa(int(p.pid)) })
	metadata.SetValueFunc(ctx, name+"/uid", func() string { return strconv.FormatUint(uint64(p.uid), 10) })
	metadata.SetValueFunc(ctx, name+"/gid", func() string { return strconv.FormatUint(uint64(p.gid), 10) })
	return ctx
}
