package frontdoor

import (
	"errors"
	"net"
	"time"

	"golang.org/x/net/ipv4"
	"golang.org/x/net/ipv6"
)

const (
	batch = 32
	// readSize is what CoreDNS's server reads of a datagram (miekg/dns's default UDPSize,
	// 512): a longer query is cut there, and we must see what it sees. One more byte tells
	// us that a datagram was longer.
	readSize = 512
	// replyCap is the room for one reply in the write batch; longer replies allocate.
	replyCap = 1232
)

// batchConn is the batch I/O of an ipv4 or ipv6 PacketConn.
type batchConn interface {
	ReadBatch([]ipv4.Message, int) (int, error)
	WriteBatch([]ipv4.Message, int) (int, error)
}

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

// open prepares c for batches and, when it is bound to a wildcard address, packet info.
func open(c *net.UDPConn) (batchConn, cmsg) {
	la, _ := c.LocalAddr().(*net.UDPAddr)
	wild := la == nil || la.IP.IsUnspecified()
	var cm cmsg
	if wild {
		err6 := ipv6.NewPacketConn(c).SetControlMessage(ipv6.FlagDst|ipv6.FlagInterface, true)
		err4 := ipv4.NewPacketConn(c).SetControlMessage(ipv4.FlagDst|ipv4.FlagInterface, true)
		if err6 == nil || err4 == nil {
			cm.size = len(ipv6.NewControlMessage(ipv6.FlagDst|ipv6.FlagInterface)) +
				len(ipv4.NewControlMessage(ipv4.FlagDst|ipv4.FlagInterface))
		}
	}
	if la != nil && la.IP.To4() == nil {
		return ipv6.NewPacketConn(c), cm
	}
	return ipv4.NewPacketConn(c), cm
}

// read serves c until it is closed: hits in place, the rest through the door's server.
func (g *Group) read(c *net.UDPConn) {
	pc, cm := open(c)
	in := make([]ipv4.Message, batch)
	for i := range in {
		in[i].Buffers = [][]byte{make([]byte, readSize+1)}
		if cm.size > 0 {
			in[i].OOB = make([]byte, cm.size)
		}
	}
	out := make([]ipv4.Message, 0, batch)
	replies := make([][]byte, batch)
	for i := range replies {
		replies[i] = make([]byte, 0, replyCap)
	}
	oobs := make([][]byte, batch)
	for {
		n, err := pc.ReadBatch(in, 0)
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			time.Sleep(time.Millisecond) // ENOBUFS and the like: don't spin
			continue
		}
		d := g.door.Load()
		start := time.Now()
		out = out[:0]
		for i := range n {
			m := &in[i]
			b := m.Buffers[0][:m.N]
			if len(b) > readSize {
				b = b[:readSize] // as CoreDNS's server reads it
			}
			addr, _ := m.Addr.(*net.UDPAddr)
			if addr == nil {
				continue
			}
			oob := cm.src(m.OOB[:m.NN])
			if m.N <= readSize {
				if reply, ok := d.hit(b, addr, replies[i][:0], start); ok {
					oobs[i] = oob
					out = append(out, ipv4.Message{Buffers: [][]byte{reply}, Addr: addr, OOB: oobs[i]})
					continue
				}
			}
			g.misses.Add(1)
			d.inflight.Add(1)
			d.miss(c, append([]byte(nil), b...), addr, oob, func() { d.inflight.Add(-1); g.misses.Add(-1) })
		}
		for len(out) > 0 {
			k, err := pc.WriteBatch(out, 0)
			if err != nil {
				break // as a lost datagram: the client asks again
			}
			out = out[k:]
		}
	}
}
