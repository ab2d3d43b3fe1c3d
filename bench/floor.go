package main

import (
	"flag"
	"net"
	"os"
	"os/signal"
	"syscall"

	"github.com/miekg/dns"
)

// floorMain runs the floor responder: a trivial miekg/dns UDP server that answers every
// question with one fixed A record, unpacking and packing like any miekg/dns server. It is
// the fastest a miekg/dns-based server can answer on this machine.
func floorMain(args []string) error {
	fs := flag.NewFlagSet("floor", flag.ExitOnError)
	addr := fs.String("addr", "127.0.0.1:0", "UDP address to serve")
	fs.Parse(args)
	pc, err := net.ListenPacket("udp", *addr)
	if err != nil {
		return err
	}
	a := net.IPv4(198, 18, 0, 1)
	srv := &dns.Server{PacketConn: pc, Handler: dns.HandlerFunc(func(w dns.ResponseWriter, r *dns.Msg) {
		m := new(dns.Msg)
		m.SetReply(r)
		if len(r.Question) == 1 && r.Question[0].Qtype == dns.TypeA {
			m.Answer = []dns.RR{&dns.A{Hdr: dns.RR_Header{Name: r.Question[0].Name, Rrtype: dns.TypeA, Class: dns.ClassINET, Ttl: 300}, A: a}}
		}
		if o := r.IsEdns0(); o != nil {
			m.SetEdns0(o.UDPSize(), false)
		}
		w.WriteMsg(m)
	})}
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGTERM, syscall.SIGINT)
	go func() {
		<-sig
		srv.Shutdown()
	}()
	return srv.ActivateAndServe()
}
