package main

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"text/template"
	"time"

	"github.com/miekg/dns"
)

// server is a bin/coredns (or floor responder) child process pinned to the server core.
type server struct {
	Name string
	// Template fields of a Corefile.
	Port, Port2         int // Port2: a second server block's port, when a Corefile wants one
	DNS, Ready, Metrics string
	Pprof               string
	Dir, Sock, CA       string
	Up                  []string // DoT upstream addresses, "127.0.0.1:port"
	UDP                 []string // plain upstream addresses
	ServerName          string
	cmd                 *exec.Cmd
	out                 *syncBuffer
	done                chan struct{}
	waitErr             error
	stopped             bool
}

// freeAddr returns a loopback address whose port is free for TCP and UDP.
func freeAddr() (string, int, error) {
	for range 50 {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return "", 0, err
		}
		port := l.Addr().(*net.TCPAddr).Port
		u, err := net.ListenPacket("udp", l.Addr().String())
		l.Close()
		if err != nil {
			continue
		}
		u.Close()
		return l.Addr().String(), port, nil
	}
	return "", 0, fmt.Errorf("no free port")
}

// newServer allocates ports and a directory for one server.
func (s *suite) newServer(name string) (*server, error) {
	dir, err := os.MkdirTemp("", "dnsbench-")
	if err != nil {
		return nil, err
	}
	srv := &server{Name: name, Dir: dir, Sock: filepath.Join(dir, "dns.sock"), CA: s.caFile, ServerName: s.serverName}
	if srv.DNS, srv.Port, err = freeAddr(); err != nil {
		return nil, err
	}
	if _, srv.Port2, err = freeAddr(); err != nil {
		return nil, err
	}
	if srv.Ready, _, err = freeAddr(); err != nil {
		return nil, err
	}
	if srv.Metrics, _, err = freeAddr(); err != nil {
		return nil, err
	}
	if srv.Pprof, _, err = freeAddr(); err != nil {
		return nil, err
	}
	return srv, nil
}

// startCoreDNS renders corefile (a text/template over server's fields) and runs bin/coredns
// on the server core, waiting for /ready.
func (s *suite) startCoreDNS(name, corefile string, up, udp []string) (*server, error) {
	srv, err := s.newServer(name)
	if err != nil {
		return nil, err
	}
	srv.Up, srv.UDP = up, udp
	tmpl, err := template.New(name).Option("missingkey=error").Parse(corefile)
	if err != nil {
		return nil, err
	}
	var b bytes.Buffer
	if err := tmpl.Execute(&b, srv); err != nil {
		return nil, err
	}
	path := filepath.Join(srv.Dir, "Corefile")
	if err := os.WriteFile(path, b.Bytes(), 0o644); err != nil {
		return nil, err
	}
	if err := s.spawn(srv, s.coredns, "-conf", path); err != nil {
		return nil, err
	}
	if err := srv.waitHTTP("http://"+srv.Ready+"/ready", 30*time.Second); err != nil {
		srv.stop()
		return nil, fmt.Errorf("%s: %w\nCorefile:\n%s\n%s", name, err, b.String(), srv.out.String())
	}
	return srv, nil
}

// startFloor runs this program's floor responder on the server core.
func (s *suite) startFloor() (*server, error) {
	srv, err := s.newServer("floor")
	if err != nil {
		return nil, err
	}
	self, err := os.Executable()
	if err != nil {
		return nil, err
	}
	if err := s.spawn(srv, self, "floor", "-addr", srv.DNS); err != nil {
		return nil, err
	}
	deadline := time.Now().Add(10 * time.Second)
	c := &dns.Client{Timeout: 200 * time.Millisecond}
	m := new(dns.Msg)
	m.SetQuestion("floor.probe.", dns.TypeA)
	for {
		if _, _, err := c.Exchange(m, srv.DNS); err == nil {
			return srv, nil
		}
		if time.Now().After(deadline) {
			srv.stop()
			return nil, fmt.Errorf("floor responder not answering: %s", srv.out.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func (s *suite) spawn(srv *server, bin string, args ...string) error {
	argv := append([]string{bin}, args...)
	if s.serverCPU != "" {
		argv = append([]string{"taskset", "-c", s.serverCPU}, argv...)
	}
	srv.out = &syncBuffer{}
	srv.done = make(chan struct{})
	srv.cmd = exec.Command(argv[0], argv[1:]...)
	srv.cmd.Dir = srv.Dir
	srv.cmd.Stdout, srv.cmd.Stderr = srv.out, srv.out
	srv.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := srv.cmd.Start(); err != nil {
		return fmt.Errorf("start %s: %w", srv.Name, err)
	}
	go func() {
		srv.waitErr = srv.cmd.Wait()
		close(srv.done)
	}()
	return nil
}

func (srv *server) waitHTTP(url string, limit time.Duration) error {
	deadline := time.Now().Add(limit)
	for {
		select {
		case <-srv.done:
			return fmt.Errorf("exited at start: %v", srv.waitErr)
		default:
		}
		if resp, err := http.Get(url); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("not ready after %v", limit)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// stop sends SIGTERM, waits, and removes the directory. It returns an error when the
// process panicked or raced.
func (srv *server) stop() error {
	if srv.cmd == nil || srv.stopped {
		return nil
	}
	srv.stopped = true
	srv.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-srv.done:
	case <-time.After(10 * time.Second):
		srv.cmd.Process.Kill()
		<-srv.done
	}
	os.RemoveAll(srv.Dir)
	out := srv.out.String()
	for _, bad := range []string{"panic:", "DATA RACE", "fatal error:"} {
		if strings.Contains(out, bad) {
			return fmt.Errorf("%s: output contains %q:\n%s", srv.Name, bad, out)
		}
	}
	return nil
}

// rss returns the process's resident set size in bytes.
func (srv *server) rss() (int64, error) {
	f, err := os.Open("/proc/" + strconv.Itoa(srv.cmd.Process.Pid) + "/status")
	if err != nil {
		return 0, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "VmRSS:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			return kb * 1024, err
		}
	}
	return 0, fmt.Errorf("no VmRSS for %s", srv.Name)
}

// cpuTime returns the process's user+system CPU time so far.
func (srv *server) cpuTime() (time.Duration, error) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(srv.cmd.Process.Pid) + "/stat")
	if err != nil {
		return 0, err
	}
	// Fields after the command name, which is parenthesised and may hold spaces.
	f := strings.Fields(string(b[bytes.LastIndexByte(b, ')')+2:]))
	ut, _ := strconv.ParseInt(f[11], 10, 64)
	st, _ := strconv.ParseInt(f[12], 10, 64)
	return time.Duration(ut+st) * 10 * time.Millisecond, nil // USER_HZ is 100 on Linux
}

// syncBuffer collects a child's output.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.b.Len() > 1<<20 { // keep the head; a chatty server must not fill memory
		return len(p), nil
	}
	return b.b.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

// profile fetches a CPU profile of d from the pprof plugin into file, in the background;
// wait returns once it is written.
func (srv *server) profile(d time.Duration, file string) (wait func() error) {
	done := make(chan error, 1)
	go func() {
		resp, err := http.Get(fmt.Sprintf("http://%s/debug/pprof/profile?seconds=%d", srv.Pprof, int(d.Seconds())))
		if err != nil {
			done <- err
			return
		}
		defer resp.Body.Close()
		f, err := os.Create(file)
		if err != nil {
			done <- err
			return
		}
		_, err = io.Copy(f, resp.Body)
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		done <- err
	}()
	return func() error { return <-done }
}
