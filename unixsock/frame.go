package unixsock

import (
	"encoding/binary"
	"errors"
	"io"

	"github.com/miekg/dns"
)

// headerLen is the length of the DNS header (RFC 1035 §4.1.1).
const headerLen = 12

var errZeroFrame = errors.New("zero-length frame")

// readFrame reads one message with RFC 1035 §4.2.2 framing: a 2-byte big-endian length, then that
// many bytes. The length field bounds a frame to 65535 bytes. A zero length is an error: there is
// no message to answer and the client is not speaking DNS.
func readFrame(r io.Reader) ([]byte, error) {
	var n [2]byte
	if _, err := io.ReadFull(r, n[:]); err != nil {
		return nil, err
	}
	l := binary.BigEndian.Uint16(n[:])
	if l == 0 {
		return nil, errZeroFrame
	}
	buf := make([]byte, l)
	if _, err := io.ReadFull(r, buf); err != nil {
		if err == io.EOF {
			err = io.ErrUnexpectedEOF
		}
		return nil, err
	}
	return buf, nil
}

// header returns the header of a packed message, or false when it is too short to hold one.
func header(b []byte) (dns.Header, bool) {
	if len(b) < headerLen {
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
