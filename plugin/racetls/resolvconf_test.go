package racetls

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/dnscache/dnscache/test/lab"
)

// TestResolvConf: racetls . FILE races the file's nameservers as dns:// upstreams, and
// picks up a change of the file without a reload.
func TestResolvConf(t *testing.T) {
	defer func(d time.Duration) { resolvConfCheck = d }(resolvConfCheck)
	resolvConfCheck = 20 * time.Millisecond
	a, b := lab.StartPort53(t), lab.StartPort53(t)
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
