package unixsock

import (
	"bytes"
	"fmt"
	"net"
	"os"
	"os/exec"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/miekg/dns"
)

// TestConnShare: a uid that holds max_connections_per_uid has its new connections closed at
// once, while clients of other uids are answered; each uid has its own share. When
// max_connections are open, a newcomer of a uid that holds at least two fewer than the uids that
// hold the most takes the place of the connection of theirs that has been idle the longest.
func TestConnShare(t *testing.T) {
	sock := sharedSockPath(t)
	start(t, fmt.Sprintf(".:0 {\nbind 127.0.0.1\nunixsock %s {\nmax_connections 5\nmax_connections_per_uid 2\n}\nwhoami\n}", sock))
	errs := func(kind string) float64 { return value(errorsCount.WithLabelValues("unix://"+sock, kind)) }
	share, global, evicted := errs("max_connections_per_uid"), errs("max_connections"), errs("evicted")
	check := func(kind string, base, n float64) {
		t.Helper()
		if got := errs(kind); got != base+n {
			t.Errorf("%s errors = %v, want %v", kind, got, base+n)
		}
	}

	a, b := dial(t, sock), dial(t, sock) // uid 0, the test's own
	served(t, a, 1, "uid 0, first")
	served(t, b, 2, "uid 0, second")
	if !dial(t, sock).closed() {
		t.Fatal("uid 0's third connection was not closed: it holds max_connections_per_uid 2")
	}
	check("max_connections_per_uid", share, 1)

	// Another uid is let in while uid 0 holds its share, up to its own share.
	n1 := dialAs(t, 65534, sock)
	served(t, n1, 3, "uid 65534, first")
	served(t, dialAs(t, 65534, sock), 4, "uid 65534, second")
	if !dialAs(t, 65534, sock).closed() {
		t.Fatal("uid 65534's third connection was not closed: it holds max_connections_per_uid 2")
	}
	check("max_connections_per_uid", share, 2)

	// The fifth fills max_connections; a uid that holds one may not take the place of one that
	// holds two.
	served(t, dialAs(t, 65533, sock), 5, "uid 65533, first")
	if !dialAs(t, 65533, sock).closed() {
		t.Fatal("uid 65533's second connection was not closed: max_connections are open")
	}
	check("max_connections", global, 1)
	check("evicted", evicted, 0)

	// A new uid takes the place of the longest idle connection of those that hold two: uid 0's
	// first, then uid 65534's first.
	served(t, dialAs(t, 65532, sock), 6, "uid 65532")
	if !a.closed() {
		t.Fatal("uid 0's longest idle connection was not closed for uid 65532")
	}
	served(t, dialAs(t, 65531, sock), 7, "uid 65531")
	if !n1.closed() {
		t.Fatal("uid 65534's longest idle connection was not closed for uid 65531")
	}
	check("evicted", evicted, 2)
	served(t, b, 8, "uid 0, second, after the evictions")
	// Every uid holds one: nobody gives way.
	if !dialAs(t, 65530, sock).closed() {
		t.Fatal("a connection over max_connections was let in while every uid holds one")
	}
	check("max_connections", global, 2)
	check("evicted", evicted, 2)

	// Closing uid 0's makes room again.
	b.Close()
	for i := range 100 {
		// Until the server has seen b's close, it closes the new connection at once, and the
		// write may meet the closed end (EPIPE): that is a retry, not a failure.
		c := dial(t, sock)
		if _, err := c.Write(frame(query(uint16(100+i), "again.example.", dns.TypeA))); err == nil {
			if m, err := c.tryRecv(); err == nil && m.Id == uint16(100+i) {
				return
			}
		}
		c.Close()
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatal("uid 0 not let in again after closing one of its connections")
}

// TestConnShareBusy: a connection with a query in flight is not evicted. With the share as large
// as max_connections, eviction alone keeps a uid from locking the others out, once its
// connections are idle.
func TestConnShareBusy(t *testing.T) {
	up := upstream(t, time.Second)
	sock := sharedSockPath(t)
	start(t, fmt.Sprintf(".:0 {\nbind 127.0.0.1\nunixsock %s {\nmax_connections 2\nmax_connections_per_uid 2\n}\nforward . %s\n}", sock, up))

	a, b := dial(t, sock), dial(t, sock)
	served(t, a, 1, "uid 0, first")
	served(t, b, 2, "uid 0, second")
	a.send(query(3, "slow1.example.", dns.TypeA))
	b.send(query(4, "slow2.example.", dns.TypeA))
	time.Sleep(100 * time.Millisecond) // both read and in the chain (the upstream answers after 1 s)
	if !dialAs(t, 65534, sock).closed() {
		t.Fatal("a connection with a query in flight was evicted")
	}
	for _, c := range []*client{a, b} {
		if m, err := c.tryRecv(); err != nil || len(m.Answer) != 1 {
			t.Fatalf("query in flight not answered: %v %v", m, err)
		}
	}
	served(t, b, 5, "uid 0, second") // now a is idle the longest
	served(t, dialAs(t, 65534, sock), 6, "uid 65534, once uid 0's connections are idle")
	if !a.closed() {
		t.Fatal("uid 0's longest idle connection was not closed for uid 65534")
	}
	served(t, b, 7, "uid 0, second, after the eviction")
}

// TestConnShareDefault: without max_connections_per_uid, a uid gets half of max_connections
// (rounded up), and another uid is answered while it holds them.
func TestConnShareDefault(t *testing.T) {
	sock := sharedSockPath(t)
	start(t, fmt.Sprintf(".:0 {\nbind 127.0.0.1\nunixsock %s {\nmax_connections 3\n}\nwhoami\n}", sock))

	served(t, dial(t, sock), 1, "uid 0, first")
	served(t, dial(t, sock), 2, "uid 0, second")
	if !dial(t, sock).closed() {
		t.Fatal("uid 0's third connection was not closed: the default share of max_connections 3 is 2")
	}
	served(t, dialAs(t, 65534, sock), 3, "uid 65534")
}

// served sends one query on c and checks that it is answered.
func served(t *testing.T, c *client, id uint16, who string) {
	t.Helper()
	c.send(query(id, "share.example.", dns.TypeA))
	m, err := c.tryRecv()
	if err != nil || m.Id != id || m.Rcode != dns.RcodeSuccess {
		t.Fatalf("%s: not answered: %v %v", who, m, err)
	}
}

// sharedSockPath returns a socket path in a fresh directory that other uids may traverse.
func sharedSockPath(t *testing.T) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "unixsock-share-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	if err := os.Chmod(dir, 0o711); err != nil {
		t.Fatal(err)
	}
	return dir + "/dns.sock"
}

// dialAs connects to path from a process of another uid: socat, run by setpriv as uid (gid the
// same, no supplementary groups), relays between its stdin/stdout, our pipes, and the socket,
// so the server reads uid with SO_PEERCRED. Only root may run a process as another uid.
func dialAs(t *testing.T, uid int, path string) *client {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("running a client as another uid needs root")
	}
	inR, inW, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	outR, outW, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	id := strconv.Itoa(uid)
	p := &pipeConn{r: outR, w: inW}
	p.cmd = exec.Command("setpriv", "--reuid="+id, "--regid="+id, "--clear-groups", "socat", "-", "UNIX-CONNECT:"+path)
	p.cmd.Stdin, p.cmd.Stdout, p.cmd.Stderr = inR, outW, &p.stderr
	err = p.cmd.Start()
	inR.Close()
	outW.Close()
	if err != nil {
		inW.Close()
		outR.Close()
		t.Fatalf("setpriv socat (install socat, scripts/deps.sh): %v", err)
	}
	t.Cleanup(func() {
		p.Close()
		t.Logf("socat as uid %d: %s; %s", uid, p.cmd.ProcessState, bytes.TrimSpace(p.stderr.Bytes()))
	})
	return &client{t: t, Conn: p}
}

// pipeConn is a net.Conn over the pipes to a relay process.
type pipeConn struct {
	r, w   *os.File
	cmd    *exec.Cmd
	stderr bytes.Buffer // written by exec's copier until Wait returns
	once   sync.Once
}

func (p *pipeConn) Read(b []byte) (int, error)  { return p.r.Read(b) }
func (p *pipeConn) Write(b []byte) (int, error) { return p.w.Write(b) }

// Close closes the relay's stdin, which makes it close the socket and exit; it is killed (by its
// PID) if it has not within 5 s.
func (p *pipeConn) Close() error {
	p.once.Do(func() {
		p.w.Close()
		done := make(chan struct{})
		go func() { p.cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			p.cmd.Process.Kill()
			<-done
		}
		p.r.Close()
	})
	return nil
}

func (p *pipeConn) LocalAddr() net.Addr                { return &net.UnixAddr{Net: "unix"} }
func (p *pipeConn) RemoteAddr() net.Addr               { return &net.UnixAddr{Net: "unix"} }
func (p *pipeConn) SetDeadline(t time.Time) error      { return p.r.SetDeadline(t) }
func (p *pipeConn) SetReadDeadline(t time.Time) error  { return p.r.SetReadDeadline(t) }
func (p *pipeConn) SetWriteDeadline(t time.Time) error { return p.w.SetWriteDeadline(t) }
