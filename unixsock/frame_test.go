package unixsock

import (
	"bytes"
	"encoding/binary"
	"errors"
	"net"
	"os"
	"syscall"
	"testing"

	"github.com/dnscache/dnscache/plugin/pkg/wire"
	"github.com/miekg/dns"
)

func TestHeaderAndReject(t *testing.T) {
	q := query(0xbeef, "example.org.", dns.TypeA)
	if _, ok := header(q[:11]); ok {
		t.Fatal("11 bytes parsed as a header")
	}
	h, ok := header(q)
	if !ok || h.Id != 0xbeef || h.Qdcount != 1 {
		t.Fatalf("header = %+v, %v", h, ok)
	}
	m := reject(h, dns.RcodeFormatError)
	if m.Id != 0xbeef || !m.Response || !m.RecursionDesired || m.Rcode != dns.RcodeFormatError || m.Opcode != dns.OpcodeQuery {
		t.Fatalf("reject = %v", m)
	}
}

// FuzzReadFrame feeds arbitrary bytes through the reader loop the connection runs: framing,
// header, accept decision, unpack. It must never panic, never return a frame the length prefix
// did not announce, and never consume more than it was given.
func FuzzReadFrame(f *testing.F) {
	f.Add(frame(query(1, "example.org.", dns.TypeA)))
	f.Add(append(frame(query(1, "a.", dns.TypeA)), frame(query(2, "b.", dns.TypeAAAA))...))
	f.Add([]byte{0, 0})
	f.Add([]byte{0, 12, 0, 1, 0x80, 0, 0, 1, 0, 0, 0, 0, 0, 0})
	f.Add([]byte{0xff, 0xff, 1})
	f.Fuzz(func(t *testing.T, in []byte) {
		r := bytes.NewReader(in)
		consumed := 0
		for {
			b, err := wire.ReadFrame(r, nil)
			if err != nil {
				if errors.Is(err, wire.ErrZeroFrame) {
					consumed += 2
				}
				break
			}
			if len(b) == 0 || int(binary.BigEndian.Uint16(in[consumed:])) != len(b) {
				t.Fatalf("frame of %d bytes at offset %d does not match its prefix", len(b), consumed)
			}
			consumed += 2 + len(b)
			if consumed > len(in) {
				t.Fatalf("consumed %d of %d bytes", consumed, len(in))
			}
			if h, ok := header(b); ok && dns.DefaultMsgAcceptFunc(h) == dns.MsgAccept {
				m := new(dns.Msg)
				if m.Unpack(b) == nil && m.Id != h.Id {
					t.Fatalf("header id %d, message id %d", h.Id, m.Id)
				}
				reject(h, dns.RcodeFormatError).Pack()
			}
		}
	})
}

func TestWriteErrorKind(t *testing.T) {
	for _, tc := range []struct {
		err  error
		want string
	}{
		{&net.OpError{Op: "write", Err: os.NewSyscallError("write", syscall.EPIPE)}, "peer_closed"},
		{&net.OpError{Op: "write", Err: os.NewSyscallError("write", syscall.ECONNRESET)}, "peer_closed"},
		{os.ErrDeadlineExceeded, "write"},
		{errors.New("other"), "write"},
	} {
		if got := writeErrorKind(tc.err); got != tc.want {
			t.Errorf("writeErrorKind(%v) = %q, want %q", tc.err, got, tc.want)
		}
	}
}
