package racetls

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"mime"
	"net"
	"net/http"

	"github.com/dnscache/dnscache/plugin/pkg/wire"

	"golang.org/x/net/http2"
)

// dohMime is the DoH media type (RFC 8484 §6).
const dohMime = "application/dns-message"

// httpsTransport is DNS over HTTPS (RFC 8484) over HTTP/2: one HTTP/2 connection per
// session, one stream (a POST with message ID 0, RFC 8484 §4.1) per query. Sessions
// resume. A reply counts only with status 200, the DoH media type and a body that fits a
// DNS message.
type httpsTransport struct {
	addr      string
	url       string
	host      string // :authority
	tlsConfig *tls.Config
	h2        *http2.Transport
	opts      *options
}

func newHTTPSTransport(addr, path string, tc *tls.Config, opts *options) *httpsTransport {
	host := tc.ServerName
	if host == "" {
		host = addr
	} else if _, port, _ := net.SplitHostPort(addr); port != "443" {
		host = net.JoinHostPort(host, port)
	}
	return &httpsTransport{
		addr:      addr,
		url:       "https://" + host + path,
		host:      host,
		tlsConfig: tc,
		opts:      opts,
		h2: &http2.Transport{
			ReadIdleTimeout: 2 * opts.keepalive, // health-check PINGs on a connection gone quiet
			PingTimeout:     opts.timeout,
		},
	}
}

func (t *httpsTransport) scheme() string { return "https" }
func (t *httpsTransport) datagram() bool { return false }
func (t *httpsTransport) stream() bool   { return false }

var errNoH2 = errors.New("the server did not negotiate HTTP/2 (ALPN h2)")

func (t *httpsTransport) dial(ctx context.Context) (session, error) {
	d := net.Dialer{}
	c, err := (&tls.Dialer{NetDialer: &d, Config: t.tlsConfig}).DialContext(ctx, "tcp", t.addr)
	if err != nil {
		return nil, err
	}
	tc := c.(*tls.Conn)
	cs := tc.ConnectionState()
	if cs.NegotiatedProtocol != "h2" {
		tc.Close()
		return nil, errNoH2
	}
	cc, err := t.h2.NewClientConn(tc)
	if err != nil {
		tc.Close()
		return nil, err
	}
	h := &httpsSession{t: t, cc: cc}
	h.msgSession = newMsgSession(&msgSession{
		exchange: h.exchange,
		fatal:    func(error) bool { return !cc.CanTakeNewRequest() },
		onClose:  func() { cc.Close() },
		hs:       handshake{tls: true, resumed: cs.DidResume},
		local:    tc.LocalAddr(),
	})
	return h, nil
}

// httpsSession is one HTTP/2 connection.
type httpsSession struct {
	*msgSession
	t  *httpsTransport
	cc *http2.ClientConn
}

func (h *httpsSession) exchange(ctx context.Context, m []byte) ([]byte, error) {
	ctx, cancel := context.WithTimeout(ctx, h.t.opts.timeout)
	defer cancel()
	id := binary.BigEndian.Uint16(m)
	body := append([]byte(nil), m...)
	binary.BigEndian.PutUint16(body, 0) // RFC 8484 §4.1: ID 0, so that HTTP caches work
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, h.t.url, bytes.NewReader(body))
	if err != nil {
		return nil, err
	}
	req.Host = h.t.host
	req.Header.Set("Content-Type", dohMime)
	req.Header.Set("Accept", dohMime)
	resp, err := h.cc.RoundTrip(req)
	if err != nil {
		if h.cc.CanTakeNewRequest() {
			return nil, &queryError{kind: kindReset, err: err}
		}
		return nil, err
	}
	defer resp.Body.Close()
	return dohReply(resp, id)
}

// dohReply reads the DoH response resp to the query with ID id: status 200, the DoH media
// type and a body that fits a DNS message, returned with the ID restored.
func dohReply(resp *http.Response, id uint16) ([]byte, error) {
	if resp.StatusCode != http.StatusOK {
		io.Copy(io.Discard, io.LimitReader(resp.Body, 4096))
		return nil, &queryError{kind: kindHTTP, err: fmt.Errorf("DoH: HTTP status %d", resp.StatusCode)}
	}
	if mt, _, err := mime.ParseMediaType(resp.Header.Get("Content-Type")); err != nil || mt != dohMime {
		return nil, &queryError{kind: kindHTTP, err: fmt.Errorf("DoH: content type %q", resp.Header.Get("Content-Type"))}
	}
	// A DNS message is at most 65535 bytes; a longer body is not one.
	r, err := io.ReadAll(io.LimitReader(resp.Body, 0x10000))
	if err != nil {
		return nil, &queryError{kind: kindReset, err: err}
	}
	if len(r) > 0xFFFF {
		return nil, &queryError{kind: kindHTTP, err: errDoHTooLong}
	}
	if len(r) < wire.HeaderLen {
		return nil, &queryError{kind: kindGarbage, err: errShortReply}
	}
	// RFC 8484 §4.1: the query goes with ID 0, so its reply carries ID 0; another ID is
	// not the reply to this query (DESIGN §5: only matching ID and question win).
	if binary.BigEndian.Uint16(r) != 0 {
		return nil, &queryError{kind: kindGarbage, err: errDoHID}
	}
	binary.BigEndian.PutUint16(r, id)
	return r, nil
}

var errDoHID = errors.New("DoH: reply ID is not 0")

var errDoHTooLong = errors.New("DoH: body longer than a DNS message")
