package unixsock

import (
	"errors"
	"io"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// pair returns the two ends of a Unix stream connection: the server's, detached, and the
// client's.
func pair(t *testing.T) (*epollConn, *net.UnixConn) {
	t.Helper()
	ln, err := net.ListenUnix("unix", &net.UnixAddr{Name: filepath.Join(t.TempDir(), "s"), Net: "unix"})
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	cl, err := net.DialUnix("unix", nil, ln.Addr().(*net.UnixAddr))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cl.Close() })
	sc, err := ln.AcceptUnix()
	if err != nil {
		t.Fatal(err)
	}
	p := newPoller()
	if p == nil {
		t.Fatal("no poller")
	}
	t.Cleanup(p.close)
	e, ok := detach(sc, p).(*epollConn)
	if !ok {
		sc.Close()
		t.Fatal("detach kept the connection in the netpoller")
	}
	t.Cleanup(func() { e.Close() })
	return e, cl
}

// ready reports whether the poller hands the connection input within d.
func ready(e *epollConn, d time.Duration) bool {
	select {
	case <-e.input:
		return true
	case <-time.After(d):
		return false
	}
}

// TestDetachedQuietOnPeerRead: the client reading a reply does not make the server's side
// ready (the netpoller would be woken for "writable"); the client writing does.
func TestDetachedQuietOnPeerRead(t *testing.T) {
	e, cl := pair(t)
	if _, err := e.Write([]byte("reply")); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 16)
	if n, err := io.ReadFull(cl, buf[:5]); err != nil || string(buf[:n]) != "reply" {
		t.Fatalf("client read %q, %v", buf[:n], err)
	}
	// The poller's goroutine runs within 100 ms unless the machine is very busy, which can only
	// hide a wrong readiness here, not invent one.
	if ready(e, 100*time.Millisecond) {
		t.Fatal("the client's read made the server's side ready")
	}
	if _, err := cl.Write([]byte("query")); err != nil {
		t.Fatal(err)
	}
	if !ready(e, 10*time.Second) {
		t.Fatal("the client's write did not make the server's side ready")
	}
	e.SetReadDeadline(time.Now().Add(10 * time.Second))
	if n, err := e.Read(buf); err != nil || string(buf[:n]) != "query" {
		t.Fatalf("server read %q, %v", buf[:n], err)
	}
}

// TestDetachedDeadlinesAndClose: a read waits for input until its deadline or Close, a write
// to a client that does not read ends at its deadline, and the peer's close is EOF.
func TestDetachedDeadlinesAndClose(t *testing.T) {
	e, cl := pair(t)
	buf := make([]byte, 16)

	e.SetReadDeadline(time.Now().Add(50 * time.Millisecond))
	if _, err := e.Read(buf); !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("read past its deadline: %v", err)
	}

	e.SetWriteDeadline(time.Now().Add(100 * time.Millisecond))
	big := make([]byte, 1<<20)
	var err error
	for range 64 {
		if _, err = e.Write(big); err != nil {
			break
		}
	}
	if !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("writes to a client that does not read: %v, want the write deadline", err)
	}

	e.SetReadDeadline(time.Time{})
	done := make(chan error, 1)
	go func() {
		_, err := e.Read(buf)
		done <- err
	}()
	time.Sleep(20 * time.Millisecond) // the read waits (a race here only makes the test weaker)
	e.Close()
	select {
	case err := <-done:
		if !errors.Is(err, net.ErrClosed) {
			t.Fatalf("read during Close: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Close did not end a waiting read")
	}
	if _, err := e.Write([]byte("x")); !errors.Is(err, net.ErrClosed) {
		t.Fatalf("write after Close: %v", err)
	}

	e2, cl2 := pair(t)
	cl2.Close()
	e2.SetReadDeadline(time.Now().Add(10 * time.Second))
	if _, err := e2.Read(buf); err != io.EOF {
		t.Fatalf("read after the peer closed: %v, want EOF", err)
	}
	_ = cl
}
