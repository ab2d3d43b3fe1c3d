package unixsock

import (
	"net"

	"github.com/miekg/dns"
)

// writer is the dns.ResponseWriter of one query. Its addresses are synthetic *net.TCPAddr:
// request.Request.Proto() is then "tcp", so replies are not truncated to a UDP size, and log,
// acl and metrics see an IP (127.0.0.1) instead of a Unix address they cannot parse. The remote
// port numbers the connection (1-65535, wrapping), so log lines of one connection share it.
type writer struct {
	c *conn
}

// LocalAddr implements dns.ResponseWriter.
func (w *writer) LocalAddr() net.Addr { return w.c.local }

// RemoteAddr implements dns.ResponseWriter.
func (w *writer) RemoteAddr() net.Addr { return w.c.remote }

// WriteMsg implements dns.ResponseWriter.
func (w *writer) WriteMsg(m *dns.Msg) error { return w.c.writeMsg(m) }

// Write implements dns.ResponseWriter: b is a packed message, sent with its length prefix.
func (w *writer) Write(b []byte) (int, error) {
	if err := w.c.write(b); err != nil {
		return 0, err
	}
	return len(b), nil
}

// Close implements dns.ResponseWriter. As over TCP, it closes the connection.
func (w *writer) Close() error { return w.c.close() }

// TsigStatus implements dns.ResponseWriter. TSIG is not verified on the socket.
func (w *writer) TsigStatus() error { return nil }

// TsigTimersOnly implements dns.ResponseWriter.
func (w *writer) TsigTimersOnly(bool) {}

// Hijack implements dns.ResponseWriter.
func (w *writer) Hijack() {}
