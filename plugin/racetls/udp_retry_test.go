package racetls

import (
	"context"
	"net"
	"testing"
	"time"

	"github.com/miekg/dns"
)

// TestUDPResendsLostQuery: an upstream that loses the first datagram of every query is
// answered on the resend, within the deadline, as forward's UDP retry does.
func TestUDPResendsLostQuery(t *testing.T) {
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	seen := map[uint16]int{}
	go func() {
		buf := make([]byte, 512)
		for {
			n, from, err := pc.ReadFrom(buf)
			if err != nil {
				return
			}
			m := new(dns.Msg)
			if m.Unpack(buf[:n]) != nil {
				continue
			}
			seen[m.Id]++
			if seen[m.Id] == 1 {
				continue // lost
			}
			r := new(dns.Msg)
			r.SetReply(m)
			r.Answer = []dns.RR{&dns.A{Hdr: dns.RR_Header{Name: m.Question[0].Name, Rrtype: dns.TypeA, Class: dns.ClassINET, Ttl: 60}, A: net.IPv4(192, 0, 2, 1)}}
			b, _ := r.Pack()
			pc.WriteTo(b, from)
		}
	}()
	tr := &udpTransport{addr: pc.LocalAddr().String(), timeout: 2 * time.Second}
	q := new(dns.Msg)
	q.SetQuestion("lost.example.", dns.TypeA)
	q.Id = 4242
	b, _ := q.Pack()
	r, err := tr.exchange(context.Background(), b)
	if err != nil {
		t.Fatalf("no reply after a lost datagram: %v", err)
	}
	m := new(dns.Msg)
	if err := m.Unpack(r); err != nil || m.Id != 4242 || len(m.Answer) != 1 {
		t.Fatalf("reply %v (%v)", m, err)
	}
}
