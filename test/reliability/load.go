package reliability

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"sort"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/miekg/dns"
)

// Load is a bounded load: Workers clients, each with its own connection, send queries
// until Count queries were sent, Duration elapsed or the context ends, whichever is first.
type Load struct {
	Net  string // "udp", "tcp" or "unix"
	Addr string // "127.0.0.1:port" or a socket path

	Workers  int           // concurrent clients; 1 when 0
	Rate     int           // total queries per second; 0 sends as fast as replies come
	Count    int           // total queries; 0 means no count bound (Duration must be set)
	Duration time.Duration // 0 means no time bound (Count must be set)
	Timeout  time.Duration // per attempt; 2s when 0
	// Retries re-sends a UDP query that timed out, as a stub resolver does (glibc's
	// attempts:2); the latency then includes the wait. Negative means none, also in both().
	Retries int

	// Query returns the name and type of the i-th query; "q<i>.example." A when nil.
	Query func(i int) (string, uint16)
	// OK decides whether a reply is a success; NOERROR or NXDOMAIN when nil.
	OK func(r *dns.Msg) bool
}

// record is one query: when it was sent (since the run's start), how long it took, and
// what became of it.
type record struct {
	at, lat time.Duration
	fail    string // "" for success
}

// Result is what a load run saw.
type Result struct {
	Start   time.Time // when the first query could be sent
	Elapsed time.Duration
	recs    []record
}

// Run runs the load and returns when it is done.
func (l Load) Run(ctx context.Context) *Result {
	if l.Workers <= 0 {
		l.Workers = 1
	}
	if l.Timeout <= 0 {
		l.Timeout = 2 * time.Second
	}
	if l.Query == nil {
		l.Query = func(i int) (string, uint16) { return fmt.Sprintf("q%d.example.", i), dns.TypeA }
	}
	if l.OK == nil {
		l.OK = func(r *dns.Msg) bool { return r.Rcode == dns.RcodeSuccess || r.Rcode == dns.RcodeNameError }
	}
	if l.Count == 0 && l.Duration == 0 {
		panic("reliability: a Load needs Count or Duration")
	}
	if l.Duration > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, l.Duration)
		defer cancel()
	}

	start := time.Now()
	var (
		mu   sync.Mutex
		next int // the next query index
		all  []record
		wg   sync.WaitGroup
	)
	// take hands out query indexes and, with a rate, the time each one is due.
	take := func() (int, time.Time, bool) {
		mu.Lock()
		defer mu.Unlock()
		if ctx.Err() != nil || (l.Count > 0 && next >= l.Count) {
			return 0, time.Time{}, false
		}
		i := next
		next++
		var due time.Time
		if l.Rate > 0 {
			due = start.Add(time.Duration(i) * time.Second / time.Duration(l.Rate))
		}
		return i, due, true
	}
	for w := 0; w < l.Workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c := &client{net: l.Net, addr: l.Addr, timeout: l.Timeout, retries: l.Retries}
			defer c.close()
			var recs []record
			for {
				i, due, ok := take()
				if !ok {
					break
				}
				if d := time.Until(due); d > 0 {
					select {
					case <-time.After(d):
					case <-ctx.Done():
					}
				}
				name, qtype := l.Query(i)
				t0 := time.Now()
				r, err := c.exchange(name, qtype)
				rec := record{at: t0.Sub(start), lat: time.Since(t0)}
				switch {
				case err != nil:
					rec.fail = errKind(err)
				case !l.OK(r):
					rec.fail = dns.RcodeToString[r.Rcode]
				}
				recs = append(recs, rec)
			}
			mu.Lock()
			all = append(all, recs...)
			mu.Unlock()
		}()
	}
	wg.Wait()
	sort.Slice(all, func(i, j int) bool { return all[i].at < all[j].at })
	return &Result{Start: start, Elapsed: time.Since(start), recs: all}
}

func errKind(err error) string {
	var ne net.Error
	switch {
	case errors.As(err, &ne) && ne.Timeout():
		return "timeout"
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		return "eof"
	case errors.Is(err, errBadReply):
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

var errBadReply = errors.New("reply does not match the query")

// client is one load worker's connection. A stream connection is re-dialled after an error.
type client struct {
	net, addr string
	timeout   time.Duration
	retries   int
	conn      net.Conn
	id        uint16
	buf       []byte
}

func (c *client) close() {
	if c.conn != nil {
		c.conn.Close()
		c.conn = nil
	}
}

func (c *client) exchange(name string, qtype uint16) (*dns.Msg, error) {
	m := new(dns.Msg)
	m.SetQuestion(name, qtype)
	c.id++
	m.Id = c.id
	wire, err := m.Pack()
	if err != nil {
		return nil, err
	}
	if c.conn == nil {
		if c.conn, err = net.DialTimeout(c.net, c.addr, c.timeout); err != nil {
			c.conn = nil
			return nil, err
		}
	}
	r, err := c.roundTrip(wire, m)
	for try := 0; err != nil && c.net == "udp" && try < c.retries && errKind(err) == "timeout"; try++ {
		r, err = c.roundTrip(wire, m)
	}
	if err != nil && c.net != "udp" {
		c.close()
	}
	return r, err
}

func (c *client) roundTrip(wire []byte, q *dns.Msg) (*dns.Msg, error) {
	c.conn.SetDeadline(time.Now().Add(c.timeout))
	if c.buf == nil {
		c.buf = make([]byte, 65535)
	}
	if c.net != "udp" {
		framed := make([]byte, 2+len(wire))
		binary.BigEndian.PutUint16(framed, uint16(len(wire)))
		copy(framed[2:], wire)
		if _, err := c.conn.Write(framed); err != nil {
			return nil, err
		}
		n, err := readFrame(c.conn, c.buf)
		if err != nil {
			return nil, err
		}
		return match(c.buf[:n], q)
	}
	if _, err := c.conn.Write(wire); err != nil {
		return nil, err
	}
	for {
		n, err := c.conn.Read(c.buf)
		if err != nil {
			return nil, err
		}
		r, err := match(c.buf[:n], q)
		if err == nil {
			return r, nil
		}
		// A late reply to an earlier, timed-out query on this UDP socket: read on.
	}
}

// match unpacks a reply and checks that it answers q.
func match(b []byte, q *dns.Msg) (*dns.Msg, error) {
	r := new(dns.Msg)
	if err := r.Unpack(b); err != nil {
		return nil, fmt.Errorf("%w: %v", errBadReply, err)
	}
	if r.Id != q.Id || len(r.Question) != 1 || !strings.EqualFold(r.Question[0].Name, q.Question[0].Name) {
		return nil, errBadReply
	}
	return r, nil
}

// readFrame reads one 2-byte length-prefixed message (RFC 1035 §4.2.2) into buf.
func readFrame(c net.Conn, buf []byte) (int, error) {
	var l [2]byte
	if _, err := io.ReadFull(c, l[:]); err != nil {
		return 0, err
	}
	n := int(binary.BigEndian.Uint16(l[:]))
	if _, err := io.ReadFull(c, buf[:n]); err != nil {
		return 0, err
	}
	return n, nil
}
