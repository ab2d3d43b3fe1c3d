package frontdoor

import (
	"errors"
	"net"
	"time"

	"golang.org/x/net/ipv4"
	"golang.org/x/net/ipv6"
)

const (
	batchLen = 64
	// readSize is what CoreDNS's server reads of a datagram (miekg/dns's default UDPSize,
	// 512): a longer query is cut there, and we must see what it sees. One more byte tells
	// us that a datagram was longer.
	readSize = 512
	// replyCap is the room for one reply in the write batch; longer replies allocate.
	replyCap = 1232
)

// cmsg reads and writes the packet info of a socket bound to a wildcard address, so that a
// reply leaves from the address its query came to, as miekg/dns does it (udp.go:
// setUDPSocketOptions, correctSource): both families' packet info is asked for, since an
// IPv6 socket receives IPv4 datagrams too, and the reply's source is set with the family of
// the address, as ipv6's Marshal ignores IPv4 addresses.
type cmsg struct{ size int }

func (m cmsg) src(oob []byte) []byte {
	if len(oob) == 0 {
		return nil
	}
	var dst net.IP
	var cm6 ipv6.ControlMessage
	if cm6.Parse(oob) == nil && cm6.Dst != nil {
		dst = cm6.Dst
	} else {
		var cm4 ipv4.ControlMessage
		if cm4.Parse(oob) == nil && cm4.Dst != nil {
			dst = cm4.Dst
		}
	}
	switch {
	case dst == nil:
		return nil
	case dst.To4() == nil:
		return (&ipv6.ControlMessage{Src: dst}).Marshal()
	default:
		return (&ipv4.ControlMessage{Src: dst}).Marshal()
	}
}

// open asks, when c is bound to a wildcard address, for packet info, and returns the room
// its control messages need.
func open(c *net.UDPConn) cmsg {
	la, _ := c.LocalAddr().(*net.UDPAddr)
	var cm cmsg
	if la == nil || la.IP.IsUnspecified() {
		err6 := ipv6.NewPacketConn(c).SetControlMessage(ipv6.FlagDst|ipv6.FlagInterface, true)
		err4 := ipv4.NewPacketConn(c).SetControlMessage(ipv4.FlagDst|ipv4.FlagInterface, true)
		if err6 == nil || err4 == nil {
			cm.size = len(ipv6.NewControlMessage(ipv6.FlagDst|ipv6.FlagInterface)) +
				len(ipv4.NewControlMessage(ipv4.FlagDst|ipv4.FlagInterface))
		}
	}
	return cm
}

// read serves c until it is closed: hits in place, the rest through the door's server.
func (g *Group) read(c *net.UDPConn) {
	cm := open(c)
	bio, err := newBatchIO(c, cm.size)
	if err != nil {
		return
	}
	var t batch
	replies := make([][]byte, batchLen)
	for i := range replies {
		replies[i] = make([]byte, 0, replyCap)
	}
	for {
		n, err := bio.read()
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			time.Sleep(time.Millisecond) // ENOBUFS and the like: don't spin
			continue
		}
		d := g.door.Load()
		t.start = time.Now()
		t.now = d.Cache.Now().UnixNano()
		for i := range n {
			b, oob := bio.msg(i)
			long := len(b) > readSize
			if long {
				b = b[:readSize] // as CoreDNS's server reads it
			}
			fam := bio.family(i)
			if fam == 0 {
				continue
			}
			oob = cm.src(oob)
			if !long {
				if reply, ok := d.hit(b, fam, replies[i][:0], &t); ok {
					bio.queue(i, reply, oob)
					continue
				}
			}
			g.misses.Add(1)
			d.inflight.Add(1)
			d.miss(c, append([]byte(nil), b...), bio.addr(i), oob, func() { d.inflight.Add(-1); g.misses.Add(-1) })
		}
		d.count(&t)
		bio.flush()
	}
}
