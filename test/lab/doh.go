package lab

import (
	"crypto/tls"
	"encoding/base64"
	"io"
	"net"
	"net/http"

	"github.com/miekg/dns"
	"golang.org/x/net/http2"
)

// DoHMime is the media type of DoH requests and replies (RFC 8484 §6).
const DoHMime = "application/dns-message"

// acceptDoH serves DNS-over-HTTPS (RFC 8484) over HTTP/2 on ln: each accepted connection is
// a lab conn (so Down closes it and Reset aborts it with an RST) with its TLS handshake
// counted, then served by an http2.Server of its own, whose idle timeout is the lab's (or
// IdleClose's After when that fault was drawn for the connection).
func (u *Upstream) acceptDoH(ln net.Listener, stop chan struct{}) {
	conf := u.tlsConf.Clone()
	conf.NextProtos = []string{"h2"}
	u.acceptConns(ln, func(raw net.Conn) *conn {
		return &conn{raw: raw, rw: tls.Server(raw, conf), transport: "https", done: make(chan struct{})}
	}, func(c *conn) { u.serveDoHConn(c, stop) })
}

func (u *Upstream) serveDoHConn(c *conn, stop chan struct{}) {
	tc := c.rw.(*tls.Conn)
	if !u.handshake(tc) {
		return
	}
	idle, fault := u.idleFor(c)
	if fault {
		u.stats.faults.Add(1)
	}
	srv := &http2.Server{IdleTimeout: idle}
	srv.ServeConn(tc, &http2.ServeConnOpts{
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { u.serveDoH(c, w, r, stop) }),
	})
}

// serveDoH answers one DoH request: POST of application/dns-message, or GET with ?dns=
// (base64url), on the configured path.
func (u *Upstream) serveDoH(c *conn, w http.ResponseWriter, r *http.Request, stop chan struct{}) {
	if r.URL.Path != u.dohPath {
		http.Error(w, "not found", http.StatusNotFound)
		return
	}
	var q []byte
	switch r.Method {
	case http.MethodPost:
		if r.Header.Get("Content-Type") != DoHMime {
			http.Error(w, "unsupported media type", http.StatusUnsupportedMediaType)
			return
		}
		b, err := io.ReadAll(io.LimitReader(r.Body, dns.MaxMsgSize+1))
		if err != nil || len(b) > dns.MaxMsgSize {
			http.Error(w, "bad body", http.StatusRequestEntityTooLarge)
			return
		}
		q = b
	case http.MethodGet:
		b, err := base64.RawURLEncoding.DecodeString(r.URL.Query().Get("dns"))
		if err != nil {
			http.Error(w, "bad dns parameter", http.StatusBadRequest)
			return
		}
		q = b
	default:
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	req := new(dns.Msg)
	if req.Unpack(q) != nil || req.Response {
		http.Error(w, "malformed query", http.StatusBadRequest)
		return
	}
	c.inflight.Add(1)
	defer c.inflight.Add(-1)
	c.touch()
	u.seen(req, "https")
	p := u.draw()
	switch p.fault {
	case Reset:
		c.reset()
		panic(http.ErrAbortHandler) // the connection is gone: no reply
	case BlackHole:
		select {
		case <-stop:
		case <-c.done:
		case <-r.Context().Done():
		}
		panic(http.ErrAbortHandler) // RST_STREAM, not an empty 200
	}
	if !wait(p.delay, stop, c.done) {
		panic(http.ErrAbortHandler)
	}
	body := u.reply(req, p.fault, "https")
	status, ctype := http.StatusOK, DoHMime
	switch p.fault {
	case HTTPError:
		status, body = http.StatusServiceUnavailable, []byte("lab: injected HTTP error\n")
	case WrongType:
		ctype = "text/html; charset=utf-8"
	case Oversize:
		body = append(body, make([]byte, dns.MaxMsgSize+1-len(body))...)
	}
	w.Header().Set("Content-Type", ctype)
	w.WriteHeader(status)
	if _, err := w.Write(body); err == nil {
		u.stats.replies.Add(1)
	}
	c.touch()
}
