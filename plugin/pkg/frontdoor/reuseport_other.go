//go:build !linux

package frontdoor

import (
	"errors"
	"net"
)

// errPlatform: the front door steers datagrams with SO_ATTACH_REUSEPORT_CBPF, which only
// Linux has; elsewhere Open fails and the block keeps CoreDNS's socket.
var errPlatform = errors.New("the front door needs Linux (SO_ATTACH_REUSEPORT_CBPF)")

func listen(string) (*net.UDPConn, error) { return nil, errPlatform }

func steer(*net.UDPConn, uint32, uint32) error { return errPlatform }
