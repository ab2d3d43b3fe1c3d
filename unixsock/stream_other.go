//go:build !linux

package unixsock

import "net"

// poller is Linux's (stream_linux.go): elsewhere connections stay in the netpoller.
type poller struct{}

func newPoller() *poller { return nil }

func (p *poller) close() {}

// detach returns c itself.
func detach(c *net.UnixConn, _ *poller) stream { return c }
