package unixsock

import (
	"fmt"
	"sync"
	"time"

	"github.com/coredns/caddy"
	"github.com/coredns/coredns/core/dnsserver"
	clog "github.com/coredns/coredns/plugin/pkg/log"
)

// A reload builds a new instance while the old one serves. The socket must stay bound throughout,
// so listeners live in a package registry keyed by path, outside any instance. A listener has an
// owner (the Unixsock whose server answers its queries) and, during a start or reload, a next
// owner:
//
//   - OnStartup of the new instance records itself as next, binding the socket if it is new (so
//     a bind error fails the start). Its chain is not served yet: the other plugins' OnStartup
//     callbacks have not run.
//   - When the start has succeeded, next becomes owner: in OnShutdown of the old instance (which
//     caddy runs once the new instance serves, before the old plugins shut down), or on caddy's
//     InstanceStartupEvent for sockets the old instance did not have. A new socket starts
//     accepting then; until then connections wait in the backlog, they are not refused.
//   - OnRestartFailed of the old instance forgets next, and closes a socket only the failed
//     instance had.
//   - OnShutdown of an owner that no instance replaces (the path left the Corefile, or final
//     shutdown) closes the socket and removes its file.
var registry = struct {
	sync.Mutex
	m map[string]*listener
}{m: map[string]*listener{}}

// OnStartup builds the server that queries are dispatched to, and binds the socket if no earlier
// instance has it.
func (u *Unixsock) OnStartup() error {
	// NewServer runs the block's plugin constructors once more, as multisocket does for each extra
	// socket. It also sets the process-wide debug flag from our block alone: keep another
	// block's debug.
	debug := clog.D.Value()
	srv, err := dnsserver.NewServer(u.addr, u.configs)
	if debug {
		clog.D.Set()
	}
	if err != nil {
		return fmt.Errorf("plugin/%s: %s - %w", name, u.at, err)
	}
	u.srv = srv
	u.prepareDoor()
	if u.door != nil {
		log.Infof("Front door of %s: on", u.addr)
	} else {
		log.Infof("Front door of %s: off (%s)", u.addr, u.doorWhy)
	}

	registry.Lock()
	defer registry.Unlock()
	if l, ok := registry.m[u.path]; ok {
		l.next = u
		return nil
	}
	l, err := listen(u.path, u.opts.mode)
	if err != nil {
		return fmt.Errorf("plugin/%s: %s - %w", name, u.at, err)
	}
	l.next = u
	registry.m[u.path] = l
	return nil
}

// OnRestartFailed forgets what the failed new instance prepared.
func (u *Unixsock) OnRestartFailed() error {
	rollback()
	return nil
}

// OnShutdown hands the socket to the new instance, or closes it if there is none.
func (u *Unixsock) OnShutdown() error {
	registry.Lock()
	l, ok := registry.m[u.path]
	if !ok || l.owner.Load() != u {
		registry.Unlock()
		return nil
	}
	if l.next != nil {
		l.promote()
		registry.Unlock()
		// Queries already in our chain finish before our plugins' OnShutdown runs.
		if !u.gate.close(graceTimeout) {
			log.Warningf("Reloaded with queries still in flight in the old chain of %s", u.path)
		}
		return nil
	}
	delete(registry.m, u.path)
	registry.Unlock()
	return l.close()
}

func rollback() {
	var closing []*listener
	registry.Lock()
	for path, l := range registry.m {
		if l.next == nil {
			continue
		}
		l.next = nil
		if l.owner.Load() == nil {
			delete(registry.m, path)
			closing = append(closing, l)
		}
	}
	registry.Unlock()
	for _, l := range closing {
		l.close()
	}
}

func commit() {
	registry.Lock()
	defer registry.Unlock()
	for _, l := range registry.m {
		if l.next != nil {
			l.promote()
		}
	}
}

func commitHook(event caddy.EventName, _ any) error {
	if event == caddy.InstanceStartupEvent {
		commit()
	}
	return nil
}

// gate counts the queries in a Unixsock's chain, and lets its shutdown wait for them.
type gate struct {
	mu     sync.Mutex
	n      int
	closed bool
	done   chan struct{}
}

func newGate() *gate { return &gate{done: make(chan struct{})} }

// enter reports false once the gate is closed.
func (g *gate) enter() bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.closed {
		return false
	}
	g.n++
	return true
}

func (g *gate) leave() {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.n--
	if g.closed && g.n == 0 {
		close(g.done)
	}
}

// close refuses new queries and waits up to timeout for those inside; it reports whether they
// all left.
func (g *gate) close(timeout time.Duration) bool {
	g.mu.Lock()
	if !g.closed {
		g.closed = true
		if g.n == 0 {
			close(g.done)
		}
	}
	g.mu.Unlock()
	t := time.NewTimer(timeout)
	defer t.Stop()
	select {
	case <-g.done:
		return true
	case <-t.C:
		return false
	}
}
