package compose

import (
	"bytes"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"text/template"
	"time"

	"github.com/dnscache/dnscache/plugin/pkg/wire"
	"github.com/dnscache/dnscache/test/kit"
	"github.com/dnscache/dnscache/test/lab"
)

// variant is one side of the comparison: the cache and forwarder directives.
type variant struct {
	name           string
	cache, forward string // templates over upstream
}

var variants = [2]variant{
	{name: "cache+forward", cache: "cache", forward: "forward . tls://{{.Lab}} {\n        tls {{.CA}}\n        tls_servername {{.ServerName}}\n    }"},
	{name: "warmcache+racetls", cache: "warmcache {\n        sweep 200ms\n    }", forward: "racetls . tls://{{.Lab}} {\n        tls {{.CA}}\n        tls_servername {{.ServerName}}\n    }"},
}

// transport is one copy of the case's server blocks, asked over one transport.
type transport struct {
	name   string // udp, tcp, unix
	port   int
	host   string // 127.0.0.1 or ::1
	sock   string // unix only
	tap    *kit.Tap
	tapDir string
}

func (tr *transport) tag() string { return "cmp-" + tr.name }

// proc is one bin/coredns of a case.
type proc struct {
	v   *variant
	s   *kit.CoreDNS
	trs []*transport
}

var startMu sync.Mutex

// blockVars are the fields of a case's Corefile template.
type blockVars struct {
	Port                 int
	Dir, Cache, Forward  string
	Common, LogFmt       string
	Dnstap               string
	Lab, CA, ServerName  string
	Tag, Kubeconfig      string
	unixsock, prometheus string
}

// logFormat is CoreDNS's common log format (plugin/log) behind a tag naming the transport.
const logFormat = `%s {remote}:{port} - {>id} \"{type} {class} {name} {proto} {size} {>do} {>bufsize}\" {rcode} {>rflags} {rsize} {duration}`

func startProc(t *testing.T, c *Case, v *variant, up *lab.Upstream, kubeconfig string) *proc {
	t.Helper()
	// Cases start their servers one at a time: a port kit.FreePort hands out is free only
	// until someone binds it, and a server binds its ports before the next one is given any.
	startMu.Lock()
	defer startMu.Unlock()
	s := kit.Prepare(t)
	if err := up.CA().WriteFiles(s.Dir); err != nil {
		t.Fatal(err)
	}
	host := "127.0.0.1"
	if c.IPv6 {
		host = "::1"
	}
	p := &proc{v: v, s: s}
	for i, name := range []string{"udp", "tcp", "unix"} {
		tr := &transport{name: name, host: host, port: s.Port}
		if i > 0 {
			tr.port = kit.FreePort(t)
		}
		if name == "unix" {
			tr.sock = s.Sock
		}
		tr.tap = kit.StartTap(t, filepath.Join(s.Dir, "tap-"+name+".sock"))
		p.trs = append(p.trs, tr)
	}
	for name, text := range c.Files {
		if err := os.WriteFile(filepath.Join(s.Dir, name), []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	var b strings.Builder
	for _, tr := range p.trs {
		b.WriteString(p.render(t, c, tr, up, kubeconfig))
	}
	// The kit renders the Corefile as a template once more: keep braces literal.
	s.Run(t, strings.ReplaceAll(b.String(), "{{", `{{"{{"}}`))
	return p
}

func (p *proc) render(t *testing.T, c *Case, tr *transport, up *lab.Upstream, kubeconfig string) string {
	t.Helper()
	bind := "bind 127.0.0.1"
	if c.IPv6 {
		bind += " ::1"
	}
	vars := blockVars{
		Port: tr.port, Dir: p.s.Dir, Tag: tr.tag(),
		LogFmt: fmt.Sprintf(logFormat, tr.tag()), Dnstap: "unix://" + tr.tap.Path(),
		Lab: up.TLSAddr(), CA: p.s.CA, ServerName: up.ServerName(), Kubeconfig: kubeconfig,
	}
	vars.Common = bind + "\n    prometheus " + p.s.Metrics
	cache := p.v.cache
	if c.frontDoorOff && strings.HasPrefix(cache, "warmcache {") {
		cache = strings.Replace(cache, "warmcache {", "warmcache {\n        front_door off", 1)
	}
	vars.Cache = execTemplate(t, cache, vars)
	vars.Forward = execTemplate(t, p.v.forward, vars)
	zone := c.Zone
	if zone == "" {
		zone = "."
	}
	var keys []string
	for _, z := range strings.Fields(zone) {
		keys = append(keys, z+":"+strconv.Itoa(tr.port))
	}
	main := strings.Join(keys, " ") + " {\n    {{.Common}}\n"
	if tr.sock != "" {
		main += "    unixsock " + tr.sock + "\n"
	}
	main += indent(c.Plugins) + "    {{.Cache}}\n    {{.Forward}}\n}\n"
	return execTemplate(t, main+c.Blocks+"\n", vars)
}

func indent(s string) string {
	var b strings.Builder
	for _, l := range strings.Split(strings.TrimSpace(s), "\n") {
		if l = strings.TrimSpace(l); l != "" {
			b.WriteString("    " + l + "\n")
		}
	}
	return b.String()
}

func execTemplate(t *testing.T, text string, vars blockVars) string {
	t.Helper()
	tmpl, err := template.New("").Option("missingkey=error").Parse(text)
	if err != nil {
		t.Fatalf("case template: %v\n%s", err, text)
	}
	var b bytes.Buffer
	if err := tmpl.Execute(&b, vars); err != nil {
		t.Fatalf("case template: %v\n%s", err, text)
	}
	return b.String()
}

// exchange sends one query over the transport and returns the reply's bytes.
func (tr *transport) exchange(q []byte) ([]byte, error) {
	deadline := time.Now().Add(5 * time.Second)
	if tr.name == "udp" {
		c, err := net.Dial("udp", net.JoinHostPort(tr.host, strconv.Itoa(tr.port)))
		if err != nil {
			return nil, err
		}
		defer c.Close()
		c.SetDeadline(deadline)
		if _, err := c.Write(q); err != nil {
			return nil, err
		}
		buf := make([]byte, 65535)
		n, err := c.Read(buf)
		if err != nil {
			return nil, err
		}
		return buf[:n], nil
	}
	network, addr := "tcp", net.JoinHostPort(tr.host, strconv.Itoa(tr.port))
	if tr.name == "unix" {
		network, addr = "unix", tr.sock
	}
	c, err := net.Dial(network, addr)
	if err != nil {
		return nil, err
	}
	defer c.Close()
	c.SetDeadline(deadline)
	if err := wire.WriteFrame(c, q); err != nil {
		return nil, err
	}
	return wire.ReadFrame(c, nil)
}

// transportOf maps a server label (dns://:PORT, dns://127.0.0.1:PORT, unix://PATH) to the
// transport whose copy of the blocks it names.
func (p *proc) transportOf(server string) string {
	for _, tr := range p.trs {
		if tr.sock != "" && strings.Contains(server, tr.sock) {
			return tr.name
		}
	}
	for _, tr := range p.trs {
		if strings.HasSuffix(server, ":"+strconv.Itoa(tr.port)) {
			if tr.sock != "" {
				return tr.name + "-port"
			}
			return tr.name
		}
	}
	return server
}
