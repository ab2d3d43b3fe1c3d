package unixsock

import (
	"fmt"
	"net"
	"os"
	"syscall"
	"testing"
	"time"

	"github.com/coredns/caddy"
	"github.com/dnscache/dnscache/test/kit"
	"github.com/miekg/dns"
)

// startLoad queries the socket until finished, from one client on a long-lived connection and
// two that open a connection per query, and counts every query that got no NOERROR answer.
func startLoad(path string) *kit.Background {
	next := func(i int) kit.Query { return kit.Query{Name: fmt.Sprintf("r%d.example.", i)} }
	return kit.StartBackground(
		kit.Load{Network: "unix", Addr: path, Timeout: 5 * time.Second, Next: next},
		kit.Load{Network: "unix", Addr: path, Conns: 2, ConnQueries: 1, Timeout: 5 * time.Second, Next: next},
	)
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
	l.WaitOK(t, 50)
	if inst, err = inst.Restart(input(erratic)); err != nil {
		t.Fatal(err)
	}
	l.WaitOK(t, l.OK()+50)
	l.Finish(t)
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
