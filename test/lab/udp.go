package lab

import (
	"net"

	"github.com/miekg/dns"
)

// serveUDP reads datagrams until pc closes; each query is answered by its own goroutine.
func (u *Upstream) serveUDP(pc net.PacketConn, stop chan struct{}) {
	defer u.wg.Done()
	buf := make([]byte, dns.MaxMsgSize)
	for {
		n, addr, err := pc.ReadFrom(buf)
		if err != nil {
			return
		}
		req := new(dns.Msg)
		if req.Unpack(buf[:n]) != nil || req.Response {
			continue
		}
		u.seen(req, "udp")
		p := u.draw()
		if p.fault == Reset || p.fault == BlackHole {
			continue // no connection to reset: the datagram is lost
		}
		u.wg.Add(1)
		go func() {
			defer u.wg.Done()
			if !wait(p.delay, stop, nil) {
				return
			}
			if _, err := pc.WriteTo(u.reply(req, p.fault, "udp"), addr); err == nil {
				u.stats.replies.Add(1)
			}
		}()
	}
}
