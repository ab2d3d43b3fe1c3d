package reliability

import (
	"context"
	"encoding/binary"
	"errors"
	"math/rand/v2"
	"net"
	"sync"
	"syscall"
	"time"

	"github.com/dnscache/dnscache/plugin/pkg/wire"
	"github.com/miekg/dns"
)

// The abusers below misuse a stream listener (the Unix socket or the TCP port) or the UDP
// port. Each is bounded in count, closes what it opens, and reports what the server did.

// Abuse counts what happened to abusive connections.
type Abuse struct {
	Opened   int // connections established
	Refused  int // dials that failed
	Closed   int // connections the server closed (EOF or reset) before the client did
	Answered int // well-formed replies received
	Sent     int // frames or datagrams sent
}

// OpenConns dials n connections and returns them; the caller closes them. Dials that fail
// (the server's connection limit, the backlog) are counted, not fatal.
func OpenConns(network, addr string, n int) ([]net.Conn, Abuse) {
	var a Abuse
	conns := make([]net.Conn, 0, n)
	for range n {
		c, err := dialRetry(network, addr)
		if err != nil {
			a.Refused++
			continue
		}
		conns = append(conns, c)
	}
	a.Opened = len(conns)
	return conns, a
}

// dialRetry dials addr. A Unix socket whose listen backlog is full refuses a connect with
// EAGAIN at once (TCP waits in SYN retries instead), so that is tried again for up to a
// second, as a client library would: the server being slower to accept than the loop is to
// dial is not a refusal.
func dialRetry(network, addr string) (net.Conn, error) {
	deadline := time.Now().Add(time.Second)
	for {
		c, err := net.DialTimeout(network, addr, time.Second)
		if err == nil || !errors.Is(err, syscall.EAGAIN) || time.Now().After(deadline) {
			return c, err
		}
		time.Sleep(time.Millisecond)
	}
}

// CloseAll closes every connection.
func CloseAll(conns []net.Conn) {
	for _, c := range conns {
		c.Close()
	}
}

// ClosedByServer checks, within wait, how many of conns the server has closed: a read
// returns EOF or an error other than the timeout.
func ClosedByServer(conns []net.Conn, wait time.Duration) int {
	var (
		mu     sync.Mutex
		closed int
		wg     sync.WaitGroup
	)
	deadline := time.Now().Add(wait)
	sem := make(chan struct{}, 256)
	for _, c := range conns {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer func() { <-sem; wg.Done() }()
			c.SetReadDeadline(deadline)
			var b [512]byte
			for {
				_, err := c.Read(b[:])
				if err == nil {
					continue
				}
				if ne, ok := err.(net.Error); ok && ne.Timeout() {
					return
				}
				mu.Lock()
				closed++
				mu.Unlock()
				return
			}
		}()
	}
	wg.Wait()
	return closed
}

// Slowloris opens n connections that each announce a frame and then send its bytes one
// every interval, for at most d. It returns how many connections the server closed on
// them before d passed.
func Slowloris(ctx context.Context, network, addr string, n int, interval, d time.Duration) Abuse {
	conns, a := OpenConns(network, addr, n)
	defer CloseAll(conns)
	q := framed(query("slow.example.", 1))
	ctx, cancel := context.WithTimeout(ctx, d)
	defer cancel()
	var (
		mu sync.Mutex
		wg sync.WaitGroup
	)
	for _, c := range conns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			t := time.NewTicker(interval)
			defer t.Stop()
			for i := 0; ; i = (i + 1) % len(q) {
				if _, err := c.Write(q[i : i+1]); err != nil {
					mu.Lock()
					a.Closed++
					mu.Unlock()
					return
				}
				mu.Lock()
				a.Sent++
				mu.Unlock()
				select {
				case <-ctx.Done():
					return
				case <-t.C:
				}
			}
		}()
	}
	wg.Wait()
	return a
}

// GarbageFrames sends count frames of random bytes, each on a new connection, and counts
// the connections the server closed (a bad frame should close it) or answered (FORMERR).
func GarbageFrames(network, addr string, count int, seed uint64) Abuse {
	r := rand.New(rand.NewPCG(seed, 1))
	var a Abuse
	for range count {
		b := make([]byte, 1+r.IntN(512))
		for i := range b {
			b[i] = byte(r.Uint32())
		}
		a.add(oneFrame(network, addr, framed(b)))
	}
	return a
}

// MaxFrames sends count frames of the largest size the framing allows (65535 bytes): half
// random bytes, half a valid query followed by trailing bytes.
func MaxFrames(network, addr string, count int, seed uint64) Abuse {
	r := rand.New(rand.NewPCG(seed, 2))
	var a Abuse
	for i := range count {
		b := make([]byte, 65535)
		for j := range b {
			b[j] = byte(r.Uint32())
		}
		if i%2 == 1 {
			copy(b, query("max.example.", uint16(i)))
		}
		a.add(oneFrame(network, addr, framed(b)))
	}
	// A length prefix that promises 65535 bytes and delivers a few, then closes its write
	// side: the server must not wait for the rest for ever.
	short := framed(make([]byte, 65535))[:100]
	a.add(oneFrame(network, addr, short))
	return a
}

// HalfClosed sends count valid queries, each on a new connection whose write side is then
// shut down (FIN): the server should still answer, then close. It also opens connections
// that shut down their write side at once.
func HalfClosed(network, addr string, count int) Abuse {
	var a Abuse
	for i := range count {
		var frame []byte
		if i%2 == 0 {
			frame = framed(query("half.example.", uint16(i)))
		}
		a.add(oneFrame(network, addr, frame))
	}
	return a
}

// oneFrame dials, writes b, shuts down its write side, and reads until the server closes
// or 2 s pass.
func oneFrame(network, addr string, b []byte) Abuse {
	var a Abuse
	c, err := net.DialTimeout(network, addr, time.Second)
	if err != nil {
		a.Refused++
		return a
	}
	defer c.Close()
	a.Opened++
	if len(b) > 0 {
		if _, err := c.Write(b); err != nil {
			a.Closed++
			return a
		}
		a.Sent++
	}
	if cw, ok := c.(interface{ CloseWrite() error }); ok {
		cw.CloseWrite()
	}
	c.SetReadDeadline(time.Now().Add(2 * time.Second))
	var buf []byte
	for {
		msg, err := wire.ReadFrame(c, buf)
		if err != nil {
			if ne, ok := err.(net.Error); !ok || !ne.Timeout() {
				a.Closed++
			}
			return a
		}
		buf = msg
		if new(dns.Msg).Unpack(msg) == nil {
			a.Answered++
		}
	}
}

// RandomUDP sends count datagrams to addr at about rate per second: random bytes of random
// length, truncated headers, replies (QR set) and queries with trailing garbage. Replies
// are read and counted, not awaited. A rate above the server's capacity fills its socket
// buffer and the kernel drops well-formed queries too: that is a flood, which no server
// can absorb in user space, not the malformed-input abuse this measures.
func RandomUDP(addr string, count, rate int, seed uint64) Abuse {
	r := rand.New(rand.NewPCG(seed, 3))
	var a Abuse
	c, err := net.Dial("udp", addr)
	if err != nil {
		a.Refused++
		return a
	}
	defer c.Close()
	a.Opened++
	done := make(chan int)
	go func() {
		n := 0
		buf := make([]byte, 65535)
		for {
			c.SetReadDeadline(time.Now().Add(500 * time.Millisecond))
			if _, err := c.Read(buf); err != nil {
				if ne, ok := err.(net.Error); ok && ne.Timeout() {
					break
				}
				continue // ICMP refusals surface as errors on a connected socket
			}
			n++
		}
		done <- n
	}()
	for i := range count {
		var b []byte
		switch i % 4 {
		case 0: // random bytes
			b = make([]byte, r.IntN(1500))
			for j := range b {
				b[j] = byte(r.Uint32())
			}
		case 1: // a truncated header
			b = query("trunc.example.", uint16(i))[:r.IntN(12)]
		case 2: // a reply, as a reflection attempt would send
			m := new(dns.Msg)
			m.SetQuestion("reflect.example.", dns.TypeA)
			m.Response = true
			b, _ = m.Pack()
		case 3: // a query followed by garbage, with a random count field
			b = append(query("tail.example.", uint16(i)), byte(r.Uint32()), byte(r.Uint32()))
			binary.BigEndian.PutUint16(b[4:], uint16(r.IntN(4)))
		}
		if _, err := c.Write(b); err == nil {
			a.Sent++
		}
		if per := max(rate/100, 1); i%per == per-1 {
			time.Sleep(10 * time.Millisecond)
		}
	}
	a.Answered = <-done
	return a
}

func (a *Abuse) add(b Abuse) {
	a.Opened += b.Opened
	a.Refused += b.Refused
	a.Closed += b.Closed
	a.Answered += b.Answered
	a.Sent += b.Sent
}

func query(name string, id uint16) []byte {
	m := new(dns.Msg)
	m.SetQuestion(name, dns.TypeA)
	m.Id = id
	b, err := m.Pack()
	if err != nil {
		panic(err)
	}
	return b
}

func framed(b []byte) []byte {
	f, err := wire.AppendFrame(nil, b)
	if err != nil {
		panic(err)
	}
	return f
}
