package racetls

import (
	"bytes"
	"encoding/binary"
	"io"
	"net/http"
	"testing"

	"github.com/dnscache/dnscache/plugin/pkg/wire"

	"github.com/miekg/dns"
)

// checkReply fails unless r is nil with an error, or a message of a DNS header's length
// at least, at most 65535 bytes, with the query's ID.
func checkReply(t *testing.T, r []byte, err error, id uint16) {
	t.Helper()
	if err != nil {
		if r != nil {
			t.Fatalf("reply %x with error %v", r, err)
		}
		return
	}
	if len(r) < wire.HeaderLen || len(r) > 0xFFFF || binary.BigEndian.Uint16(r) != id {
		t.Fatalf("reply %x (%d bytes), want a message with ID %#x", r, len(r), id)
	}
}

// FuzzDoHReply: whatever status, content type and body a DoH server returns, the reply
// reader returns an error or a DNS-sized message with the query's ID, and never panics.
func FuzzDoHReply(f *testing.F) {
	ok, _ := (&dns.Msg{MsgHdr: dns.MsgHdr{Response: true}, Question: []dns.Question{{Name: ".", Qtype: dns.TypeNS, Qclass: dns.ClassINET}}}).Pack()
	f.Add(200, dohMime, ok)
	f.Add(200, dohMime+"; charset=x", ok)
	f.Add(503, dohMime, ok)
	f.Add(200, "text/html", ok)
	f.Add(200, dohMime, make([]byte, 0x10001))
	f.Add(200, dohMime, []byte{1, 2, 3})
	f.Add(200, "", []byte{})
	f.Fuzz(func(t *testing.T, status int, ctype string, body []byte) {
		resp := &http.Response{StatusCode: status, Header: http.Header{"Content-Type": {ctype}}, Body: io.NopCloser(bytes.NewReader(body))}
		r, err := dohReply(resp, 0xBEEF)
		checkReply(t, r, err, 0xBEEF)
		if err == nil && (status != 200 || len(body) > 0xFFFF) {
			t.Fatalf("status %d, %d bytes accepted", status, len(body))
		}
	})
}

// FuzzDoQReply: whatever bytes a DoQ stream carries, the reply reader returns an error or
// one framed message that had ID 0, with the query's ID, and never panics.
func FuzzDoQReply(f *testing.F) {
	ok, _ := (&dns.Msg{MsgHdr: dns.MsgHdr{Response: true}, Question: []dns.Question{{Name: ".", Qtype: dns.TypeNS, Qclass: dns.ClassINET}}}).Pack()
	frame := binary.BigEndian.AppendUint16(nil, uint16(len(ok)))
	f.Add(append(frame, ok...))
	f.Add(frame)
	f.Add([]byte{0, 0})
	f.Add([]byte{0xff, 0xff, 0, 1})
	f.Add([]byte{0, 12, 0, 1, 0x81, 0x80, 0, 1, 0, 0, 0, 0, 0, 0})
	f.Fuzz(func(t *testing.T, stream []byte) {
		r, err := doqReply(bytes.NewReader(stream), 0xBEEF)
		checkReply(t, r, err, 0xBEEF)
		if err == nil && (len(stream) < 2+wire.HeaderLen || stream[2] != 0 || stream[3] != 0) {
			t.Fatalf("stream %x accepted", stream)
		}
	})
}
