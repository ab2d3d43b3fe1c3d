package unixsock

import (
	"fmt"
	golog "log"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/coredns/caddy"
	_ "github.com/coredns/coredns/plugin/view"

	"github.com/miekg/dns"
)

// TestBlocksSharingSocket: three blocks on one address name the socket. A socket query is routed
// between them as the port routes it: by zone, then by view in Corefile order, falling through
// to the next block where a view does not match. Each block's log tells which one served, and the
// later blocks publish the peer's metadata too.
func TestBlocksSharingSocket(t *testing.T) {
	var buf syncBuffer
	golog.SetOutput(&buf)
	t.Cleanup(func() { golog.SetOutput(os.Stderr) })

	sock := sockPath(t)
	start(t, fmt.Sprintf(`a.example.:0 {
	bind 127.0.0.1
	unixsock %[1]s {
		max_inflight 8
	}
	metadata
	log . "block=a {name} pid={/unixsock/pid}"
	whoami
}
.:0 {
	bind 127.0.0.1
	view v {
		expr name() == 'v.example.'
	}
	unixsock %[1]s
	metadata
	log . "block=view {name} pid={/unixsock/pid}"
	whoami
}
.:0 {
	bind 127.0.0.1
	unixsock %[1]s
	metadata
	log . "block=dot {name} pid={/unixsock/pid}"
	whoami
}`, sock))
	c := dial(t, sock)
	for i, tc := range []struct{ qname, block string }{
		{"x.a.example.", "a"},
		{"v.example.", "view"},
		{"other.example.", "dot"},
	} {
		c.send(query(uint16(i+1), tc.qname, dns.TypeA))
		if r := c.recv(); r.Rcode != dns.RcodeSuccess {
			t.Fatalf("%s: %s", tc.qname, dns.RcodeToString[r.Rcode])
		}
		want := fmt.Sprintf("block=%s %s pid=%d", tc.block, tc.qname, os.Getpid())
		for deadline := time.Now().Add(5 * time.Second); !strings.Contains(buf.String(), want); time.Sleep(10 * time.Millisecond) {
			if time.Now().After(deadline) {
				t.Fatalf("log does not contain %q:\n%s", want, buf.String())
			}
		}
	}
}

// TestBlocksSharingSocketOptions: the options of a shared socket are given in the first block
// that names it; different ones in a later block are an error with the line.
func TestBlocksSharingSocketOptions(t *testing.T) {
	sock := sockPath(t)
	_, err := caddy.Start(input(fmt.Sprintf(".:0 {\nbind 127.0.0.1\nunixsock %[1]s\nwhoami\n}\na.example.:0 {\nbind 127.0.0.1\nunixsock %[1]s {\nmode 0600\n}\nwhoami\n}", sock)))
	if err == nil || !strings.Contains(err.Error(), "options differ") || !strings.Contains(err.Error(), "Corefile:8 - ") || !strings.Contains(err.Error(), "Corefile:3") {
		t.Fatalf("want an error at the second block's directive (line 8) naming the first (line 3), got %v", err)
	}
	if _, err := os.Lstat(sock); !os.IsNotExist(err) {
		t.Errorf("a failed start left the socket file: %v", err)
	}
}
