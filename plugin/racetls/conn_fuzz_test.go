package racetls

import (
	"bytes"
	"crypto/tls"
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/dnscache/dnscache/plugin/pkg/wire"
	"github.com/dnscache/dnscache/test/lab"
	"github.com/miekg/dns"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

// FuzzReadLoop feeds an arbitrary byte stream from the upstream to a
// pipelined connection with up to three queries and a keepalive probe in
// flight, and checks the reply path against a model of RFC 7766 §6.2.1.1
// demultiplexing: each query gets exactly one result, which is the first frame
// with its ID (marked wrong when it lacks the query's question: a failure, as
// forward takes it), or an error when there is none; frames with an unknown
// ID, a wrong question or a failure RCODE are counted; the first frame
// that is not a DNS response ends the connection and is counted as garbage;
// nothing hangs and every goroutine ends once the upstream is closed.
//
// setup selects what is in flight: bits 0-1 the number of queries (IDs 0, 1,
// 2), bit 2 a probe (the next ID), bit 3 the race of query 0 already decided
// (its reply is late), bit 4 deadlines that pass before the stream is read.
func FuzzReadLoop(f *testing.F) {
	for _, s := range readLoopSeeds(f) {
		f.Add(s.setup, s.stream)
	}
	f.Fuzz(func(t *testing.T, setup uint8, stream []byte) {
		nq := int(setup & 3)
		withProbe, decided, expire := setup&4 != 0, setup&8 != 0 && nq > 0, setup&16 != 0

		opts := fuzzOptions(1)
		u := newFuzzUpstream(opts, 1)
		tc, sc := tlsPipe(t)
		c := attach(u, tc)
		drained := make(chan struct{})
		var got countWriter
		go func() { io.Copy(&got, sc); close(drained) }()

		deadline := time.Now().Add(time.Minute)
		if expire {
			deadline = time.Now().Add(-time.Millisecond)
		}
		questions := map[uint16][]byte{}
		calls := make([]*call, nq)
		for k := range calls {
			fq := fuzzQueries[k]
			calls[k] = fq.call(deadline)
			if err := c.send(calls[k]); err != nil {
				t.Fatalf("send %d: %v", k, err)
			}
			questions[uint16(k)] = calls[k].question()
		}
		if withProbe {
			c.probe()
			questions[uint16(nq)] = probeQuery[wire.HeaderLen : wire.HeaderLen+probeQlen]
		}
		if decided {
			calls[0].rs.done.Store(true)
		}
		// The writer goroutine sends the queries before the upstream answers and hangs up.
		want := 0
		for _, cl := range calls {
			want += len(cl.buf)
		}
		if withProbe {
			want += 2 + len(probeQuery)
		}
		waitWritten(t, &got, want)

		sc.Write(stream) // fails once the client drops the connection
		sc.Close()
		within(t, c.done, "the read loop")
		model := replay(stream, questions)
		unanswered := 0
		for k, cl := range calls {
			if _, ok := model.delivered[uint16(k)]; !ok && !(decided && k == 0) {
				unanswered++
			}
			if expire {
				// The deadline passed: the query fails without the upstream being closed.
				if !(decided && k == 0) {
					waitResult(t, cl.rs, k)
				}
			}
		}
		closed := make(chan struct{})
		go func() { u.close(); close(closed) }()
		within(t, closed, "closing the upstream")
		within(t, drained, "the fake upstream")

		late := 0
		for k, cl := range calls {
			frame, answered := model.delivered[uint16(k)]
			if decided && k == 0 {
				if len(cl.rs.ch) != 0 {
					t.Fatalf("query 0: a decided race got %d results", len(cl.rs.ch))
				}
				if answered {
					late++
				}
				continue
			}
			if n := len(cl.rs.ch); n != 1 {
				t.Fatalf("query %d: %d results, want exactly 1", k, n)
			}
			res := <-cl.rs.ch
			switch {
			case res.u != u:
				t.Fatalf("query %d: result from another upstream", k)
			case answered && (res.err != nil || !bytes.Equal(res.msg, frame) || res.rcode != wire.Rcode(frame) || res.wrong != model.wrong[uint16(k)]):
				t.Fatalf("query %d: got %x (rcode %d, wrong %v, %v), want the frame %x (wrong %v)", k, res.msg, res.rcode, res.wrong, res.err, frame, model.wrong[uint16(k)])
			case !answered && (res.err == nil || res.msg != nil):
				t.Fatalf("query %d: got %x (%v), want an error: no frame matches", k, res.msg, res.err)
			}
		}

		wantErrors := model.errors()
		// The reader unpacks a query's reply that may win (conn.reply): one that does not
		// unpack is counted as garbage there, as the race would count it.
		for k := range calls {
			frame, answered := model.delivered[uint16(k)]
			if answered && !(decided && k == 0) && isWinner(wire.Rcode(frame)) && !model.wrong[uint16(k)] &&
				new(dns.Msg).Unpack(frame) != nil {
				wantErrors++
			}
		}
		if expire {
			wantErrors += uint64(unanswered)
		}
		tl := u.tally
		if got := tl.errors.Load(); got != wantErrors {
			t.Errorf("errors: got %d, want %d (%+v, %d unanswered)", got, wantErrors, model, unanswered)
		}
		if got := tl.late.Load(); got != uint64(late) {
			t.Errorf("late replies: got %d, want %d", got, late)
		}
		if _, _, n := tl.quantiles(); n != uint64(len(model.delivered)) {
			t.Errorf("replies timed: got %d, want %d", n, len(model.delivered))
		}
		if g := testutil.ToFloat64(u.ctr.inflight); g != 0 {
			t.Errorf("inflight gauge %v after close, want 0", g)
		}
		if g := testutil.ToFloat64(u.ctr.conns); g != 0 {
			t.Errorf("conns gauge %v after close, want 0", g)
		}
		if idle := time.Duration(c.idle.Load()); idle < opts.tick || idle > opts.keepalive {
			t.Errorf("probe interval %v outside [tick %v, keepalive %v]", idle, opts.tick, opts.keepalive)
		}
		if t.Failed() {
			t.Logf("stream %x", stream)
		}
	})
}

// model is what the reply path must do with a stream: see replay.
type model struct {
	delivered                  map[uint16][]byte // the frame each ID receives
	wrong                      map[uint16]bool   // IDs whose frame lacks their question
	unknown, mismatch, failure int               // frames counted as errors
	garbage                    bool              // the stream ended with a frame that is not a response
}

func (m model) errors() uint64 {
	n := m.unknown + m.mismatch + m.failure
	if m.garbage {
		n++
	}
	return uint64(n)
}

// replay walks stream as a sequence of 2-byte-length frames (RFC 1035
// §4.2.2) against the outstanding questions by ID. It is written apart from
// conn.go's code so that it can disagree with it.
func replay(stream []byte, questions map[uint16][]byte) model {
	m := model{delivered: map[uint16][]byte{}, wrong: map[uint16]bool{}}
	pending := make(map[uint16][]byte, len(questions))
	for id, q := range questions {
		pending[id] = q
	}
	for len(stream) >= 2 {
		n := int(stream[0])<<8 | int(stream[1])
		if len(stream)-2 < n {
			break // truncated
		}
		frame := stream[2 : 2+n]
		stream = stream[2+n:]
		if n < wire.HeaderLen || frame[2]&0x80 == 0 {
			m.garbage = true
			break
		}
		id := uint16(frame[0])<<8 | uint16(frame[1])
		q, ok := pending[id]
		if !ok {
			m.unknown++
			continue
		}
		delete(pending, id)
		m.delivered[id] = frame
		if !questionMatches(q, frame) {
			// The query's ID without its question: the reply ends the query as a failure.
			m.mismatch++
			m.wrong[id] = true
			continue
		}
		if rc := frame[3] & 0xF; rc != dns.RcodeSuccess && rc != dns.RcodeNameError {
			m.failure++
		}
	}
	return m
}

// questionMatches reports whether msg has QDCOUNT 1 and starts its question
// with q's bytes, the name compared in ASCII lower case. Label lengths (at
// most 63) are below 'A', so lowering the whole name is the same as lowering
// each label.
func questionMatches(q, msg []byte) bool {
	if msg[4] != 0 || msg[5] != 1 || len(msg) < wire.HeaderLen+len(q) {
		return false
	}
	r := msg[wire.HeaderLen : wire.HeaderLen+len(q)]
	name := len(q) - 4
	return bytes.Equal(asciiLower(r[:name]), asciiLower(q[:name])) && bytes.Equal(r[name:], q[name:])
}

func asciiLower(b []byte) []byte {
	out := make([]byte, len(b))
	for i, c := range b {
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		out[i] = c
	}
	return out
}

// fuzzQuery is a query the fuzz targets put in flight.
type fuzzQuery struct {
	name  string
	qtype uint16
	do    bool // with EDNS0 and the DO bit
}

var fuzzQueries = []fuzzQuery{
	{"www.example.com.", dns.TypeA, false},
	{"WwW.ExAmPlE.oRg.", dns.TypeAAAA, true}, // 0x20 case, as a client may send it
	{"_dmarc.a.", dns.TypeTXT, false},
}

func (fq fuzzQuery) msg() *dns.Msg {
	m := new(dns.Msg)
	m.SetQuestion(fq.name, fq.qtype)
	if fq.do {
		m.SetEdns0(1232, true)
	}
	return m
}

// call packs the query as resolve does.
func (fq fuzzQuery) call(deadline time.Time) *call {
	q, err := fq.msg().Pack()
	if err != nil {
		panic(err)
	}
	ql, err := wire.QuestionLen(q)
	if err != nil {
		panic(err)
	}
	buf := make([]byte, 2+len(q))
	binary.BigEndian.PutUint16(buf, uint16(len(q)))
	copy(buf[2:], q)
	return &call{buf: buf, qlen: ql, rs: &race{ch: make(chan result, 4)}, deadline: deadline}
}

// reply returns a packed reply to fq with this ID and RCODE.
func (fq fuzzQuery) reply(id uint16, rc int) []byte {
	m := new(dns.Msg)
	m.SetRcode(fq.msg(), rc)
	m.Id = id
	if rc == dns.RcodeSuccess {
		rr, _ := dns.NewRR(fq.name + " 300 IN A 192.0.2.1")
		if fq.qtype != dns.TypeA {
			rr, _ = dns.NewRR(fq.name + " 300 IN CNAME alias.example.net.")
		}
		m.Answer = append(m.Answer, rr)
	}
	if rc == dns.RcodeNameError {
		soa, _ := dns.NewRR(". 60 IN SOA a.root-servers.net. nstld.verisign-grs.com. 1 1800 900 604800 30")
		m.Ns = append(m.Ns, soa)
	}
	m.Compress = true
	b, err := m.Pack()
	if err != nil {
		panic(err)
	}
	return b
}

// frame prepends the 2-byte length to each message and concatenates them.
func frame(msgs ...[]byte) []byte {
	var b []byte
	for _, m := range msgs {
		b = binary.BigEndian.AppendUint16(b, uint16(len(m)))
		b = append(b, m...)
	}
	return b
}

type readLoopSeed struct {
	setup  uint8
	stream []byte
}

// readLoopSeeds are realistic streams and the faults the lab injects.
func readLoopSeeds(tb testing.TB) []readLoopSeed {
	q0, q1, q2 := fuzzQueries[0], fuzzQueries[1], fuzzQueries[2]
	ok0, ok1, nx2 := q0.reply(0, dns.RcodeSuccess), q1.reply(1, dns.RcodeSuccess), q2.reply(2, dns.RcodeNameError)
	upper := bytes.Clone(ok0)
	copy(upper[wire.HeaderLen:], "\x03WWW\x07EXAMPLE\x03COM")
	garbage := bytes.Clone(ok0)
	garbage[2] &^= 0x80 // QR clear: not a response

	probe := new(dns.Msg)
	if err := probe.Unpack(probeQuery); err != nil {
		tb.Fatal(err)
	}
	probe.Response = true
	probe.Id = 3
	probe.IsEdns0().Option = []dns.EDNS0{&dns.EDNS0_TCP_KEEPALIVE{Code: dns.EDNS0TCPKEEPALIVE, Timeout: 100}}
	probeReply, err := probe.Pack()
	if err != nil {
		tb.Fatal(err)
	}
	probe.Id = 0
	probeReply0, err := probe.Pack()
	if err != nil {
		tb.Fatal(err)
	}
	// An idle timeout of 100 ms: probing at half of it would be below the watchdog's tick.
	probe.IsEdns0().Option = []dns.EDNS0{&dns.EDNS0_TCP_KEEPALIVE{Code: dns.EDNS0TCPKEEPALIVE, Timeout: 1}}
	probeShort, err := probe.Pack()
	if err != nil {
		tb.Fatal(err)
	}

	return []readLoopSeed{
		{3, frame(ok0, ok1, nx2)},
		{3, frame(nx2, ok1, ok0)}, // out of order, as pipelining allows
		{3 | 4, frame(ok1, probeReply, ok0, nx2)},
		{1, frame(upper)},
		{1, frame(q0.reply(7, dns.RcodeSuccess), ok0)},       // unknown ID first
		{2, frame(q1.reply(0, dns.RcodeSuccess), ok0, ok1)},  // wrong question first
		{1, frame(q0.reply(0, dns.RcodeServerFailure), ok0)}, // SERVFAIL, then a late duplicate
		{2, frame(q0.reply(0, dns.RcodeRefused), q1.reply(1, dns.RcodeFormatError))},
		{2, frame(ok0, garbage, ok1)},           // garbage ends the connection
		{1, frame(ok0)[:len(ok0)-3]},            // truncated
		{1, append([]byte{0xFF, 0xFF}, ok0...)}, // length beyond the stream
		{1, frame(nil, ok0)},                    // empty frame
		{1, frame(ok0[:wire.HeaderLen-1])},      // short frame
		{1 | 8, frame(ok0)},                     // late reply
		{3 | 16, frame(ok1)},                    // deadlines passed
		{0 | 4, frame(probeReply0)},
		{0 | 4, frame(probeShort)},
		{0, nil},
	}
}

// fuzzOptions are short-lived connection options with the watchdog out of
// the way: the fuzz targets close the upstream instead.
func fuzzOptions(width int) *options {
	return &options{
		timeout:     time.Second,
		width:       width,
		conns:       1,
		maxConns:    1,
		maxInflight: defaultMaxInflight,
		keepalive:   time.Hour,
		tick:        time.Second,
	}
}

// newFuzzUpstream returns an upstream that is not started: it dials nothing.
// Its metrics share labels across inputs, so gauges must return to 0.
func newFuzzUpstream(opts *options, i int) *upstream {
	addr := net.JoinHostPort(net.IPv4(192, 0, 2, byte(i)).String(), "853")
	u := newUpstream(addr, &streamTransport{addr: addr, tlsConfig: &tls.Config{}}, opts)
	u.tally = new(tally)
	u.ctr = newCounters("fuzz://", u.name, "tls", u.tally)
	return u
}

// attach makes tc a connection of u with IDs from 0 and starts its reader.
func attach(u *upstream, tc net.Conn) *conn {
	c := newConn(u, newStreamSession(tc, u.opts.timeout, handshake{}))
	c.nextID = 0
	u.mu.Lock()
	u.conns = append(u.conns, c)
	u.wg.Add(2)
	u.mu.Unlock()
	u.ctr.conns.Inc()
	go func() { defer u.wg.Done(); c.readLoop() }()
	go func() { defer u.wg.Done(); c.writeLoop() }()
	return c
}

// fuzzTLS returns the client and server configurations of tlsPipe. TLS 1.2
// session resumption makes every handshake after the first symmetric-key
// only (a tenth of a TLS 1.3 handshake's CPU), which matters at one
// connection per input; the reply path sees only the decrypted byte stream.
var fuzzTLS = sync.OnceValues(func() (client, server *tls.Config) {
	ca, err := lab.NewCA()
	if err != nil {
		panic(err)
	}
	server, client = ca.ServerTLS(), ca.ClientTLS(lab.DefaultServerName)
	// Capped on both sides: a TLS 1.3-capable client computes key shares for every hello.
	server.MaxVersion, client.MaxVersion = tls.VersionTLS12, tls.VersionTLS12
	return client, server
})

// tlsPipe returns the two ends of a TLS connection over net.Pipe.
func tlsPipe(t *testing.T) (client, server *tls.Conn) {
	ccfg, scfg := fuzzTLS()
	a, b := net.Pipe()
	client, server = tls.Client(&recordConn{Conn: a}, ccfg), tls.Server(b, scfg)
	errc := make(chan error, 1)
	go func() { errc <- server.Handshake() }()
	err := client.Handshake()
	if serr := <-errc; err == nil {
		err = serr
	}
	if err != nil {
		client.Close()
		server.Close()
		t.Fatalf("handshake: %v", err)
	}
	return client, server
}

// within fails the test, with every goroutine's stack, when done is not
// closed in 5 s: a hang.
func within(t *testing.T, done <-chan struct{}, what string) {
	t.Helper()
	tm := time.NewTimer(5 * time.Second)
	defer tm.Stop()
	select {
	case <-done:
	case <-tm.C:
		buf := make([]byte, 1<<20)
		t.Fatalf("%s did not finish in 5 s\n%s", what, buf[:runtime.Stack(buf, true)])
	}
}

// waitResult waits until rs holds a result, and puts it back.
func waitResult(t *testing.T, rs *race, k int) {
	t.Helper()
	got := make(chan struct{})
	go func() {
		r := <-rs.ch
		rs.ch <- r
		close(got)
	}()
	within(t, got, fmt.Sprintf("the result of query %d", k))
}

// countWriter counts the bytes written to it.
type countWriter struct{ n atomic.Int64 }

func (w *countWriter) Write(b []byte) (int, error) { w.n.Add(int64(len(b))); return len(b), nil }

// waitWritten waits until the fake upstream has read n bytes.
func waitWritten(t *testing.T, w *countWriter, n int) {
	t.Helper()
	for end := time.Now().Add(5 * time.Second); w.n.Load() < int64(n); time.Sleep(100 * time.Microsecond) {
		if time.Now().After(end) {
			t.Fatalf("the writer sent %d of %d bytes", w.n.Load(), n)
		}
	}
}
