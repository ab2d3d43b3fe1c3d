// Package harness runs the built bin/coredns as a child process for end-to-end tests: it
// renders a Corefile template on free loopback ports, waits for readiness, queries the server
// with real clients (kdig, dig) and a Go client, scrapes /metrics and stops the server
// cleanly, failing the test on a panic, a data race or a non-zero exit.
package harness

import (
	"bytes"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"text/template"
	"time"
)

// Server is a running bin/coredns.
type Server struct {
	// Addresses, each "127.0.0.1:port". DNS serves both UDP and TCP.
	DNS, Metrics, Health, Ready string
	// Port is DNS's port, for Corefile keys such as ".:{{.Port}}".
	Port int
	// Dir is a private temporary directory; Sock is a socket path inside it; CA, Cert and Key
	// are file paths inside it that a test may fill (see lab.CA.WriteFiles).
	Dir, Sock, CA, Cert, Key string
	// Std renders the health, ready and prometheus lines on this server's side ports.
	Std string

	Corefile string // the rendered Corefile's path

	cmd      *exec.Cmd
	out      *syncBuffer
	done     chan struct{}
	waitErr  error
	stopOnce sync.Once
}

// Binary returns the path of bin/coredns: $DNSCACHE_COREDNS, else <repo>/bin/coredns. It
// fails the test when the binary is missing: run `make build`.
func Binary(t testing.TB) string {
	t.Helper()
	p := os.Getenv("DNSCACHE_COREDNS")
	if p == "" {
		p = filepath.Join(RepoRoot(t), "bin", "coredns")
	}
	if _, err := os.Stat(p); err != nil {
		t.Fatalf("coredns binary: %v (run `make build`)", err)
	}
	return p
}

// RepoRoot returns the directory holding go.mod.
func RepoRoot(t testing.TB) string {
	t.Helper()
	dir, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			t.Fatal("go.mod not found above the working directory")
		}
		dir = parent
	}
}

// Prepare allocates ports and a directory without starting anything, so that a test can
// write files (certificates, zone data) into s.Dir before calling s.Run.
func Prepare(t testing.TB) *Server {
	t.Helper()
	dir, err := os.MkdirTemp("", "dnscache-e2e-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	port := FreePort(t)
	s := &Server{
		DNS:     net.JoinHostPort("127.0.0.1", strconv.Itoa(port)),
		Port:    port,
		Metrics: freeAddr(t),
		Health:  freeAddr(t),
		Ready:   freeAddr(t),
		Dir:     dir,
		Sock:    filepath.Join(dir, "dns.sock"),
		CA:      filepath.Join(dir, "ca.pem"),
		Cert:    filepath.Join(dir, "cert.pem"),
		Key:     filepath.Join(dir, "key.pem"),
	}
	s.Std = fmt.Sprintf("health %s\n    ready %s\n    prometheus %s", s.Health, s.Ready, s.Metrics)
	return s
}

// Start renders corefile (a text/template over Server's fields) and runs bin/coredns on it.
// It returns once /ready answers 200, or once the server listing is printed when the
// Corefile has no ready plugin. The server is stopped by t.Cleanup if the test has not.
func Start(t testing.TB, corefile string) *Server {
	t.Helper()
	s := Prepare(t)
	s.Run(t, corefile)
	return s
}

// Run starts the server prepared by Prepare.
func (s *Server) Run(t testing.TB, corefile string) {
	t.Helper()
	s.Corefile = filepath.Join(s.Dir, "Corefile")
	text := s.render(t, corefile)
	if err := os.WriteFile(s.Corefile, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	s.out = &syncBuffer{}
	s.done = make(chan struct{})
	s.cmd = exec.Command(Binary(t), "-conf", s.Corefile)
	s.cmd.Dir = s.Dir
	s.cmd.Stdout = s.out
	s.cmd.Stderr = s.out
	s.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := s.cmd.Start(); err != nil {
		t.Fatalf("start coredns: %v", err)
	}
	go func() {
		s.waitErr = s.cmd.Wait()
		close(s.done)
	}()
	t.Cleanup(func() { s.Stop(t) })

	deadline := time.Now().Add(30 * time.Second)
	useReady := strings.Contains(text, s.Ready)
	for {
		select {
		case <-s.done:
			t.Fatalf("coredns exited at start: %v\n%s\nCorefile:\n%s", s.waitErr, s.out.String(), text)
		default:
		}
		if useReady {
			if resp, err := http.Get("http://" + s.Ready + "/ready"); err == nil {
				resp.Body.Close()
				if resp.StatusCode == http.StatusOK && strings.Contains(s.out.String(), "CoreDNS-") { // /ready answers before the DNS listeners are bound
					return
				}
			}
		} else if strings.Contains(s.out.String(), "CoreDNS-") {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("coredns not ready after 30s\n%s", s.out.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func (s *Server) render(t testing.TB, corefile string) string {
	t.Helper()
	tmpl, err := template.New("Corefile").Option("missingkey=error").Parse(corefile)
	if err != nil {
		t.Fatalf("Corefile template: %v", err)
	}
	var b bytes.Buffer
	if err := tmpl.Execute(&b, s); err != nil {
		t.Fatalf("Corefile template: %v", err)
	}
	return b.String()
}

// PID returns the server's process id.
func (s *Server) PID() int { return s.cmd.Process.Pid }

// Log returns everything the server printed so far.
func (s *Server) Log() string { return s.out.String() }

// Reload rewrites the Corefile and sends SIGUSR1, then waits until CoreDNS reports the reload
// complete. It fails the test if the reload is refused.
func (s *Server) Reload(t testing.TB, corefile string) {
	t.Helper()
	text := s.render(t, corefile)
	if err := os.WriteFile(s.Corefile, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	const marker = "[INFO] Reloading complete"
	before := strings.Count(s.Log(), marker)
	errsBefore := strings.Count(s.Log(), "[ERROR] SIGUSR1")
	if err := s.cmd.Process.Signal(syscall.SIGUSR1); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(20 * time.Second)
	for {
		out := s.Log()
		if strings.Count(out, "[ERROR] SIGUSR1") > errsBefore {
			t.Fatalf("reload failed:\n%s", out)
		}
		if strings.Count(out, marker) > before {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("reload not complete after 20s:\n%s", out)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Kill ends the server with SIGKILL, as a crash would, and waits for it.
func (s *Server) Kill(t testing.TB) {
	t.Helper()
	s.stopOnce.Do(func() {
		s.cmd.Process.Kill()
		<-s.done
	})
}

// Stop sends SIGTERM and waits. It fails the test when the server panicked, reported a
// data race, or exited non-zero.
func (s *Server) Stop(t testing.TB) {
	t.Helper()
	s.stopOnce.Do(func() {
		s.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-s.done:
		case <-time.After(15 * time.Second):
			s.cmd.Process.Kill()
			<-s.done
			t.Errorf("coredns did not stop within 15s of SIGTERM\n%s", s.Log())
			return
		}
		out := s.Log()
		for _, bad := range []string{"panic:", "WARNING: DATA RACE", "fatal error:"} {
			if strings.Contains(out, bad) {
				t.Errorf("coredns output contains %q:\n%s", bad, out)
			}
		}
		if s.waitErr != nil {
			t.Errorf("coredns exit: %v\n%s", s.waitErr, out)
		}
	})
}

// syncBuffer is a bytes.Buffer safe for the child's writers and the test's readers.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}
