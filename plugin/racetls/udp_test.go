package racetls

import (
	"fmt"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/dnscache/dnscache/test/lab"
	"github.com/miekg/dns"
)

// udpServer answers each query on pc after sending the bogus replies that spoof makes
// for it, and records the ID (in order) and source port of every query it reads.
func udpServer(t *testing.T, spoof func(q *dns.Msg) []*dns.Msg) (addr string, seen func() (ids []uint16, ports map[int]bool, n int)) {
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var ids []uint16
	ports, n := map[int]bool{}, 0
	done := make(chan struct{})
	go func() {
		defer close(done)
		buf := make([]byte, 65535)
		for {
			k, from, err := pc.ReadFrom(buf)
			if err != nil {
				return
			}
			q := new(dns.Msg)
			if q.Unpack(buf[:k]) != nil || len(q.Question) != 1 {
				continue
			}
			mu.Lock()
			ids = append(ids, q.Id)
			ports[from.(*net.UDPAddr).Port] = true
			n++
			mu.Unlock()
			for _, m := range spoof(q) {
				b, _ := m.Pack()
				pc.WriteTo(b, from)
			}
			r := new(dns.Msg)
			r.SetReply(q)
			r.Answer = append(r.Answer, &dns.A{Hdr: dns.RR_Header{Name: q.Question[0].Name, Rrtype: dns.TypeA, Class: dns.ClassINET, Ttl: 60}, A: lab.AddrA(q.Question[0].Name)})
			b, _ := r.Pack()
			pc.WriteTo(b, from)
		}
	}()
	t.Cleanup(func() { pc.Close(); <-done })
	return pc.LocalAddr().String(), func() ([]uint16, map[int]bool, int) {
		mu.Lock()
		defer mu.Unlock()
		return ids, ports, n
	}
}

// TestUDPRandomised: every query goes out with a random ID from its own random source
// port (RFC 5452 §9.2), and a reply with another ID or another question is not taken: the
// real reply that follows it is.
func TestUDPRandomised(t *testing.T) {
	addr, seen := udpServer(t, func(q *dns.Msg) []*dns.Msg {
		wrongID := new(dns.Msg)
		wrongID.SetReply(q)
		wrongID.Id = q.Id + 1
		wrongID.Answer = []dns.RR{&dns.A{Hdr: dns.RR_Header{Name: q.Question[0].Name, Rrtype: dns.TypeA, Class: dns.ClassINET, Ttl: 60}, A: net.IPv4(6, 6, 6, 6)}}
		wrongQ := wrongID.Copy()
		wrongQ.Id = q.Id
		wrongQ.Question[0].Name = "evil.example."
		return []*dns.Msg{wrongID, wrongQ}
	})
	rt := startRT(t, "racetls . dns://"+addr+" {\n conns 1\n keepalive 1m\n}")
	const n = 30
	for i := range n {
		name := fmt.Sprintf("u%d.example.com.", i)
		r, err := query(rt, name)
		if err != nil || len(r.Answer) != 1 || !r.Answer[0].(*dns.A).A.Equal(lab.AddrA(name)) {
			t.Fatalf("%s: %v %v, want the real answer", name, r, err)
		}
	}
	ids, ports, total := seen()
	// n queries and the probes; sequential IDs from one socket would give 1 port.
	distinct, sequential := map[uint16]bool{}, 0
	for i, id := range ids {
		distinct[id] = true
		if i > 0 && id == ids[i-1]+1 {
			sequential++
		}
	}
	if len(distinct) < total-1 || len(ports) < total-1 {
		t.Errorf("%d queries used %d IDs and %d source ports, want all distinct", total, len(distinct), len(ports))
	}
	// The connection's own IDs count up; on the wire each is random.
	if sequential > total/2 {
		t.Errorf("%d of %d IDs follow the one before, want random IDs", sequential, total)
	}
}

// TestUDPFaults: the lab's faults over plain UDP and pipelined TCP never reach the client
// while another upstream answers. The faulty upstream is ranked first for each query; a
// 10 ms hedge asks the other when it is silent.
func TestUDPFaults(t *testing.T) {
	for _, tcp := range []bool{false, true} {
		for _, f := range []lab.FaultKind{lab.Garbage, lab.WrongID, lab.WrongQuestion, lab.ServFail, lab.BlackHole, lab.Reset} {
			t.Run(fmt.Sprintf("%s-tcp=%v", f, tcp), func(t *testing.T) {
				t.Parallel()
				bad := lab.StartTest(t, lab.Config{Latency: fixed(time.Millisecond), Fault: lab.Fault{Kind: f}})
				good := lab.StartTest(t, lab.Config{Latency: fixed(5 * time.Millisecond)})
				opt := ""
				if tcp {
					opt = "force_tcp"
				}
				rt := startRT(t, fmt.Sprintf("racetls . dns://%s dns://%s {\n race 1\n hedge 10ms\n timeout 1s\n %s\n}", bad.UDPAddr(), good.UDPAddr(), opt))
				for i := range 10 {
					rankFirst(rt.upstreams[0], rt.upstreams[1])
					mustNoError(t, rt, fmt.Sprintf("uf%d.example.com.", i))
				}
				if q := rt.upstreams[0].tally.queries.Load(); q < 5 {
					t.Errorf("the faulty upstream was asked %d of 10 queries first", q)
				}
				if rt.upstreams[0].tally.wins.Load() != 0 {
					t.Errorf("the faulty upstream won %d races", rt.upstreams[0].tally.wins.Load())
				}
			})
		}
	}
}
