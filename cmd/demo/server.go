package main

import (
	"fmt"
	"path/filepath"
	"strings"

	"github.com/dnscache/dnscache/test/kit"
	"github.com/dnscache/dnscache/test/lab"
)

// corefile is a template over kit.CoreDNS's fields, Ups and CAFile.
const corefile = `.:{{.Port}} {
    bind 127.0.0.1
    unixsock {{.Sock}}
    ready {{.Ready}}
    prometheus {{.Metrics}}
    warmcache {
        prefetch 2 1m 10%
    }
    racetls . {{.Ups}} {
        tls {{.CAFile}}
        race all
        stats 1s
    }
}
`

func (d *demo) startServer() error {
	s, err := kit.NewCoreDNS(d.dir)
	if err != nil {
		return err
	}
	s.Bin = d.coredns
	var ups []string
	for _, u := range d.labs {
		ups = append(ups, "tls://"+u.TLSAddr()+"%"+lab.DefaultServerName)
	}
	data := struct {
		*kit.CoreDNS
		Ups, CAFile string
	}{s, strings.Join(ups, " "), filepath.Join(d.dir, lab.CAFile)}
	text, err := s.Render(corefile, data)
	if err != nil {
		return err
	}
	fmt.Print(indent(text))
	if err := s.Launch(corefile, data); err != nil {
		return err
	}
	d.srv = s
	fmt.Printf("  ready: UDP %s, socket %s, metrics http://%s/metrics (pid %d)\n", s.DNS, s.Sock, s.Metrics, s.PID())
	return nil
}

func indent(s string) string {
	return "  " + strings.ReplaceAll(strings.TrimRight(s, "\n"), "\n", "\n  ") + "\n"
}
