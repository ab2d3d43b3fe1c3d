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
// reply leaves from the address its query came to.
type cmsg struct {
	v6   bool
	size int
}

func (m cmsg) src(oob []byte) []byte {
	if len(oob) == 0 {
		return nil
	}
	if m.v6 {
		var cm ipv6.ControlMessage
		if cm.Parse(oob) != nil || cm.Dst == nil {
			return nil
		}
		return (&ipv6.ControlMessage{Src: cm.Dst, IfIndex: cm.IfIndex}).Marshal()
	}
	var cm ipv4.ControlMessage
	if cm.Parse(oob) != nil || cm.Dst == nil {
		return nil
	}
	return (&ipv4.ControlMessage{Src: cm.Dst, IfIndex: cm.IfIndex}).Marshal()
}

// open prepares c for batches and, when it is bound to a wildcard address, packet info.
func open(c *net.UDPConn) (batchConn, cmsg) {
	la, _ := c.LocalAddr().(*net.UDPAddr)
	v6 := la != nil && la.IP.To4() == nil
	wild := la == nil || la.IP.IsUnspecified()
	if v6 {
		p := ipv6.NewPacketConn(c)
		if wild && p.SetControlMessage(ipv6.FlagDst|ipv6.FlagInterface, true) == nil {
			return p, cmsg{v6: true, size: len(ipv6.NewControlMessage(ipv6.FlagDst | ipv6.FlagInterface))}
		}
		return p, cmsg{v6: true}
	}
	p := ipv4.NewPacketConn(c)
	if wild && p.SetControlMessage(ipv4.FlagDst|ipv4.FlagInterface, true) == nil {
		return p, cmsg{size: len(ipv4.NewControlMessage(ipv4.FlagDst | ipv4.FlagInterface))}
	}
	return p, cmsg{}
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
			d.miss(c, append([]byte(nil), b...), addr, oob, func() { g.misses.Add(-1) })
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
