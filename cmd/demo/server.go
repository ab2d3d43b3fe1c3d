package main

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
	"time"

	"github.com/dnscache/dnscache/test/lab"
)

// server is the bin/coredns child.
type server struct {
	dns, ready, metrics, sock string
	port                      int
	cmd                       *exec.Cmd
	out                       *syncBuffer
	done                      chan struct{}
	waitErr                   error
}

func freePort() (int, error) {
	for range 50 {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return 0, err
		}
		port := l.Addr().(*net.TCPAddr).Port
		u, err := net.ListenPacket("udp", l.Addr().String())
		l.Close()
		if err == nil {
			u.Close()
			return port, nil
		}
	}
	return 0, fmt.Errorf("no free port")
}

const corefile = `.:%d {
    bind 127.0.0.1
    unixsock %s
    ready 127.0.0.1:%d
    prometheus 127.0.0.1:%d
    warmcache {
        prefetch 2 1m 10%%
    }
    racetls . %s {
        tls %s
        race all
        stats 1s
    }
}
`

func (d *demo) startServer() error {
	var ports [3]int
	for i := range ports {
		p, err := freePort()
		if err != nil {
			return err
		}
		ports[i] = p
	}
	var ups []string
	for _, u := range d.labs {
		ups = append(ups, "tls://"+u.TLSAddr()+"%"+lab.DefaultServerName)
	}
	s := &server{
		port: ports[0], dns: "127.0.0.1:" + strconv.Itoa(ports[0]),
		ready: "127.0.0.1:" + strconv.Itoa(ports[1]), metrics: "127.0.0.1:" + strconv.Itoa(ports[2]),
		sock: filepath.Join(d.dir, "dns.sock"), out: &syncBuffer{}, done: make(chan struct{}),
	}
	text := fmt.Sprintf(corefile, s.port, s.sock, ports[1], ports[2], strings.Join(ups, " "), filepath.Join(d.dir, lab.CAFile))
	path := filepath.Join(d.dir, "Corefile")
	if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
		return err
	}
	fmt.Print(indent(text))
	s.cmd = exec.Command(d.coredns, "-conf", path)
	s.cmd.Dir = d.dir
	s.cmd.Stdout, s.cmd.Stderr = s.out, s.out
	s.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := s.cmd.Start(); err != nil {
		return err
	}
	go func() {
		s.waitErr = s.cmd.Wait()
		close(s.done)
	}()
	d.srv = s
	deadline := time.Now().Add(30 * time.Second)
	for {
		select {
		case <-s.done:
			return fmt.Errorf("coredns exited: %v\n%s", s.waitErr, s.out.String())
		default:
		}
		if resp, err := http.Get("http://" + s.ready + "/ready"); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				break
			}
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("coredns not ready after 30s:\n%s", s.out.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
	fmt.Printf("  ready: UDP %s, socket %s, metrics http://%s/metrics (pid %d)\n", s.dns, s.sock, s.metrics, s.cmd.Process.Pid)
	return nil
}

func indent(s string) string {
	return "  " + strings.ReplaceAll(strings.TrimRight(s, "\n"), "\n", "\n  ") + "\n"
}

// stop sends SIGTERM and waits; it reports a panic or race in the output.
func (s *server) stop() error {
	s.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-s.done:
	case <-time.After(10 * time.Second):
		s.cmd.Process.Kill()
		<-s.done
		return fmt.Errorf("did not stop within 10s of SIGTERM")
	}
	for _, bad := range []string{"panic:", "DATA RACE", "fatal error:"} {
		if strings.Contains(s.out.String(), bad) {
			return fmt.Errorf("output contains %q", bad)
		}
	}
	return nil
}

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
