package unixsock

import (
	"encoding/binary"

	"github.com/dnscache/dnscache/plugin/pkg/wire"
	"github.com/miekg/dns"
)

// header returns the header of a packed message, or false when it is too short to hold one.
func header(b []byte) (dns.Header, bool) {
	if len(b) < wire.HeaderLen {
		return dns.Header{}, false
	}
	return dns.Header{
		Id:      binary.BigEndian.Uint16(b[0:]),
		Bits:    binary.BigEndian.Uint16(b[2:]),
		Qdcount: binary.BigEndian.Uint16(b[4:]),
		Ancount: binary.BigEndian.Uint16(b[6:]),
		Nscount: binary.BigEndian.Uint16(b[8:]),
		Arcount: binary.BigEndian.Uint16(b[10:]),
	}, true
}

// reject returns the reply to a message that is not served: the header's ID and opcode, QR set,
// and rcode; no sections, as miekg/dns's server answers.
func reject(h dns.Header, rcode int) *dns.Msg {
	m := new(dns.Msg)
	m.Id = h.Id
	m.Response = true
	m.Opcode = int(h.Bits>>11) & 0xF
	m.RecursionDesired = h.Bits&(1<<8) != 0
	m.Rcode = rcode
	return m
}
