package unixsock

import (
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	clog "github.com/coredns/coredns/plugin/pkg/log"
)

var log = clog.NewWithPlugin(name)

// graceTimeout bounds how long close waits for queries in flight, as dnsserver.Server does.
const graceTimeout = 5 * time.Second

// listener is one bound socket. It outlives reloads: owner is the Unixsock whose server and
// options apply to the next connection and the next query.
type listener struct {
	path string
	ln   *net.UnixListener
	fi   os.FileInfo // the socket file we created; only that one is removed

	owner atomic.Pointer[Unixsock]

	// guarded by registry's lock
	next    *Unixsock // the owner once the instance starting now has started
	started bool

	mu     sync.Mutex
	conns  map[*conn]struct{} // every connection until its goroutine ends, evicted ones too
	open   int                // connections counted by max_connections: not evicted
	uids   map[int64]int      // open by peer uid; -1: credentials unknown (share.go)
	closed bool
	seq    uint16    // numbers connections: the synthetic remote port
	warned time.Time // the last warning about a uid at its share

	wg sync.WaitGroup // accept loop and connections

	poll *poller // the connections' epoll set (stream_linux.go); nil: they stay in the netpoller
}

// listen binds path after removing a stale socket file, and sets its mode.
func listen(path string, mode os.FileMode) (*listener, error) {
	if err := removeStale(path); err != nil {
		return nil, err
	}
	ln, err := net.ListenUnix("unix", &net.UnixAddr{Name: path, Net: "unix"})
	if err != nil {
		if _, e := os.Stat(filepath.Dir(path)); errors.Is(e, os.ErrNotExist) {
			return nil, fmt.Errorf("socket %s: directory %s does not exist", path, filepath.Dir(path))
		}
		return nil, err
	}
	// We remove the file ourselves, and only if it is still ours.
	ln.SetUnlinkOnClose(false)
	fail := func(err error) (*listener, error) {
		ln.Close()
		os.Remove(path)
		return nil, err
	}
	if err := os.Chmod(path, mode); err != nil {
		return fail(err)
	}
	fi, err := os.Lstat(path)
	if err != nil {
		return fail(err)
	}
	return &listener{path: path, ln: ln, fi: fi, conns: map[*conn]struct{}{}, uids: map[int64]int{}, poll: newPoller()}, nil
}

// removeStale removes a socket file nobody listens on. A live socket, or anything else at the
// path, is an error: never take a path from a running server or delete a user's file.
func removeStale(path string) error {
	fi, err := os.Lstat(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	if fi.Mode()&os.ModeSocket == 0 {
		return fmt.Errorf("%s exists and is not a socket", path)
	}
	c, err := net.DialTimeout("unix", path, time.Second)
	if err == nil {
		c.Close()
		return fmt.Errorf("%s: another server is listening on this socket", path)
	}
	if !errors.Is(err, syscall.ECONNREFUSED) {
		// EAGAIN (full backlog) means alive; EACCES means we cannot tell. Leave it.
		return fmt.Errorf("%s: cannot tell whether the socket is stale: %w", path, err)
	}
	log.Infof("Removing stale socket %s", path)
	if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	return nil
}

// promote makes next the owner: new queries go to its server with its options. A new socket
// starts accepting.
func (l *listener) promote() {
	u := l.next
	l.next = nil
	l.owner.Store(u)
	if err := os.Chmod(l.path, u.opts.mode); err != nil {
		log.Errorf("Setting the mode of %s: %v", l.path, err)
	}
	if !l.started {
		l.started = true
		l.start()
	}
}

func (l *listener) start() {
	l.wg.Add(1)
	go l.accept()
}

func (l *listener) accept() {
	defer l.wg.Done()
	var delay time.Duration
	for {
		c, err := l.ln.AcceptUnix()
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			// EMFILE and friends: back off as net/http does, never spin.
			errorsCount.WithLabelValues(l.owner.Load().addr, "accept").Inc()
			delay = min(max(2*delay, 5*time.Millisecond), time.Second)
			time.Sleep(delay)
			continue
		}
		delay = 0
		l.serve(c)
	}
}

// serve starts a goroutine for c, or closes it at once when admit says no: the client then falls
// back at once instead of waiting in the backlog.
func (l *listener) serve(c *net.UnixConn) {
	u := l.owner.Load()
	connectionsTotal.WithLabelValues(u.addr).Inc()
	p := newPeer(c, l.path)
	l.mu.Lock()
	if kind := l.admit(u, p); kind != "" {
		l.mu.Unlock()
		errorsCount.WithLabelValues(u.addr, kind).Inc()
		c.Close()
		return
	}
	l.seq++
	if l.seq == 0 {
		l.seq = 1
	}
	cn := newConn(l, detach(c, l.poll), u, p, l.seq)
	l.conns[cn] = struct{}{}
	l.open++
	l.uids[cn.uid]++
	l.wg.Add(1)
	l.mu.Unlock()

	connections.WithLabelValues(u.addr).Inc()
	go func() {
		defer l.wg.Done()
		cn.serve()
		l.mu.Lock()
		delete(l.conns, cn)
		l.release(cn)
		l.mu.Unlock()
		connections.WithLabelValues(u.addr).Dec()
	}()
}

// close stops accepting, lets queries in flight finish (up to graceTimeout), closes every
// connection and removes the socket file if it is still the one we bound.
func (l *listener) close() error {
	l.mu.Lock()
	l.closed = true
	l.mu.Unlock()
	err := l.ln.Close()
	if fi, e := os.Lstat(l.path); e == nil && os.SameFile(fi, l.fi) {
		os.Remove(l.path)
	}

	l.mu.Lock()
	for c := range l.conns {
		c.stopReading()
	}
	l.mu.Unlock()

	done := make(chan struct{})
	go func() { l.wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(graceTimeout):
		// Queries stuck in the chain: close their connections; their writes fail when they return.
		l.mu.Lock()
		for c := range l.conns {
			c.close()
		}
		l.mu.Unlock()
		log.Warningf("Closed %s with queries still in flight", l.path)
	}
	if l.poll != nil {
		l.poll.close()
	}
	return err
}
