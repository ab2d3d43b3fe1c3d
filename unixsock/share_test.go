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
// once, while a client of another uid is answered; each uid has its own share, and
// max_connections still bounds them all.
func TestConnShare(t *testing.T) {
	sock := sharedSockPath(t)
	start(t, fmt.Sprintf(".:0 {\nbind 127.0.0.1\nunixsock %s {\nmax_connections 4\nmax_connections_per_uid 2\n}\nwhoami\n}", sock))
	errs := func(kind string) float64 { return value(errorsCount.WithLabelValues("unix://"+sock, kind)) }
	share, global := errs("max_connections_per_uid"), errs("max_connections")

	a, b := dial(t, sock), dial(t, sock) // uid 0, the test's own
	served(t, a, 1, "uid 0, first")
	served(t, b, 2, "uid 0, second")
	if !dial(t, sock).closed() {
		t.Fatal("uid 0's third connection was not closed: it holds max_connections_per_uid 2")
	}
	if got := errs("max_connections_per_uid"); got != share+1 {
		t.Errorf("max_connections_per_uid errors = %v, want %v", got, share+1)
	}

	// Another uid is let in while uid 0 holds its share, up to its own share.
	served(t, dialAs(t, 65534, sock), 3, "uid 65534, first")
	served(t, dialAs(t, 65534, sock), 4, "uid 65534, second")
	if !dialAs(t, 65534, sock).closed() {
		t.Fatal("uid 65534's third connection was not closed: it holds max_connections_per_uid 2")
	}
	if got := errs("max_connections_per_uid"); got != share+2 {
		t.Errorf("max_connections_per_uid errors = %v, want %v", got, share+2)
	}

	// Four are open: a third uid meets max_connections.
	if !dialAs(t, 65533, sock).closed() {
		t.Fatal("a connection over max_connections was not closed")
	}
	if got := errs("max_connections"); got != global+1 {
		t.Errorf("max_connections errors = %v, want %v", got, global+1)
	}

	// Closing one of uid 0's makes room for uid 0 again.
	a.Close()
	for i := range 100 {
		c := dial(t, sock)
		c.send(query(uint16(100+i), "again.example.", dns.TypeA))
		if m, err := c.tryRecv(); err == nil && m.Id == uint16(100+i) {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatal("uid 0 not let in again after closing one of its connections")
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
