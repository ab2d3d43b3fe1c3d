package unixsock

import (
	"fmt"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/coredns/caddy"
	"github.com/miekg/dns"
)

// load queries the socket from several goroutines until stopped, on fresh connections and on one
// long-lived connection, and counts every query that did not get a NOERROR answer.
type load struct {
	ok, failed atomic.Int64
	stop       chan struct{}
	wg         sync.WaitGroup
	lastErr    atomic.Value
}

func startLoad(path string) *load {
	l := &load{stop: make(chan struct{})}
	one := func(c net.Conn, id uint16) error {
		c.SetDeadline(time.Now().Add(5 * time.Second))
		if _, err := c.Write(frame(query(id, fmt.Sprintf("r%d.example.", id), dns.TypeA))); err != nil {
			return err
		}
		cl := &client{Conn: c}
		m, err := cl.tryRecv()
		if err != nil {
			return err
		}
		if m.Id != id || m.Rcode != dns.RcodeSuccess {
			return fmt.Errorf("reply id %d rcode %d", m.Id, m.Rcode)
		}
		return nil
	}
	worker := func(persistent bool) {
		defer l.wg.Done()
		var c net.Conn
		for i := uint16(1); ; i++ {
			select {
			case <-l.stop:
				if c != nil {
					c.Close()
				}
				return
			default:
			}
			var err error
			if c == nil {
				c, err = net.Dial("unix", path)
			}
			if err == nil {
				err = one(c, i)
			}
			if !persistent && c != nil {
				c.Close()
				c = nil
			}
			if err != nil {
				l.failed.Add(1)
				l.lastErr.Store(err.Error())
				if c != nil {
					c.Close()
					c = nil
				}
				continue
			}
			l.ok.Add(1)
		}
	}
	for i := range 3 {
		l.wg.Add(1)
		go worker(i == 0)
	}
	return l
}

func (l *load) finish(t *testing.T) {
	close(l.stop)
	l.wg.Wait()
	if n := l.failed.Load(); n != 0 {
		t.Errorf("%d of %d queries failed across the reload, last: %v", n, n+l.ok.Load(), l.lastErr.Load())
	}
}

func (l *load) waitFor(n int64) {
	for deadline := time.Now().Add(10 * time.Second); l.ok.Load() < n && time.Now().Before(deadline); {
		time.Sleep(5 * time.Millisecond)
	}
}

func inode(t *testing.T, path string) (uint64, os.FileMode) {
	t.Helper()
	fi, err := os.Lstat(path)
	if err != nil {
		t.Fatal(err)
	}
	return fi.Sys().(*syscall.Stat_t).Ino, fi.Mode().Perm()
}

// ask sends one A query on a fresh connection and returns the reply.
func ask(t *testing.T, path string) *dns.Msg {
	t.Helper()
	c := dial(t, path)
	defer c.Close()
	c.send(query(1, "which.example.", dns.TypeA))
	return c.recv()
}

// servedBy tells the chains apart: erratic answers A 192.0.2.53, whoami answers in Extra.
func servedBy(m *dns.Msg) string {
	if len(m.Answer) == 1 {
		return "erratic"
	}
	return "whoami"
}

func TestReload(t *testing.T) {
	sock, sock2 := sockPath(t), sockPath(t)
	whoami := fmt.Sprintf(".:0 {\nbind 127.0.0.1\nunixsock %s\nwhoami\n}", sock)
	erratic := fmt.Sprintf(".:0 {\nbind 127.0.0.1\nunixsock %s {\nmode 0600\n}\nerratic {\ndrop 0\n}\n}", sock)

	inst, err := caddy.Start(input(whoami))
	if err != nil {
		t.Fatal(err)
	}
	defer func() { stop(inst) }()
	ino, mode := inode(t, sock)
	if mode != 0o666 {
		t.Fatalf("mode %o, want 0666", mode)
	}

	// A reload under load: same socket (inode), new chain and mode, no failed query.
	l := startLoad(sock)
	l.waitFor(50)
	if inst, err = inst.Restart(input(erratic)); err != nil {
		t.Fatal(err)
	}
	before := l.ok.Load()
	l.waitFor(before + 50)
	l.finish(t)
	if ino2, mode2 := inode(t, sock); ino2 != ino || mode2 != 0o600 {
		t.Fatalf("after reload: inode %d mode %o, want inode %d (no rebind) mode 0600", ino2, mode2, ino)
	}
	if got := servedBy(ask(t, sock)); got != "erratic" {
		t.Fatalf("after reload the socket is served by %s", got)
	}

	// A reload that fails after unixsock started (health cannot bind): the old chain keeps the
	// socket and its mode, and the socket the failed Corefile added is gone.
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	failing := fmt.Sprintf(".:0 {\nbind 127.0.0.1\nunixsock %s\nwhoami\nhealth %s\n}\n.:0 {\nbind 127.0.0.2\nunixsock %s\nwhoami\n}", sock, busy.Addr(), sock2)
	if _, err := inst.Restart(input(failing)); err == nil {
		t.Fatal("reload with a busy health port succeeded")
	}
	if got := servedBy(ask(t, sock)); got != "erratic" {
		t.Fatalf("after a failed reload the socket is served by %s", got)
	}
	if ino2, mode2 := inode(t, sock); ino2 != ino || mode2 != 0o600 {
		t.Fatalf("after failed reload: inode %d mode %o", ino2, mode2)
	}
	if _, err := os.Lstat(sock2); !os.IsNotExist(err) {
		t.Fatalf("socket of the failed reload left behind: %v", err)
	}

	// A reload that drops unixsock closes and removes the socket; adding it back binds again.
	if inst, err = inst.Restart(input(".:0 {\nbind 127.0.0.1\nwhoami\n}")); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Lstat(sock); !os.IsNotExist(err) {
		t.Fatalf("socket not removed when unixsock left the Corefile: %v", err)
	}
	if inst, err = inst.Restart(input(whoami)); err != nil {
		t.Fatal(err)
	}
	if got := servedBy(ask(t, sock)); got != "whoami" {
		t.Fatalf("socket served by %s", got)
	}

	// Final shutdown removes the socket file.
	stop(inst)
	if _, err := os.Lstat(sock); !os.IsNotExist(err) {
		t.Fatalf("socket not removed on shutdown: %v", err)
	}
	registry.Lock()
	n := len(registry.m)
	registry.Unlock()
	if n != 0 {
		t.Fatalf("%d listeners left in the registry", n)
	}
}
