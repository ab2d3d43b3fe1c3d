package lab

import (
	"encoding/binary"
	"errors"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/miekg/dns"
)

func TestUnix(t *testing.T) {
	path := filepath.Join(t.TempDir(), "lab.sock")
	u := start(t, Config{Unix: path, Latency: Latency{Median: time.Millisecond}})
	if u.UnixPath() != path {
		t.Fatalf("UnixPath %q, want %q", u.UnixPath(), path)
	}
	c, err := net.Dial("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	for i := range 3 { // pipelined on one connection
		send(t, c, uint16(10+i), "Host.Example.")
	}
	for range 3 {
		b, err := recv(c, 2*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		r := new(dns.Msg)
		if err := r.Unpack(b); err != nil {
			t.Fatal(err)
		}
		if id := binary.BigEndian.Uint16(b); id < 10 || id > 12 || len(r.Answer) != 1 || !r.Answer[0].(*dns.A).A.Equal(AddrA("host.example.")) {
			t.Errorf("reply %v", r)
		}
	}
	if s := u.Stats(); s.QueriesUnix != 3 || s.Conns != 1 {
		t.Errorf("stats %+v, want 3 Unix queries on 1 connection", s)
	}

	u.Down()
	if _, err := os.Stat(path); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("socket file after Down: %v", err)
	}
	if _, err := net.Dial("unix", path); err == nil {
		t.Errorf("dial while down succeeded")
	}
	// A stale file (a crashed run) does not stop Up.
	if err := os.WriteFile(path, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := u.Up(); err != nil {
		t.Fatal(err)
	}
	c2, err := net.Dial("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	defer c2.Close()
	send(t, c2, 1, "www.example.")
	if _, err := recv(c2, 2*time.Second); err != nil {
		t.Fatal(err)
	}
}

// TestHalfClose: a client that shuts its write side after the last query still gets replies.
func TestHalfClose(t *testing.T) {
	u := start(t, Config{Latency: Latency{Median: 50 * time.Millisecond}})
	c := dialStream(t, u, "tcp")
	send(t, c, 1, "www.example.")
	send(t, c, 2, "www.example.")
	if err := c.(*net.TCPConn).CloseWrite(); err != nil {
		t.Fatal(err)
	}
	for range 2 {
		if _, err := recv(c, 2*time.Second); err != nil {
			t.Fatal(err)
		}
	}
}
