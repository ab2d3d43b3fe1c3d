package lab

import (
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"io"
	"net/http"
	"testing"
	"time"

	"github.com/dnscache/dnscache/plugin/pkg/wire"
	"github.com/miekg/dns"
	"github.com/quic-go/quic-go"
	"golang.org/x/net/http2"
)

func startDoX(t *testing.T, cfg Config) *Upstream {
	t.Helper()
	cfg.DoH, cfg.DoQ = "127.0.0.1:0", "127.0.0.1:0"
	return start(t, cfg)
}

// dohClient is an HTTP/2-only client trusting the lab's CA, with its own session cache.
func dohClient(u *Upstream) *http.Client {
	conf := u.ClientTLS()
	conf.NextProtos = []string{"h2"}
	return &http.Client{Transport: &http2.Transport{TLSClientConfig: conf}, Timeout: 3 * time.Second}
}

func packQ(t *testing.T, name string, id uint16) []byte {
	t.Helper()
	m := question(name)
	m.Id = id
	b, err := m.Pack()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// dohPost posts a query for name and returns the response (body read) or an error.
func dohPost(t *testing.T, cl *http.Client, u *Upstream, name string) (*http.Response, []byte, error) {
	t.Helper()
	resp, err := cl.Post("https://"+u.DoHAddr()+u.DoHPath(), DoHMime, bytes.NewReader(packQ(t, name, 0)))
	if err != nil {
		return nil, nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	return resp, body, err
}

func TestDoHAnswers(t *testing.T) {
	u := startDoX(t, Config{})
	cl := dohClient(u)
	for i := range 3 {
		resp, body, err := dohPost(t, cl, u, "www.Example.")
		if err != nil {
			t.Fatal(err)
		}
		m := new(dns.Msg)
		if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != DoHMime || m.Unpack(body) != nil {
			t.Fatalf("%d %q %x", resp.StatusCode, resp.Header.Get("Content-Type"), body)
		}
		if m.Id != 0 || len(m.Answer) != 1 || m.Question[0].Name != "www.Example." || resp.ProtoMajor != 2 {
			t.Errorf("query %d: HTTP/%d reply %v", i, resp.ProtoMajor, m)
		}
	}
	// GET with ?dns= (RFC 8484 §4.1).
	resp, err := cl.Get("https://" + u.DoHAddr() + "/dns-query?dns=" + base64.RawURLEncoding.EncodeToString(packQ(t, "get.example.", 0)))
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("GET: %v %v", resp, err)
	}
	resp.Body.Close()
	// Wrong path, method, media type: HTTP errors, not DNS replies.
	for _, c := range []struct {
		method, path, ctype string
		want                int
	}{{"POST", "/other", DoHMime, 404}, {"PUT", "/dns-query", DoHMime, 405}, {"POST", "/dns-query", "text/plain", 415}} {
		req, _ := http.NewRequest(c.method, "https://"+u.DoHAddr()+c.path, bytes.NewReader(packQ(t, "x.example.", 0)))
		req.Header.Set("Content-Type", c.ctype)
		resp, err := cl.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != c.want {
			t.Errorf("%s %s %s: %d, want %d", c.method, c.path, c.ctype, resp.StatusCode, c.want)
		}
	}
	s := u.Stats()
	if s.QueriesHTTPS != 4 || s.Conns != 1 || s.Handshakes != 1 {
		t.Errorf("stats %+v: want 4 DoH queries on one connection, one handshake", s)
	}
	// A new client with the same session cache resumes.
	cl.CloseIdleConnections()
	cl2 := &http.Client{Transport: &http2.Transport{TLSClientConfig: cl.Transport.(*http2.Transport).TLSClientConfig}}
	if _, _, err := dohPost(t, cl2, u, "again.example."); err != nil {
		t.Fatal(err)
	}
	if s := u.Stats(); s.Resumed != 1 || s.Conns != 2 {
		t.Errorf("stats %+v: want the second connection resumed", s)
	}
}

func TestDoHFaults(t *testing.T) {
	u := startDoX(t, Config{})
	cl := dohClient(u)
	check := func(f FaultKind, ok func(*http.Response, []byte, error) bool) {
		t.Helper()
		u.SetFault(Fault{Kind: f})
		resp, body, err := dohPost(t, cl, u, "f.example.")
		if !ok(resp, body, err) {
			t.Errorf("%s: %v %x %v", f, resp, body, err)
		}
	}
	reply := func(body []byte) *dns.Msg {
		m := new(dns.Msg)
		if m.Unpack(body) != nil {
			return nil
		}
		return m
	}
	check(Reset, func(_ *http.Response, _ []byte, err error) bool { return err != nil })
	check(HTTPError, func(r *http.Response, _ []byte, err error) bool { return err == nil && r.StatusCode == 503 })
	check(WrongType, func(r *http.Response, b []byte, err error) bool {
		return err == nil && r.StatusCode == 200 && r.Header.Get("Content-Type") != DoHMime && reply(b) != nil
	})
	check(Oversize, func(r *http.Response, b []byte, err error) bool { return err == nil && len(b) > dns.MaxMsgSize })
	check(Garbage, func(r *http.Response, b []byte, err error) bool {
		return err == nil && r.StatusCode == 200 && reply(b) == nil
	})
	check(WrongID, func(_ *http.Response, b []byte, err error) bool { m := reply(b); return m != nil && m.Id != 0 })
	check(WrongQuestion, func(_ *http.Response, b []byte, err error) bool {
		m := reply(b)
		return m != nil && m.Question[0].Name == "wrong.f.example."
	})
	check(ServFail, func(_ *http.Response, b []byte, err error) bool {
		m := reply(b)
		return m != nil && m.Rcode == dns.RcodeServerFailure
	})
	// BlackHole: no reply until the client gives up; the stream is reset, not answered empty.
	u.SetFault(Fault{Kind: BlackHole})
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, "POST", "https://"+u.DoHAddr()+"/dns-query", bytes.NewReader(packQ(t, "bh.example.", 0)))
	req.Header.Set("Content-Type", DoHMime)
	if resp, err := cl.Do(req); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("BlackHole: %v %v, want the client's deadline", resp, err)
	}
	u.SetFault(Fault{})
	if resp, _, err := dohPost(t, cl, u, "after.example."); err != nil || resp.StatusCode != 200 {
		t.Errorf("after the faults: %v %v", resp, err)
	}
}

// TestDoHIdleClose: IdleClose closes an idle DoH connection after its After.
func TestDoHIdleClose(t *testing.T) {
	u := startDoX(t, Config{Fault: Fault{Kind: IdleClose, After: 100 * time.Millisecond}})
	cl := dohClient(u)
	if _, _, err := dohPost(t, cl, u, "a.example."); err != nil {
		t.Fatal(err)
	}
	waitOpen(t, u, 0)
}

func waitOpen(t *testing.T, u *Upstream, n int64) {
	t.Helper()
	for deadline := time.Now().Add(5 * time.Second); u.Stats().OpenConns != n; time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("open connections %d, want %d: %+v", u.Stats().OpenConns, n, u.Stats())
		}
	}
}

// doqDial opens a DoQ connection to u.
func doqDial(t *testing.T, u *Upstream, conf *quic.Config) *quic.Conn {
	t.Helper()
	tc := u.ClientTLS()
	tc.NextProtos = []string{"doq"}
	qc, err := quic.DialAddr(context.Background(), u.DoQAddr(), tc, conf)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { qc.CloseWithError(0, "") })
	return qc
}

// doqAsk sends one query on a new stream and reads the framed reply.
func doqAsk(t *testing.T, qc *quic.Conn, name string, id uint16) ([]byte, error) {
	t.Helper()
	st, err := qc.OpenStreamSync(context.Background())
	if err != nil {
		return nil, err
	}
	if err := wire.WriteFrame(st, packQ(t, name, id)); err != nil {
		return nil, err
	}
	st.Close()
	st.SetReadDeadline(time.Now().Add(3 * time.Second))
	return wire.ReadFrame(st, nil)
}

func TestDoQAnswers(t *testing.T) {
	u := startDoX(t, Config{})
	qc := doqDial(t, u, nil)
	for range 3 {
		b, err := doqAsk(t, qc, "www.Example.", 0)
		if err != nil {
			t.Fatal(err)
		}
		m := new(dns.Msg)
		if m.Unpack(b) != nil || m.Id != 0 || len(m.Answer) != 1 || m.Question[0].Name != "www.Example." {
			t.Fatalf("reply %x", b)
		}
	}
	if s := u.Stats(); s.QueriesQUIC != 3 || s.Conns != 1 || s.Handshakes != 1 {
		t.Errorf("stats %+v: want 3 DoQ queries on one connection, one handshake", s)
	}
	// A query with a non-zero ID closes the connection with DOQ_PROTOCOL_ERROR (RFC 9250 §4.2.1).
	doqAsk(t, qc, "id.example.", 7)
	<-qc.Context().Done()
	var ae *quic.ApplicationError
	if err := context.Cause(qc.Context()); !errors.As(err, &ae) || ae.ErrorCode != DoQProtocolError {
		t.Errorf("after a non-zero ID: %v, want DOQ_PROTOCOL_ERROR", err)
	}
	// The same client TLS config (session cache) resumes.
	tc := u.ClientTLS()
	tc.NextProtos = []string{"doq"}
	for i := range 2 {
		qc, err := quic.DialAddr(context.Background(), u.DoQAddr(), tc, nil)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := doqAsk(t, qc, "r.example.", 0); err != nil {
			t.Fatal(err)
		}
		if resumed := qc.ConnectionState().TLS.DidResume; resumed != (i == 1) {
			t.Errorf("connection %d resumed %v", i, resumed)
		}
		qc.CloseWithError(0, "")
	}
	if s := u.Stats(); s.Resumed != 1 {
		t.Errorf("stats %+v: want one resumed handshake", s)
	}
}

func TestDoQFaults(t *testing.T) {
	u := startDoX(t, Config{})
	qc := doqDial(t, u, nil)
	// Reset: half a reply, then RESET_STREAM with DOQ_INTERNAL_ERROR.
	u.SetFault(Fault{Kind: Reset})
	_, err := doqAsk(t, qc, "r.example.", 0)
	var se *quic.StreamError
	if !errors.As(err, &se) || se.ErrorCode != quic.StreamErrorCode(DoQInternalError) {
		t.Errorf("Reset: %v, want a stream reset with DOQ_INTERNAL_ERROR", err)
	}
	u.SetFault(Fault{Kind: Garbage})
	if b, err := doqAsk(t, qc, "g.example.", 0); err != nil || new(dns.Msg).Unpack(b) == nil {
		t.Errorf("Garbage: %x %v", b, err)
	}
	u.SetFault(Fault{Kind: WrongID})
	if b, err := doqAsk(t, qc, "w.example.", 0); err != nil || len(b) < 2 || b[0]|b[1] == 0 {
		t.Errorf("WrongID: %x %v", b, err)
	}
	u.SetFault(Fault{Kind: BlackHole})
	st, _ := qc.OpenStreamSync(context.Background())
	wire.WriteFrame(st, packQ(t, "bh.example.", 0))
	st.Close()
	st.SetReadDeadline(time.Now().Add(200 * time.Millisecond))
	if _, err := wire.ReadFrame(st, nil); !isTimeout(err) {
		t.Errorf("BlackHole: %v, want a timeout", err)
	}
	st.CancelRead(quic.StreamErrorCode(DoQInternalError)) // the client gives up
	u.SetFault(Fault{})
	if _, err := doqAsk(t, qc, "ok.example.", 0); err != nil {
		t.Errorf("after the faults: %v", err)
	}
	// IdleClose: an idle connection is closed after After.
	u.SetFault(Fault{Kind: IdleClose, After: 100 * time.Millisecond})
	select {
	case <-qc.Context().Done():
	case <-time.After(5 * time.Second):
		t.Error("IdleClose: the idle connection stayed open")
	}
	waitOpen(t, u, 0)
}

// TestDoXDownUp: Down closes DoH and DoQ connections; Up serves again on the same ports.
func TestDoXDownUp(t *testing.T) {
	u := startDoX(t, Config{})
	doh, doq := u.DoHAddr(), u.DoQAddr()
	qc := doqDial(t, u, nil)
	if _, err := doqAsk(t, qc, "a.example.", 0); err != nil {
		t.Fatal(err)
	}
	u.Down()
	<-qc.Context().Done()
	if err := u.Up(); err != nil {
		t.Fatal(err)
	}
	if u.DoHAddr() != doh || u.DoQAddr() != doq {
		t.Fatalf("addresses changed: %s %s -> %s %s", doh, doq, u.DoHAddr(), u.DoQAddr())
	}
	if _, err := doqAsk(t, doqDial(t, u, nil), "b.example.", 0); err != nil {
		t.Fatal(err)
	}
	if resp, _, err := dohPost(t, dohClient(u), u, "c.example."); err != nil || resp.StatusCode != 200 {
		t.Fatalf("DoH after Up: %v %v", resp, err)
	}
}
