package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"time"

	"github.com/dnscache/dnscache/test/kit"
	"github.com/miekg/dns"
)

// server is a bin/coredns (or floor responder) child process pinned to the server core. The
// Corefile templates see kit.CoreDNS's fields ({{.Port}}, {{.Port2}}, {{.Ready}},
// {{.Metrics}}, {{.Pprof}}, {{.Sock}}, {{.CA}}...) and these.
type server struct {
	*kit.CoreDNS
	Name       string
	Up         []string // DoT upstream addresses, "127.0.0.1:port"
	UDP        []string // plain upstream addresses
	ServerName string
}

// newServer allocates ports and a directory for one server.
func (s *suite) newServer(name string) (*server, error) {
	c, err := kit.NewCoreDNS("")
	if err != nil {
		return nil, err
	}
	c.CA, c.Bin = s.caFile, s.coredns
	if s.serverCPU != "" {
		c.Wrap = []string{"taskset", "-c", s.serverCPU}
	}
	return &server{CoreDNS: c, Name: name, ServerName: s.serverName}, nil
}

// startCoreDNS renders corefile (a text/template over server's fields) and runs bin/coredns
// on the server core, waiting for /ready.
func (s *suite) startCoreDNS(name, corefile string, up, udp []string) (*server, error) {
	srv, err := s.newServer(name)
	if err != nil {
		return nil, err
	}
	srv.Up, srv.UDP = up, udp
	if err := srv.Launch(corefile, srv); err != nil {
		os.RemoveAll(srv.Dir)
		return nil, fmt.Errorf("%s: %w", name, err)
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
	if srv.Process, err = kit.StartProcess("floor", srv.Dir, append(srv.Wrap, self, "floor", "-addr", srv.DNS)...); err != nil {
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
			return nil, fmt.Errorf("floor responder not answering: %s", srv.Log())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// stop sends SIGTERM, waits, and removes the directory. It returns an error when the
// process panicked, raced or exited non-zero.
func (srv *server) stop() error {
	defer os.RemoveAll(srv.Dir)
	if srv.Process == nil {
		return nil
	}
	return srv.Process.Stop(10 * time.Second)
}

// serverSet holds a group's running servers by case name.
type serverSet map[string]*server

// start runs a case's server with start, warms it with the hot names and keeps it under
// name; a case with a reason is not available and is printed with it instead, its name
// padded to width.
func (ss serverSet) start(ctx context.Context, name, reason string, width int, start func() (*server, error)) error {
	if reason != "" {
		fmt.Printf("   %-*s %s\n", width, name, reason)
		return nil
	}
	srv, err := start()
	if err != nil {
		return fmt.Errorf("%s: %w", name, err)
	}
	ss[name] = srv
	if err := warmHot(ctx, srv); err != nil {
		return fmt.Errorf("%s: %w", name, err)
	}
	return nil
}

// stop stops every server of the set.
func (ss serverSet) stop() {
	for _, srv := range ss {
		srv.stop()
	}
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
