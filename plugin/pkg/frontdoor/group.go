package frontdoor

import (
	"errors"
	"net"
	"sync"
	"sync/atomic"
	"time"
)

// Group is the front door's sockets on one address. It is opened before CoreDNS binds
// its own socket and, until Serve, steers every datagram to the socket that joins the
// group after ours: CoreDNS's.
type Group struct {
	Addr  string
	conns []*net.UDPConn
	door  atomic.Pointer[Door]
	wg    sync.WaitGroup
	once  sync.Once
	mu    sync.Mutex
	live  bool
	// misses counts the datagrams handed to the server and not yet answered.
	misses atomic.Int64
}

// drainWait is how long Close lets the readers empty their sockets' queues once datagrams
// go elsewhere; missWait bounds its wait for the misses being answered.
const (
	drainWait = 20 * time.Millisecond
	missWait  = 5 * time.Second
)

// Open binds n sockets to addr ("host:port", as the server binds it) that steer every
// datagram to the next socket to join the group.
func Open(addr string, n int) (*Group, error) {
	if n < 1 {
		return nil, errors.New("frontdoor: no sockets")
	}
	g := &Group{Addr: addr}
	for range n {
		c, err := listen(addr)
		if err != nil {
			g.Close()
			return nil, err
		}
		g.conns = append(g.conns, c)
	}
	if err := steer(g.conns[0], uint32(n), 0); err != nil { // #nosec G115 -- a few sockets
		g.Close()
		return nil, err
	}
	return g, nil
}

// Serve makes d the door of g's sockets and starts reading them; called again, it swaps
// the door (a reload) without losing a datagram.
func (g *Group) Serve(d *Door) error {
	d.counters()
	old := g.door.Swap(d)
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.live {
		// A reload: the old door's server is about to shut down (its plugins' OnShutdown
		// follow the cache's, which calls this); let the misses it is answering finish first.
		if old != nil && old != d {
			for end := time.Now().Add(missWait); old.inflight.Load() > 0 && time.Now().Before(end); {
				time.Sleep(time.Millisecond)
			}
		}
		return nil
	}
	if err := steer(g.conns[0], 0, uint32(len(g.conns))); err != nil { // #nosec G115 -- a few sockets
		return err
	}
	g.live = true
	for _, c := range g.conns {
		g.wg.Add(1)
		go func() {
			defer g.wg.Done()
			g.read(c)
		}()
	}
	return nil
}

// Close closes g's sockets; the kernel then hands datagrams to the rest of the group. A
// group that serves first steers datagrams to the socket that joined after ours (CoreDNS's,
// as before Serve), then answers what its sockets hold and waits for the misses being
// answered on them: a datagram queued on a socket that closes would be lost.
func (g *Group) Close() error {
	g.once.Do(func() {
		g.mu.Lock()
		live := g.live
		g.mu.Unlock()
		if live && steer(g.conns[0], uint32(len(g.conns)), 0) == nil { // #nosec G115 -- a few sockets
			time.Sleep(drainWait)
			for end := time.Now().Add(missWait); g.misses.Load() > 0 && time.Now().Before(end); {
				time.Sleep(time.Millisecond)
			}
		}
		for _, c := range g.conns {
			c.Close()
		}
	})
	g.wg.Wait()
	return nil
}

// Sockets returns how many sockets g has.
func (g *Group) Sockets() int { return len(g.conns) }
