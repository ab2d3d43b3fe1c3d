package kit

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/dnscache/dnscache/plugin/pkg/wire"
	"github.com/miekg/dns"
)

// slot is an outstanding query, indexed by message ID.
type slot struct {
	gen      uint64        // 0 when free
	sent     time.Duration // first sent, since runner.start
	deadline time.Duration // when the current attempt times out
	k        int
	tries    int    // re-sends so far
	q        []byte // the query, unframed: for the question check and re-sends
}

type pending struct {
	id  uint16
	gen uint64
}

// worker is one connection of a run, re-dialled when it breaks: a sender, a reader per
// connection and a timeout sweeper.
type worker struct {
	r      *runner
	stream bool
	window chan struct{} // one token per outstanding query
	nc     net.Conn      // the connection the next session uses; nil: dial first
	buf    []byte        // the sender's write buffer

	mu     sync.Mutex
	cur    net.Conn // the connection of the running session, for UDP re-sends
	slots  []slot   // by ID
	fifo   []pending
	gen    uint64
	nextID uint16

	// results, guarded by mu
	sent, timeouts, failed, late, errors int64
	last                                 time.Duration
	errs                                 []error
	recs                                 []Record
	// results of the reader goroutine (one per session, one after another)
	answered, truncated int64
	rcodes              [16]int64
	hist                Histogram
	lastReply           time.Duration
}

// session is one connection's life.
type session struct {
	nc      net.Conn
	closing atomic.Bool // set before the run closes nc
	dead    chan struct{}
	once    sync.Once
	err     error
}

func (s *session) breakWith(err error) {
	s.once.Do(func() {
		s.err = err
		close(s.dead)
	})
}

func newWorker(r *runner) *worker {
	return &worker{
		r:      r,
		stream: r.cfg.Network != "udp",
		window: make(chan struct{}, r.cfg.InFlight),
		slots:  make([]slot, 65536),
		buf:    make([]byte, 0, 64*1024),
	}
}

func (w *worker) dial() (net.Conn, error) {
	cfg := &w.r.cfg
	d := &net.Dialer{Timeout: cfg.Timeout}
	if cfg.Network == "tls" {
		return tls.DialWithDialer(d, "tcp", cfg.Addr, cfg.TLS)
	}
	nc, err := d.Dial(cfg.Network, cfg.Addr)
	if uc, ok := nc.(*net.UDPConn); ok {
		// Deep buffers so that a burst of replies is not dropped while the reader is descheduled.
		uc.SetReadBuffer(4 << 20)
		uc.SetWriteBuffer(1 << 20)
	}
	return nc, err
}

// errorf counts an error; w.mu must be held.
func (w *worker) errorf(err error) {
	w.errors++
	if len(w.errs) < 5 {
		w.errs = append(w.errs, err)
	}
}

func (w *worker) countError(err error) {
	w.mu.Lock()
	w.errorf(err)
	w.mu.Unlock()
}

// done records the end of query k sent at sent; w.mu must be held.
func (w *worker) done(k int, sent, now time.Duration, rcode int, fail string) {
	w.last = max(w.last, now)
	if w.r.cfg.Keep {
		w.recs = append(w.recs, Record{I: k, At: sent, Latency: now - sent, Rcode: rcode, Fail: fail})
	}
}

// run sends until the run is over, dialling again whenever the connection breaks.
func (w *worker) run(ctx context.Context) {
	var wg sync.WaitGroup
	sweepDone := make(chan struct{})
	wg.Go(func() { w.sweep(sweepDone) })
	for {
		first := -1
		if w.nc == nil {
			k, ok := w.r.take(ctx)
			if !ok {
				break
			}
			at := time.Since(w.r.start)
			nc, err := w.dial()
			if err != nil {
				w.mu.Lock()
				w.sent++
				w.failed++
				w.errorf(err)
				w.done(k, at, time.Since(w.r.start), -1, errKind(err))
				w.mu.Unlock()
				if f := w.r.cfg.OnReply; f != nil {
					f(k, 0, -1)
				}
				continue
			}
			w.nc, first = nc, k
		}
		if w.session(ctx, first) {
			break
		}
	}
	close(sweepDone)
	wg.Wait()
	w.last = max(w.last, w.lastReply)
	if w.last == 0 {
		w.last = time.Since(w.r.start)
	}
}

// session runs one connection until the run is over (true) or the connection breaks.
func (w *worker) session(ctx context.Context, first int) (over bool) {
	s := &session{nc: w.nc, dead: make(chan struct{})}
	w.mu.Lock()
	w.cur = s.nc
	w.mu.Unlock()
	readDone := make(chan struct{})
	go func() {
		defer close(readDone)
		w.read(s)
	}()
	over, rotate := w.send(ctx, s, first)
	if over || rotate {
		w.drain(s)
	}
	s.closing.Store(true)
	s.nc.Close()
	<-readDone
	w.nc = nil
	if s.err != nil {
		w.failOutstanding(errKind(s.err))
	}
	return over
}

// send writes queries until the run is over (over), the connection has carried
// ConnQueries queries (rotate) or the session breaks (neither).
func (w *worker) send(ctx context.Context, s *session, first int) (over, rotate bool) {
	cfg := &w.r.cfg
	batch := 1
	if w.stream && cfg.Rate == 0 && cfg.Schedule == nil {
		batch = 32 // coalesce writes when saturating a stream
	}
	left := cfg.ConnQueries // queries this connection may still carry, with ConnQueries
	ids := make([]uint16, 0, batch)
	for {
		if cfg.ConnQueries > 0 && left <= 0 {
			return false, true
		}
		select {
		case w.window <- struct{}{}:
		case <-ctx.Done():
			return true, false
		case <-s.dead:
			return false, false
		}
		k, ok := first, true
		if first >= 0 {
			first = -1
		} else if k, ok = w.r.take(ctx); !ok {
			<-w.window
			return true, false
		}
		lim := batch
		if cfg.ConnQueries > 0 {
			lim = min(batch, left)
		}
		w.buf, ids = w.buf[:0], ids[:0]
		ids = w.add(ids, k)
		for n := 1; n < lim; n++ {
			select {
			case w.window <- struct{}{}:
			default:
				n = batch
				continue
			}
			k, ok := w.r.take(ctx)
			if !ok {
				<-w.window
				break
			}
			ids = w.add(ids, k)
		}
		left -= len(ids)
		if len(w.buf) == 0 {
			continue
		}
		if _, err := s.nc.Write(w.buf); err != nil {
			if w.stream {
				s.breakWith(err)
				return false, false
			}
			// UDP on loopback reports ECONNREFUSED on writes when nothing listens.
			w.countError(err)
			w.fail(ids, errKind(err))
		}
	}
}

// add registers query k under a free ID and appends it, framed for streams, to w.buf. It
// returns ids with the ID appended, or unchanged when the query cannot be packed.
func (w *worker) add(ids []uint16, k int) []uint16 {
	cfg := &w.r.cfg
	q := cfg.Next(k)
	w.mu.Lock()
	id := w.nextID // only the sender allocates: the slot stays free after the unlock
	for w.slots[id].gen != 0 {
		id++
	}
	w.nextID = id + 1
	w.gen++
	gen := w.gen
	w.mu.Unlock()

	start, off := len(w.buf), 0
	if w.stream {
		w.buf, off = wire.StartFrame(w.buf)
	}
	msg := len(w.buf)
	var err error
	if w.buf, err = appendQuery(w.buf, id, q, cfg.EDNS); err == nil && w.stream {
		err = wire.EndFrame(w.buf, off)
	}
	now := time.Since(w.r.start)
	w.mu.Lock()
	defer w.mu.Unlock()
	w.sent++
	if err != nil {
		w.buf = w.buf[:start]
		w.errorf(err)
		w.failed++
		w.done(k, now, now, -1, "badquery")
		<-w.window
		return ids
	}
	s := &w.slots[id]
	*s = slot{gen: gen, sent: now, deadline: now + cfg.Timeout, k: k, q: append(s.q[:0], w.buf[msg:]...)}
	w.fifo = append(w.fifo, pending{id, gen})
	return append(ids, id)
}

func (w *worker) read(s *session) {
	if w.stream {
		br := bufio.NewReaderSize(s.nc, 64*1024)
		var buf []byte
		for {
			msg, err := wire.ReadFrame(br, buf)
			if err != nil {
				if !s.closing.Load() {
					w.countError(err)
					s.breakWith(err)
				}
				return
			}
			buf = msg
			w.reply(msg)
		}
	}
	buf := make([]byte, 65536)
	for {
		n, err := s.nc.Read(buf)
		if err != nil {
			if s.closing.Load() || errors.Is(err, net.ErrClosed) {
				return
			}
			w.countError(err) // e.g. ECONNREFUSED: keep reading
			continue
		}
		w.reply(buf[:n])
	}
}

var (
	errShortReply = errors.New("reply shorter than a DNS header")
	errMismatch   = errors.New("reply for another question")
)

func (w *worker) reply(msg []byte) {
	if len(msg) < wire.HeaderLen {
		w.countError(errShortReply)
		return
	}
	id := binary.BigEndian.Uint16(msg)
	now := time.Since(w.r.start)
	w.mu.Lock()
	s := &w.slots[id]
	if s.gen == 0 {
		w.late++
		w.mu.Unlock()
		return
	}
	if !sameQuestion(s.q, msg) {
		// A wrong reply: count it and keep waiting for the right one.
		w.errorf(errMismatch)
		w.mu.Unlock()
		return
	}
	rtt, k, sent := now-s.sent, s.k, s.sent
	s.gen = 0
	w.mu.Unlock()
	<-w.window

	// The reader's own counters, outside the lock that the sender and the sweeper take.
	rcode := wire.Rcode(msg)
	if msg[2]&0x02 != 0 {
		w.truncated++
	}
	w.answered++
	w.rcodes[rcode]++
	w.hist.Record(rtt)
	w.lastReply = now
	if w.r.cfg.Keep {
		w.mu.Lock()
		w.done(k, sent, now, rcode, rcodeFail(rcode))
		w.mu.Unlock()
	}

	if f := w.r.cfg.OnReply; f != nil {
		f(k, rtt, rcode)
	}
	if f := w.r.cfg.OnMessage; f != nil {
		f(k, rtt, msg)
	}
}

// rcodeFail names an rcode that is a failure: everything but NOERROR and NXDOMAIN.
func rcodeFail(rcode int) string {
	if rcode == dns.RcodeSuccess || rcode == dns.RcodeNameError {
		return ""
	}
	return dns.RcodeToString[rcode]
}

// sameQuestion reports whether reply carries the question of query, ignoring ASCII case.
func sameQuestion(query, reply []byte) bool {
	ql, err := wire.QuestionLen(query)
	return err == nil && wire.SameQuestion(query[wire.HeaderLen:wire.HeaderLen+ql], reply)
}

// drain waits until every query sent has its reply or timed out, or the session breaks.
func (w *worker) drain(s *session) {
	n := 0
	defer func() {
		for range n {
			<-w.window
		}
	}()
	for n < cap(w.window) {
		select {
		case w.window <- struct{}{}:
			n++
		case <-s.dead:
			return
		}
	}
}

// failOutstanding fails every outstanding query, with kind, when their connection broke.
func (w *worker) failOutstanding(kind string) {
	w.mu.Lock()
	ids := make([]uint16, 0, len(w.fifo))
	for _, p := range w.fifo {
		if w.slots[p.id].gen == p.gen {
			ids = append(ids, p.id)
		}
	}
	w.fifo = w.fifo[:0]
	w.mu.Unlock()
	w.fail(ids, kind)
}

// fail ends the outstanding queries ids without a reply.
func (w *worker) fail(ids []uint16, kind string) {
	now := time.Since(w.r.start)
	var ks []int
	w.mu.Lock()
	for _, id := range ids {
		s := &w.slots[id]
		if s.gen == 0 {
			continue
		}
		s.gen = 0
		w.failed++
		w.done(s.k, s.sent, now, -1, kind)
		ks = append(ks, s.k)
	}
	w.mu.Unlock()
	w.noReply(ks)
}

func (w *worker) noReply(ks []int) {
	for _, k := range ks {
		<-w.window
		if f := w.r.cfg.OnReply; f != nil {
			f(k, 0, -1)
		}
	}
}

// sweep times out queries outstanding longer than Timeout, oldest first, re-sending a UDP
// query while it has retries left.
func (w *worker) sweep(done <-chan struct{}) {
	cfg := &w.r.cfg
	tick := time.NewTicker(min(max(cfg.Timeout/8, time.Millisecond), 100*time.Millisecond))
	defer tick.Stop()
	for {
		select {
		case <-done:
			return
		case <-tick.C:
		}
		now := time.Since(w.r.start)
		var expired []int
		var resend [][]byte
		w.mu.Lock()
		i := 0
		for ; i < len(w.fifo); i++ {
			p := w.fifo[i]
			s := &w.slots[p.id]
			if s.gen != p.gen {
				continue // answered
			}
			if now < s.deadline {
				break
			}
			if !w.stream && s.tries < cfg.Retries {
				s.tries++
				s.deadline = now + cfg.Timeout
				w.fifo = append(w.fifo, p) // due after everything before it
				resend = append(resend, bytes.Clone(s.q))
				continue
			}
			s.gen = 0
			w.timeouts++
			w.done(s.k, s.sent, now, -1, "timeout")
			expired = append(expired, s.k)
		}
		w.fifo = append(w.fifo[:0], w.fifo[i:]...)
		cur := w.cur
		w.mu.Unlock()
		for _, q := range resend {
			if _, err := cur.Write(q); err != nil {
				w.countError(err)
			}
		}
		w.noReply(expired)
	}
}

// errKind names why a query got no reply.
func errKind(err error) string {
	var ne net.Error
	switch {
	case errors.As(err, &ne) && ne.Timeout():
		return "timeout"
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		return "eof"
	case errors.Is(err, wire.ErrZeroFrame):
		return "badreply"
	case errors.Is(err, os.ErrNotExist):
		return "nosocket"
	case errors.Is(err, syscall.ECONNREFUSED):
		return "refused"
	case errors.Is(err, syscall.ECONNRESET), errors.Is(err, syscall.EPIPE):
		return "reset"
	default:
		return "conn"
	}
}
