package e2e

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/dnscache/dnscache/test/kit"

	dnstap "github.com/dnstap/golang-dnstap"
	"github.com/miekg/dns"
)

// What the plugins of a block see of a client on the unixsock socket (DESIGN §7): a TCP client
// at 127.0.0.1:N, N numbering the connection, on the local address 127.0.0.1:0; the peer's
// SO_PEERCRED pid, uid and gid as metadata (unixsock/pid, ...). Each test asks the same queries
// over the socket and over UDP, and checks what log, dnstap, acl, view and prometheus report.

// peerTapCorefile has two log rules (the default format for default.test., a custom one with
// unixsock's metadata for custom.test.), dnstap to the test's reader with the metadata in the
// extra field, and prometheus.
const peerTapCorefile = `.:{{.Port}} {
    bind 127.0.0.1
    {{.Std}}
    unixsock {{.Sock}}
    metadata
    log default.test.
    log custom.test. "custom {remote} {port} {proto} {local} {>id} {name} pid={/unixsock/pid} uid={/unixsock/uid} gid={/unixsock/gid} path={/unixsock/path}"
    dnstap unix://{{.Dir}}/tap.sock full {
        extra "pid={/unixsock/pid} uid={/unixsock/uid}"
    }
    hosts {
        192.0.2.1 default.test custom.test
    }
}
`

// TestUnixsockPeerLogDnstapMetrics: log's default and custom lines, dnstap's messages and
// CoreDNS's request counter for socket and UDP clients.
func TestUnixsockPeerLogDnstapMetrics(t *testing.T) {
	kit.CheckFDs(t)
	s := kit.Prepare(t)
	tap := kit.StartTap(t, filepath.Join(s.Dir, "tap.sock"))
	s.Run(t, peerTapCorefile)
	unixsockEventually(t, tap.Connected, "dnstap did not connect")
	pid, uid, gid := os.Getpid(), os.Geteuid(), os.Getegid()

	// Two queries on one socket connection, one on a second connection; two over UDP.
	c1 := unixsockDial(t, s.Sock)
	sock1 := []*dns.Msg{peerQuery("default.test.", 0x1111), peerQuery("custom.test.", 0x1112)}
	for _, q := range sock1 {
		peerExchange(t, c1, q, dns.RcodeSuccess)
	}
	c2 := unixsockDial(t, s.Sock)
	sock2 := peerQuery("custom.test.", 0x2221)
	peerExchange(t, c2, sock2, dns.RcodeSuccess)
	c1.Close()
	c2.Close()

	// A third connection from another process: socat, as another user when we are root, so
	// that the pid, uid and gid in the log cannot be the test's by accident.
	other := peerOther{pid: pid, uid: uid, gid: gid}
	if os.Geteuid() == 0 {
		other.uid, other.gid = 65534, 65534
		if err := os.Chmod(s.Dir, 0o755); err != nil { // MkdirTemp made it 0700
			t.Fatal(err)
		}
	}
	otherQ := peerQuery("custom.test.", 0x5551)
	other.pid = peerSocat(t, s.Sock, otherQ, other.uid, other.gid)

	u, err := net.Dial("udp", s.DNS)
	if err != nil {
		t.Fatal(err)
	}
	defer u.Close()
	udpPort := u.LocalAddr().(*net.UDPAddr).Port
	udp := []*dns.Msg{peerQuery("default.test.", 0x3331), peerQuery("custom.test.", 0x3332)}
	for _, q := range udp {
		r, _, err := (&dns.Client{Timeout: 5 * time.Second}).ExchangeWithConn(q, &dns.Conn{Conn: u})
		if err != nil || r.Rcode != dns.RcodeSuccess || len(r.Answer) != 1 {
			t.Fatalf("UDP %s: %v %v", q.Question[0].Name, r, err)
		}
	}

	// log, default format: the socket client is 127.0.0.1:N over tcp (the bufsize of a query
	// without EDNS is then 65535, as over TCP); N is the connection's number.
	defaultRE := regexp.MustCompile(`\[INFO\] 127\.0\.0\.1:(\d+) - 4369 "A IN default\.test\. tcp 30 false 65535" NOERROR qr,aa,rd 58 \d`)
	var m []string
	unixsockEventually(t, func() bool { m = defaultRE.FindStringSubmatch(s.Log()); return m != nil }, "default log line of the socket query\n%s", s.Log)
	conn1, _ := strconv.Atoi(m[1])
	if conn1 < 1 || conn1 > 65535 {
		t.Fatalf("socket client's port %d is not a connection number 1-65535", conn1)
	}
	wantUDP := fmt.Sprintf(`[INFO] 127.0.0.1:%d - 13105 "A IN default.test. udp 30 false 512" NOERROR qr,aa,rd 58 `, udpPort)
	unixsockEventually(t, func() bool { return strings.Contains(s.Log(), wantUDP) }, "default log line %q\n%s", wantUDP, s.Log)

	// log, custom format: the same address, the local address 127.0.0.1, the peer credentials.
	customRE := regexp.MustCompile(`custom 127\.0\.0\.1 (\d+) tcp 127\.0\.0\.1 8737 custom\.test\. pid=(\S+) uid=(\S+) gid=(\S+) path=(\S+)`)
	unixsockEventually(t, func() bool { return customRE.MatchString(s.Log()) }, "custom log line of the second socket connection\n%s", s.Log)
	m2 := customRE.FindStringSubmatch(s.Log())
	conn2, _ := strconv.Atoi(m2[1])
	if want := []string{strconv.Itoa(pid), strconv.Itoa(uid), strconv.Itoa(gid), s.Sock}; !equalStrings(m2[2:], want) {
		t.Errorf("socket peer in the log: pid, uid, gid, path = %v, want %v", m2[2:], want)
	}
	want1 := fmt.Sprintf("custom 127.0.0.1 %d tcp 127.0.0.1 4370 custom.test. pid=%d uid=%d gid=%d path=%s", conn1, pid, uid, gid, s.Sock)
	unixsockEventually(t, func() bool { return strings.Contains(s.Log(), want1) }, "log line %q (same port as the connection's default line)\n%s", want1, s.Log)
	if conn2 == conn1 {
		t.Errorf("two socket connections logged with the same port %d", conn1)
	}
	wantOther := fmt.Sprintf(" tcp 127.0.0.1 21841 custom.test. pid=%d uid=%d gid=%d path=%s", other.pid, other.uid, other.gid, s.Sock)
	unixsockEventually(t, func() bool { return strings.Contains(s.Log(), wantOther) }, "log line of socat's query %q\n%s", wantOther, s.Log)
	wantUDPCustom := fmt.Sprintf("custom 127.0.0.1 %d udp 127.0.0.1 13106 custom.test. pid=- uid=- gid=- path=-", udpPort)
	unixsockEventually(t, func() bool { return strings.Contains(s.Log(), wantUDPCustom) }, "log line %q\n%s", wantUDPCustom, s.Log)

	// dnstap: a CLIENT_QUERY and a CLIENT_RESPONSE per query, with the same address as the log.
	type want struct {
		proto dnstap.SocketProtocol
		port  int
		extra string
	}
	sockExtra := fmt.Sprintf("pid=%d uid=%d", pid, uid)
	wants := map[uint16]want{
		0x1111: {dnstap.SocketProtocol_TCP, conn1, sockExtra},
		0x1112: {dnstap.SocketProtocol_TCP, conn1, sockExtra},
		0x2221: {dnstap.SocketProtocol_TCP, conn2, sockExtra},
		0x5551: {dnstap.SocketProtocol_TCP, -1, fmt.Sprintf("pid=%d uid=%d", other.pid, other.uid)},
		0x3331: {dnstap.SocketProtocol_UDP, udpPort, "pid=- uid=-"},
		0x3332: {dnstap.SocketProtocol_UDP, udpPort, "pid=- uid=-"},
	}
	unixsockEventually(t, func() bool { return len(tap.Messages()) >= 2*len(wants) }, "%s dnstap messages", func() string { return fmt.Sprint(len(tap.Messages())) })
	sent := map[uint16][]byte{}
	for _, q := range append(append(sock1, sock2, otherQ), udp...) {
		sent[q.Id], _ = q.Pack()
	}
	seen := map[string]bool{}
	for _, d := range tap.Messages() {
		msg := d.GetMessage()
		if d.GetType() != dnstap.Dnstap_MESSAGE || msg == nil {
			t.Fatalf("dnstap frame is not a message: %v", d)
		}
		raw := msg.GetQueryMessage()
		if msg.GetType() == dnstap.Message_CLIENT_RESPONSE {
			raw = msg.GetResponseMessage()
		}
		var dm dns.Msg
		if err := dm.Unpack(raw); err != nil {
			t.Fatalf("dnstap %v carries a malformed DNS message: %v", msg.GetType(), err)
		}
		w, ok := wants[dm.Id]
		if !ok {
			t.Fatalf("dnstap message for an ID we did not send: %v", d)
		}
		key := fmt.Sprintf("%s/%#x", msg.GetType(), dm.Id)
		t.Logf("dnstap %s: family %v protocol %v query %v:%d response address %v extra %q", key, msg.GetSocketFamily(),
			msg.GetSocketProtocol(), net.IP(msg.GetQueryAddress()), msg.GetQueryPort(), msg.ResponseAddress, d.GetExtra())
		if seen[key] {
			t.Errorf("dnstap %s twice", key)
		}
		seen[key] = true
		if msg.GetType() != dnstap.Message_CLIENT_QUERY && msg.GetType() != dnstap.Message_CLIENT_RESPONSE {
			t.Errorf("%s: unexpected type", key)
		}
		if msg.GetSocketFamily() != dnstap.SocketFamily_INET || msg.GetSocketProtocol() != w.proto ||
			!net.IP(msg.GetQueryAddress()).Equal(net.IPv4(127, 0, 0, 1)) || len(msg.GetQueryAddress()) != 4 ||
			(w.port >= 0 && int(msg.GetQueryPort()) != w.port) || msg.ResponseAddress != nil || msg.ResponsePort != nil {
			t.Errorf("%s: family %v protocol %v query address %v port %d response address %v port %v; want INET %v 127.0.0.1 port %d and no response address",
				key, msg.GetSocketFamily(), msg.GetSocketProtocol(), net.IP(msg.GetQueryAddress()), msg.GetQueryPort(),
				msg.ResponseAddress, msg.ResponsePort, w.proto, w.port)
		}
		if string(d.GetExtra()) != w.extra {
			t.Errorf("%s: extra %q, want %q", key, d.GetExtra(), w.extra)
		}
		if msg.QueryTimeSec == nil || (msg.GetType() == dnstap.Message_CLIENT_RESPONSE && msg.ResponseTimeSec == nil) {
			t.Errorf("%s: times missing", key)
		}
		if msg.GetType() == dnstap.Message_CLIENT_QUERY && !bytes.Equal(raw, sent[dm.Id]) {
			t.Errorf("%s: query_message %x, we sent %x", key, raw, sent[dm.Id])
		}
		if msg.GetType() == dnstap.Message_CLIENT_RESPONSE && (len(dm.Answer) != 1 || !dm.Response) {
			t.Errorf("%s: response %v", key, &dm)
		}
	}
	t.Logf("server log:\n%s", s.Log())
	if len(seen) != 2*len(wants) {
		t.Errorf("dnstap messages %v, want a query and a response for each of %d IDs", seen, len(wants))
	}
	if bad := tap.Failures(); len(bad) > 0 {
		t.Errorf("dnstap reader: %v", bad)
	}

	// prometheus: socket queries are counted under server unix://PATH, proto tcp, family 1.
	sockLabels := map[string]string{"server": "unix://" + s.Sock, "proto": "tcp", "family": "1", "zone": ".", "type": "A"}
	if got := peerMetric(t, s, "coredns_dns_requests_total", sockLabels, 4); got != 4 {
		t.Errorf("coredns_dns_requests_total%v = %v, want 4", sockLabels, got)
	}
	if got := peerMetric(t, s, "coredns_dns_requests_total", map[string]string{"server": "unix://" + s.Sock}, 4); got != 4 {
		t.Errorf("coredns_dns_requests_total{server=unix://...} = %v, want 4 (all of them tcp)", got)
	}
	udpLabels := map[string]string{"server": "dns://" + s.DNS, "proto": "udp", "family": "1"}
	if got := peerMetric(t, s, "coredns_dns_requests_total", udpLabels, 2); got != 2 {
		t.Errorf("coredns_dns_requests_total%v = %v, want 2", udpLabels, got)
	}
	// The responses by rcode and plugin, labelled as for UDP clients.
	for _, plugin := range []string{"log", "hosts"} {
		// CoreDNS labels the plugin its recorder saw write: log, whose recorder hides the rest.
		wantSock, wantUDP := map[string]float64{"log": 4}[plugin], map[string]float64{"log": 2}[plugin]
		sl := map[string]string{"server": "unix://" + s.Sock, "rcode": "NOERROR", "plugin": plugin}
		ul := map[string]string{"server": "dns://" + s.DNS, "rcode": "NOERROR", "plugin": plugin}
		if got, gotUDP := peerMetric(t, s, "coredns_dns_responses_total", sl, wantSock), peerMetric(t, s, "coredns_dns_responses_total", ul, wantUDP); got != wantSock || gotUDP != wantUDP {
			t.Errorf("coredns_dns_responses_total{rcode=NOERROR, plugin=%s}: socket %v, UDP %v; want %v and %v", plugin, got, gotUDP, wantSock, wantUDP)
		}
	}
	s.Stop(t)
}

// peerACLCorefile: one acl lets 127.0.0.1 in and blocks the rest, one blocks 127.0.0.0/8, one
// drops it.
const peerACLCorefile = `.:{{.Port}} {
    bind 127.0.0.1
    {{.Std}}
    unixsock {{.Sock}}
    acl allowed.test {
        allow net 127.0.0.1/32
        block
    }
    acl blocked.test {
        block net 127.0.0.0/8
    }
    acl dropped.test {
        drop net 127.0.0.0/8
    }
    acl other.test {
        allow net 10.0.0.0/8
        block
    }
    hosts {
        192.0.2.1 allowed.test blocked.test dropped.test other.test
    }
}
`

// TestUnixsockPeerACL: acl matches socket clients as 127.0.0.1, as it does UDP clients from
// there.
func TestUnixsockPeerACL(t *testing.T) {
	s := kit.Start(t, peerACLCorefile)
	c := unixsockDial(t, s.Sock)
	for _, tc := range []struct {
		name  string
		rcode int
	}{
		{"allowed.test.", dns.RcodeSuccess},
		{"blocked.test.", dns.RcodeRefused},
		{"other.test.", dns.RcodeRefused},
	} {
		q := peerQuery(tc.name, 0)
		r := peerExchange(t, c, q, tc.rcode)
		if tc.rcode == dns.RcodeSuccess && len(r.Answer) != 1 {
			t.Errorf("socket %s: %v", tc.name, r)
		}
		if ru := s.Exchange(t, peerQuery(tc.name, 0), "udp"); ru.Rcode != tc.rcode {
			t.Errorf("UDP %s: %s, want %s", tc.name, dns.RcodeToString[ru.Rcode], dns.RcodeToString[tc.rcode])
		}
	}
	// drop: no reply, as over TCP; the connection stays open and answers the next query.
	unixsockSend(t, c, peerQuery("dropped.test.", 0x4441), peerQuery("allowed.test.", 0x4442))
	if r := unixsockRecv(t, c); r.Id != 0x4442 || r.Rcode != dns.RcodeSuccess {
		t.Fatalf("after a dropped query: %v", r)
	}
	if got := peerMetric(t, s, "coredns_acl_blocked_requests_total", map[string]string{"server": "unix://" + s.Sock}, 2); got != 2 {
		t.Errorf("coredns_acl_blocked_requests_total{server=unix://...} = %v, want 2", got)
	}
	if got := peerMetric(t, s, "coredns_acl_dropped_requests_total", map[string]string{"server": "unix://" + s.Sock}, 1); got != 1 {
		t.Errorf("coredns_acl_dropped_requests_total{server=unix://...} = %v, want 1", got)
	}
	s.Stop(t)
}

// peerViewCorefile: both blocks of the address name the socket. The first is selected for TCP
// clients on loopback (but for fall.test.), the second for the rest: UDP clients, and fall.test.
const peerViewCorefile = `.:{{.Port}} {
    bind 127.0.0.1
    {{.Std}}
    unixsock {{.Sock}}
    view sock {
        expr incidr(client_ip(), '127.0.0.0/8') && proto() == 'tcp' && name() != 'fall.test.'
    }
    metadata
    log . "{remote} {proto} {name} view={/view/name} pid={/unixsock/pid}"
    hosts {
        192.0.2.1 v.test
    }
}
.:{{.Port}} {
    bind 127.0.0.1
    unixsock {{.Sock}}
    metadata
    log . "{remote} {proto} {name} view=other pid={/unixsock/pid}"
    hosts {
        192.0.2.2 v.test fall.test
    }
}
`

// TestUnixsockPeerView: view sees a socket client as a TCP client on 127.0.0.1.
func TestUnixsockPeerView(t *testing.T) {
	s := kit.Start(t, peerViewCorefile)
	c := unixsockDial(t, s.Sock)
	r := peerExchange(t, c, peerQuery("v.test.", 0), dns.RcodeSuccess)
	if len(r.Answer) != 1 || r.Answer[0].(*dns.A).A.String() != "192.0.2.1" {
		t.Errorf("socket: %v, want the view block's 192.0.2.1", r)
	}
	if r := s.Exchange(t, peerQuery("v.test.", 0), "tcp"); len(r.Answer) != 1 || r.Answer[0].(*dns.A).A.String() != "192.0.2.1" {
		t.Errorf("TCP: %v, want the view block's 192.0.2.1", r)
	}
	if r := s.Exchange(t, peerQuery("v.test.", 0), "udp"); len(r.Answer) != 1 || r.Answer[0].(*dns.A).A.String() != "192.0.2.2" {
		t.Errorf("UDP: %v, want the other block's 192.0.2.2", r)
	}
	// Where the view does not match, socket and TCP clients fall through to the next block.
	if r := peerExchange(t, c, peerQuery("fall.test.", 0), dns.RcodeSuccess); len(r.Answer) != 1 || r.Answer[0].(*dns.A).A.String() != "192.0.2.2" {
		t.Errorf("socket fall.test.: %v, want the other block's 192.0.2.2", r)
	}
	if r := s.Exchange(t, peerQuery("fall.test.", 0), "tcp"); len(r.Answer) != 1 || r.Answer[0].(*dns.A).A.String() != "192.0.2.2" {
		t.Errorf("TCP fall.test.: %v, want the other block's 192.0.2.2", r)
	}
	for _, want := range []string{
		fmt.Sprintf("127.0.0.1 tcp v.test. view=sock pid=%d", os.Getpid()),
		fmt.Sprintf("127.0.0.1 tcp fall.test. view=other pid=%d", os.Getpid()),
		"127.0.0.1 tcp fall.test. view=other pid=-",
		"127.0.0.1 udp v.test. view=other pid=-",
	} {
		unixsockEventually(t, func() bool { return strings.Contains(s.Log(), want) }, "log line %q\n%s", want, s.Log)
	}
	if got := peerMetric(t, s, "coredns_dns_requests_total", map[string]string{"server": "unix://" + s.Sock, "view": "sock", "proto": "tcp"}, 1); got != 1 {
		t.Errorf("coredns_dns_requests_total{server=unix://..., view=sock} = %v, want 1", got)
	}
	s.Stop(t)
}

// TestUnixsockPeerReadmeExample runs the README's example that tells socket clients apart
// (the corefile block with "view local"), on a free port and a private socket, with a dnstap
// reader, and checks what the README says of it.
func TestUnixsockPeerReadmeExample(t *testing.T) {
	readme, err := os.ReadFile(filepath.Join(kit.RepoRoot(t), "unixsock", "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	var corefile string
	for _, b := range strings.Split(string(readme), "~~~ corefile\n")[1:] {
		if b, _, _ = strings.Cut(b, "~~~"); strings.Contains(b, "view local") {
			corefile = b
		}
	}
	if corefile == "" {
		t.Fatal(`no corefile block with "view local" in unixsock/README.md`)
	}
	corefile = strings.ReplaceAll(corefile, ".:53 {", ".:{{.Port}} {\n    bind 127.0.0.1")
	corefile = strings.ReplaceAll(corefile, "/dns_cache/dns.sock", "{{.Sock}}")
	corefile = strings.ReplaceAll(corefile, "unix:///run/dnstap.sock", "unix://{{.Dir}}/tap.sock")

	s := kit.Prepare(t)
	tap := kit.StartTap(t, filepath.Join(s.Dir, "tap.sock"))
	s.Run(t, corefile)
	unixsockEventually(t, tap.Connected, "dnstap did not connect")

	c := unixsockDial(t, s.Sock)
	r := peerExchange(t, c, peerQuery("local.test.", 0x6661), dns.RcodeSuccess)
	if len(r.Answer) != 1 || r.Answer[0].(*dns.A).A.String() != "192.0.2.1" {
		t.Errorf("socket: %v, want 192.0.2.1", r)
	}
	if r := s.Exchange(t, peerQuery("local.test.", 0), "udp"); len(r.Answer) != 1 || r.Answer[0].(*dns.A).A.String() != "192.0.2.2" {
		t.Errorf("UDP: %v, want 192.0.2.2", r)
	}
	want := regexp.MustCompile(fmt.Sprintf(`\[INFO\] 127\.0\.0\.1:\d+ tcp A local\.test\. NOERROR view=local pid=%d uid=%d\n`, os.Getpid(), os.Geteuid()))
	unixsockEventually(t, func() bool { return want.MatchString(s.Log()) }, "log line %v\n%s", want, s.Log)
	extra := fmt.Sprintf("pid=%d uid=%d", os.Getpid(), os.Geteuid())
	unixsockEventually(t, func() bool {
		n := 0
		for _, d := range tap.Messages() {
			if m := d.GetMessage(); string(d.GetExtra()) == extra && m.GetSocketProtocol() == dnstap.SocketProtocol_TCP {
				n++
			}
		}
		return n == 2
	}, "dnstap query and response with extra %q", extra)
	s.Stop(t)
}

// peerMetric returns the sum of the metric over the series with labels, once it is want or after
// 10 s: plugins count a query after they have written its reply, so the count may trail the
// reply a client has read.
func peerMetric(t *testing.T, s *kit.CoreDNS, name string, labels map[string]string, want float64) float64 {
	t.Helper()
	got := s.Metric(t, name, labels)
	for deadline := time.Now().Add(10 * time.Second); got != want && time.Now().Before(deadline); {
		time.Sleep(20 * time.Millisecond)
		got = s.Metric(t, name, labels)
	}
	return got
}

func peerQuery(name string, id uint16) *dns.Msg {
	q := new(dns.Msg)
	q.SetQuestion(name, dns.TypeA)
	if id != 0 {
		q.Id = id
	}
	return q
}

// peerExchange sends q on the socket connection c and reads its reply.
func peerExchange(t *testing.T, c net.Conn, q *dns.Msg, rcode int) *dns.Msg {
	t.Helper()
	unixsockSend(t, c, q)
	r := unixsockRecv(t, c)
	if r.Id != q.Id || r.Rcode != rcode {
		t.Fatalf("socket %s: got %v, want id %d rcode %s", q.Question[0].Name, r, q.Id, dns.RcodeToString[rcode])
	}
	return r
}

type peerOther struct{ pid, uid, gid int }

// peerSocat sends q on the socket with socat running as uid:gid, checks the reply, and returns
// socat's pid (socat serves one connection in its own process).
func peerSocat(t *testing.T, sock string, q *dns.Msg, uid, gid int) int {
	t.Helper()
	b, err := q.Pack()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("socat", "-t", "5", "STDIO", "UNIX-CONNECT:"+sock)
	cmd.Stdin = bytes.NewReader(append(binary.BigEndian.AppendUint16(nil, uint16(len(b))), b...))
	if uid != os.Geteuid() {
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}}
	}
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	pid := cmd.Process.Pid
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err = <-done:
	case <-time.After(10 * time.Second):
		cmd.Process.Kill()
		<-done
		t.Fatalf("socat did not finish: %s", errb.String())
	}
	if err != nil {
		t.Fatalf("socat: %v %s", err, errb.String())
	}
	raw := out.Bytes()
	if len(raw) < 2 || int(binary.BigEndian.Uint16(raw)) != len(raw)-2 {
		t.Fatalf("socat read %d bytes, not one framed reply", len(raw))
	}
	r := new(dns.Msg)
	if err := r.Unpack(raw[2:]); err != nil || r.Id != q.Id || r.Rcode != dns.RcodeSuccess || len(r.Answer) != 1 {
		t.Fatalf("socat's reply: %v %v", r, err)
	}
	return pid
}

func equalStrings(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}
