package racetls

import (
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/dnscache/dnscache/test/lab"
)

// port53Lab starts a lab upstream on port 53 of a random 127/8 address: resolv.conf has
// no port.
func port53Lab(t *testing.T) *lab.Upstream {
	t.Helper()
	var last error
	for range 10 {
		addr := fmt.Sprintf("127.%d.%d.%d:53", 100+rand.IntN(100), rand.IntN(256), 1+rand.IntN(250))
		u, err := lab.Start(lab.Config{UDP: addr, TCP: addr, TLS: "-"})
		if err == nil {
			t.Cleanup(func() { u.Close() })
			return u
		}
		last = err
	}
	t.Skipf("no loopback address with a free port 53 (needs root): %v", last)
	return nil
}

// TestResolvConf: racetls . FILE races the file's nameservers as dns:// upstreams, and
// picks up a change of the file without a reload.
func TestResolvConf(t *testing.T) {
	defer func(d time.Duration) { resolvConfCheck = d }(resolvConfCheck)
	resolvConfCheck = 20 * time.Millisecond
	a, b := port53Lab(t), port53Lab(t)
	host := func(u *lab.Upstream) string { return u.UDPAddr()[:len(u.UDPAddr())-3] }
	path := filepath.Join(t.TempDir(), "resolv.conf")
	write := func(body string) {
		if err := os.WriteFile(path+".new", []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(path+".new", path); err != nil {
			t.Fatal(err)
		}
	}
	write(fmt.Sprintf("search example.com\nnameserver %s\noptions ndots:5\n", host(a)))
	rt := startRT(t, "racetls . "+path+" {\n timeout 500ms\n}")
	if len(rt.ups()) != 1 || rt.ups()[0].name != "dns://"+a.UDPAddr() {
		t.Fatalf("upstreams %v, want dns://%s", names(rt.ups()), a.UDPAddr())
	}
	mustNoError(t, rt, "before.example.com.")
	if a.Count("before.example.com.") != 1 {
		t.Error("the file's nameserver was not asked")
	}

	old := rt.ups()[0]
	write(fmt.Sprintf("nameserver %s\n", host(b)))
	waitFor(t, "the new nameserver", func() bool { return len(rt.ups()) == 1 && rt.ups()[0].name == "dns://"+b.UDPAddr() })
	mustNoError(t, rt, "after.example.com.")
	if a.Count("after.example.com.") != 0 || b.Count("after.example.com.") != 1 {
		t.Errorf("after the change: old nameserver asked %d times, new %d; want 0 and 1", a.Count("after.example.com."), b.Count("after.example.com."))
	}
	// The old upstream is closed once the queries that may have used it are over.
	waitFor(t, "the old upstream closed", func() bool {
		old.mu.Lock()
		defer old.mu.Unlock()
		return old.stopped
	})

	// A file that lists nothing keeps what it had.
	write("# no nameserver\n")
	time.Sleep(10 * resolvConfCheck)
	mustNoError(t, rt, "kept.example.com.")
}
