package kit

import (
	"bytes"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"text/template"
	"time"
)

// CoreDNS is a bin/coredns child process. Its exported fields are the fields of the
// Corefile template (text/template):
//
//	{{.Port}} DNS port   {{.DNS}} "127.0.0.1:port" (UDP and TCP)   {{.Std}} health+ready+prometheus lines
//	{{.Metrics}} {{.Health}} {{.Ready}} {{.Pprof}} side addresses   {{.Port2}} a spare port
//	{{.Dir}} private directory   {{.Sock}} socket path in it   {{.CA}} {{.Cert}} {{.Key}} PEM paths in it
//
// e.g. ".:{{.Port}} {\n bind 127.0.0.1\n {{.Std}}\n forward . 127.0.0.1:5300\n}".
type CoreDNS struct {
	// Addresses, each "127.0.0.1:port".
	DNS, Metrics, Health, Ready, Pprof string
	// Port is DNS's port, for Corefile keys such as ".:{{.Port}}"; Port2 is a second free
	// port for a second server block.
	Port, Port2 int
	// Dir is a private directory; Sock is a socket path inside it; CA, Cert and Key are file
	// paths inside it that a test may fill (see lab.CA.WriteFiles).
	Dir, Sock, CA, Cert, Key string
	// Std renders the health, ready and prometheus lines on this server's side ports.
	Std string
	// Corefile is the rendered Corefile's path, set by Launch.
	Corefile string
	// Bin is the binary to run (Launch uses FindBinary when empty); Wrap is put before it
	// on the command line (e.g. taskset -c 1).
	Bin  string
	Wrap []string

	// Process is the running server, set by Launch.
	*Process
	text string // the rendered Corefile
}

// NewCoreDNS allocates free ports for a server, in dir or, when dir is empty, in a new
// temporary directory (which the caller removes).
func NewCoreDNS(dir string) (*CoreDNS, error) {
	if dir == "" {
		var err error
		if dir, err = os.MkdirTemp("", "dnscache-coredns-"); err != nil {
			return nil, err
		}
	}
	c := &CoreDNS{
		Dir:  dir,
		Sock: filepath.Join(dir, "dns.sock"),
		CA:   filepath.Join(dir, "ca.pem"),
		Cert: filepath.Join(dir, "cert.pem"),
		Key:  filepath.Join(dir, "key.pem"),
	}
	var err error
	if c.Port, err = Port(); err != nil {
		return nil, err
	}
	c.DNS = "127.0.0.1:" + strconv.Itoa(c.Port)
	if c.Port2, err = Port(); err != nil {
		return nil, err
	}
	for _, a := range []*string{&c.Metrics, &c.Health, &c.Ready, &c.Pprof} {
		if *a, err = Addr(); err != nil {
			return nil, err
		}
	}
	c.Std = fmt.Sprintf("health %s\n    ready %s\n    prometheus %s", c.Health, c.Ready, c.Metrics)
	return c, nil
}

// Render executes corefile as a template over data, or over c when data is nil.
func (c *CoreDNS) Render(corefile string, data any) (string, error) {
	if data == nil {
		data = c
	}
	tmpl, err := template.New("Corefile").Option("missingkey=error").Parse(corefile)
	if err != nil {
		return "", fmt.Errorf("corefile template: %w", err)
	}
	var b bytes.Buffer
	if err := tmpl.Execute(&b, data); err != nil {
		return "", fmt.Errorf("corefile template: %w", err)
	}
	return b.String(), nil
}

// Text returns the Corefile that Launch or ReloadWith last wrote.
func (c *CoreDNS) Text() string { return c.text }

// Launch renders corefile over data (c when nil), writes it to Dir/Corefile and runs the
// server on it. It returns once /ready answers 200 and the server listing is printed, or,
// when the Corefile has no ready plugin on c.Ready, once the listing is printed; or with an
// error, the server stopped, when it exits or is not ready within 30 s.
func (c *CoreDNS) Launch(corefile string, data any) error {
	text, err := c.Render(corefile, data)
	if err != nil {
		return err
	}
	c.text = text
	c.Corefile = filepath.Join(c.Dir, "Corefile")
	if err := os.WriteFile(c.Corefile, []byte(text), 0o644); err != nil {
		return err
	}
	bin := c.Bin
	if bin == "" {
		if bin, err = FindBinary(); err != nil {
			return err
		}
	}
	argv := append(append(append([]string{}, c.Wrap...), bin), "-conf", c.Corefile)
	if c.Process, err = StartProcess("coredns", c.Dir, argv...); err != nil {
		return err
	}
	deadline := time.Now().Add(30 * time.Second)
	useReady := strings.Contains(text, c.Ready)
	for {
		if exited, werr := c.Exited(); exited {
			return fmt.Errorf("coredns exited at start: %v\n%s\nCorefile:\n%s", werr, c.Log(), text)
		}
		// /ready answers before the DNS listeners are bound; the listing comes after.
		banner := strings.Contains(c.Log(), "CoreDNS-")
		if banner && (!useReady || ready(c.Ready)) {
			return nil
		}
		if time.Now().After(deadline) {
			c.Process.Stop(time.Second)
			return fmt.Errorf("coredns not ready after 30s\nCorefile:\n%s\n%s", text, c.Log())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func ready(addr string) bool {
	resp, err := http.Get("http://" + addr + "/ready")
	if err != nil {
		return false
	}
	resp.Body.Close()
	return resp.StatusCode == http.StatusOK
}

// ReloadWith rewrites the Corefile from corefile (rendered over data, c when nil), sends
// SIGUSR1 and waits until CoreDNS reports the reload complete. It returns an error when the
// reload is refused or not done within 20 s.
func (c *CoreDNS) ReloadWith(corefile string, data any) error {
	text, err := c.Render(corefile, data)
	if err != nil {
		return err
	}
	if err := os.WriteFile(c.Corefile, []byte(text), 0o644); err != nil {
		return err
	}
	c.text = text
	const marker, refused = "[INFO] Reloading complete", "[ERROR] SIGUSR1"
	before, errsBefore := strings.Count(c.Log(), marker), strings.Count(c.Log(), refused)
	if err := c.Signal(syscall.SIGUSR1); err != nil {
		return err
	}
	deadline := time.Now().Add(20 * time.Second)
	for {
		out := c.Log()
		if strings.Count(out, refused) > errsBefore {
			return fmt.Errorf("reload failed:\n%s", out)
		}
		if strings.Count(out, marker) > before {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("reload not complete after 20s:\n%s", out)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// FindBinary returns the path of bin/coredns: $DNSCACHE_COREDNS, else <repo>/bin/coredns
// above the working directory. It is an error when the binary is missing: run `make build`.
func FindBinary() (string, error) {
	p := os.Getenv("DNSCACHE_COREDNS")
	if p == "" {
		root, err := FindRepoRoot()
		if err != nil {
			return "", err
		}
		p = filepath.Join(root, "bin", "coredns")
	}
	if _, err := os.Stat(p); err != nil {
		return "", fmt.Errorf("coredns binary: %w (run `make build`)", err)
	}
	return p, nil
}

// FindRepoRoot returns the directory holding go.mod, at or above the working directory.
func FindRepoRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("go.mod not found above the working directory")
		}
		dir = parent
	}
}

// Binary is FindBinary for tests: it fails, not skips, when the binary is missing.
func Binary(t testing.TB) string {
	t.Helper()
	return must[string](t)(FindBinary())
}

// RepoRoot is FindRepoRoot for tests.
func RepoRoot(t testing.TB) string {
	t.Helper()
	return must[string](t)(FindRepoRoot())
}

// must returns a function that returns v, or fails t with err: must(t)(f()).
func must[T any](t testing.TB) func(v T, err error) T {
	t.Helper()
	return func(v T, err error) T {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
}

// Prepare allocates ports and a directory (removed when the test ends) without starting
// anything, so that a test can write files (certificates, zone data) into Dir before Run.
func Prepare(t testing.TB) *CoreDNS {
	t.Helper()
	dir, err := os.MkdirTemp("", "dnscache-e2e-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	return must[*CoreDNS](t)(NewCoreDNS(dir))
}

// Start prepares a server and runs bin/coredns on corefile (see Run).
func Start(t testing.TB, corefile string) *CoreDNS {
	t.Helper()
	c := Prepare(t)
	c.Run(t, corefile)
	return c
}

// Run renders corefile over c and runs bin/coredns on it (see Launch); it fails the test
// when the server does not start. t.Cleanup stops it (Stop) if the test has not.
func (c *CoreDNS) Run(t testing.TB, corefile string) {
	t.Helper()
	if c.Bin == "" {
		c.Bin = Binary(t)
	}
	if err := c.Launch(corefile, nil); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Stop(t) })
}

// Reload rewrites the Corefile and sends SIGUSR1 (see ReloadWith); it fails the test when
// the reload is refused.
func (c *CoreDNS) Reload(t testing.TB, corefile string) {
	t.Helper()
	if err := c.ReloadWith(corefile, nil); err != nil {
		t.Fatal(err)
	}
}

// Stop sends SIGTERM and waits up to 15 s. It fails the test when the server panicked,
// reported a data race, or exited non-zero.
func (c *CoreDNS) Stop(t testing.TB) {
	t.Helper()
	if err := c.Process.Stop(15 * time.Second); err != nil {
		t.Error(err)
	}
}

// Kill ends the server with SIGKILL, as a crash would, and waits for it.
func (c *CoreDNS) Kill(t testing.TB) { c.Process.Kill() }

// ServerFDs returns the number of fds the server process holds.
func (c *CoreDNS) ServerFDs(t testing.TB) int {
	t.Helper()
	return must[int](t)(c.FDs())
}
