package unixsock

import (
	"net"
	"os"
	"strings"
	"testing"
)

func TestListenStaleSocket(t *testing.T) {
	path := sockPath(t)
	// A socket file left behind by a dead server: nobody listens.
	old, err := net.ListenUnix("unix", &net.UnixAddr{Name: path, Net: "unix"})
	if err != nil {
		t.Fatal(err)
	}
	old.SetUnlinkOnClose(false)
	old.Close()

	l, err := listen(path, 0o640)
	if err != nil {
		t.Fatalf("stale socket not replaced: %v", err)
	}
	fi, err := os.Lstat(path)
	if err != nil || fi.Mode()&os.ModeSocket == 0 || fi.Mode().Perm() != 0o640 {
		t.Fatalf("want a socket with mode 0640, got %v %v", fi.Mode(), err)
	}
	if err := l.close(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Lstat(path); !os.IsNotExist(err) {
		t.Fatalf("socket file not removed on close: %v", err)
	}
}

func TestListenLiveSocket(t *testing.T) {
	path := sockPath(t)
	live, err := net.ListenUnix("unix", &net.UnixAddr{Name: path, Net: "unix"})
	if err != nil {
		t.Fatal(err)
	}
	defer live.Close()

	if _, err := listen(path, 0o666); err == nil || !strings.Contains(err.Error(), "another server is listening") {
		t.Fatalf("want an error for a live socket, got %v", err)
	}
	// Still there and still answering.
	c, err := net.Dial("unix", path)
	if err != nil {
		t.Fatalf("live socket was disturbed: %v", err)
	}
	c.Close()
}

func TestListenNotASocket(t *testing.T) {
	path := sockPath(t)
	if err := os.WriteFile(path, []byte("precious"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := listen(path, 0o666); err == nil || !strings.Contains(err.Error(), "not a socket") {
		t.Fatalf("want a not-a-socket error, got %v", err)
	}
	if b, err := os.ReadFile(path); err != nil || string(b) != "precious" {
		t.Fatalf("file was touched: %q %v", b, err)
	}
}

func TestListenMissingDir(t *testing.T) {
	if _, err := listen(t.TempDir()+"/missing/dns.sock", 0o666); err == nil {
		t.Fatal("want an error when the directory does not exist")
	}
}

func TestCloseKeepsForeignSocket(t *testing.T) {
	path := sockPath(t)
	l, err := listen(path, 0o666)
	if err != nil {
		t.Fatal(err)
	}
	// Someone replaced the file (another server took the path): close must not remove theirs.
	os.Remove(path)
	other, err := net.ListenUnix("unix", &net.UnixAddr{Name: path, Net: "unix"})
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	l.close()
	if _, err := os.Lstat(path); err != nil {
		t.Fatalf("foreign socket removed: %v", err)
	}
}
