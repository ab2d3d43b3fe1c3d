package warmcache

import (
	"net"

	"github.com/miekg/dns"
)

// captureWriter keeps the response the rest of the chain writes instead of sending it:
// the cache inserts it first and then answers every waiting client from the entry.
// Addresses come from the wrapped writer, which may be nil (refreshes have no client).
type captureWriter struct {
	dns.ResponseWriter
	msg *dns.Msg
}

// refreshAddr is the client address of refreshes. As with cache's prefetch, TCP keeps
// upstream answers from being truncated.
var refreshAddr = &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1)}

// WriteMsg implements dns.ResponseWriter.
func (w *captureWriter) WriteMsg(m *dns.Msg) error {
	w.msg = m
	return nil
}

// Write implements dns.ResponseWriter.
func (w *captureWriter) Write(buf []byte) (int, error) {
	m := new(dns.Msg)
	if err := m.Unpack(buf); err != nil {
		return 0, err
	}
	w.msg = m
	return len(buf), nil
}

// RemoteAddr implements dns.ResponseWriter.
func (w *captureWriter) RemoteAddr() net.Addr {
	if w.ResponseWriter == nil {
		return refreshAddr
	}
	return w.ResponseWriter.RemoteAddr()
}

// LocalAddr implements dns.ResponseWriter.
func (w *captureWriter) LocalAddr() net.Addr {
	if w.ResponseWriter == nil {
		return refreshAddr
	}
	return w.ResponseWriter.LocalAddr()
}

// Close implements dns.ResponseWriter.
func (w *captureWriter) Close() error { return nil }

// TsigStatus implements dns.ResponseWriter.
func (w *captureWriter) TsigStatus() error { return nil }

// TsigTimersOnly implements dns.ResponseWriter.
func (w *captureWriter) TsigTimersOnly(bool) {}

// Hijack implements dns.ResponseWriter.
func (w *captureWriter) Hijack() {}
