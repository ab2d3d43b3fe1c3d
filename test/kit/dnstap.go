package kit

import (
	"net"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	dnstap "github.com/dnstap/golang-dnstap"
	"github.com/miekg/dns"
	"google.golang.org/protobuf/proto"
)

// Tap is a dnstap sink on a Unix socket: golang-dnstap's frame-stream reader, with the
// bidirectional handshake CoreDNS's dnstap plugin speaks, on each connection a server makes.
//
//	tap := kit.StartTap(t, filepath.Join(s.Dir, "tap.sock")) // dnstap unix://... full
//	... tap.Has(dnstap.Message_CLIENT_QUERY, "a.example.") ...
type Tap struct {
	path string
	ln   net.Listener

	mu    sync.Mutex
	msgs  []*dnstap.Dnstap
	bad   []string
	conns []net.Conn
	wg    sync.WaitGroup
}

// StartTap listens on path; t.Cleanup closes the listener and every connection and removes
// the socket.
func StartTap(t testing.TB, path string) *Tap {
	t.Helper()
	ln, err := net.Listen("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	p := &Tap{path: path, ln: ln}
	p.wg.Add(1)
	go p.accept()
	t.Cleanup(p.Close)
	return p
}

func (p *Tap) accept() {
	defer p.wg.Done()
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		p.mu.Lock()
		p.conns = append(p.conns, c)
		p.mu.Unlock()
		p.wg.Add(1)
		go p.read(c)
	}
}

func (p *Tap) read(c net.Conn) {
	defer p.wg.Done()
	in, err := dnstap.NewFrameStreamInputTimeout(c, true, 5*time.Second)
	if err != nil {
		p.fail("handshake: " + err.Error())
		return
	}
	frames := make(chan []byte, 256)
	done := make(chan struct{})
	go func() {
		defer close(done)
		for f := range frames {
			m := new(dnstap.Dnstap)
			if err := proto.Unmarshal(f, m); err != nil {
				p.fail("unmarshal: " + err.Error())
				continue
			}
			p.mu.Lock()
			p.msgs = append(p.msgs, m)
			p.mu.Unlock()
		}
	}()
	in.ReadInto(frames) // returns when the connection ends
	close(frames)
	<-done
}

func (p *Tap) fail(s string) {
	p.mu.Lock()
	p.bad = append(p.bad, s)
	p.mu.Unlock()
}

// Path returns the socket's path, for dnstap's "unix://PATH".
func (p *Tap) Path() string { return p.path }

// Failures returns the handshakes and frames that could not be read.
func (p *Tap) Failures() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]string(nil), p.bad...)
}

// Connected reports whether a server has connected.
func (p *Tap) Connected() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.conns) > 0
}

// Messages returns the messages read so far.
func (p *Tap) Messages() []*dnstap.Dnstap {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]*dnstap.Dnstap(nil), p.msgs...)
}

// Has reports whether a message of type typ for a question for qname has been read.
func (p *Tap) Has(typ dnstap.Message_Type, qname string) bool {
	for _, m := range p.Messages() {
		msg := m.GetMessage()
		if msg.GetType() != typ {
			continue
		}
		b := msg.GetQueryMessage()
		if typ == dnstap.Message_CLIENT_RESPONSE || typ == dnstap.Message_FORWARDER_RESPONSE {
			b = msg.GetResponseMessage()
		}
		var d dns.Msg
		if d.Unpack(b) == nil && len(d.Question) > 0 && strings.EqualFold(d.Question[0].Name, qname) {
			return true
		}
	}
	return false
}

// Close stops listening, closes the connections, waits for the readers and removes the socket.
func (p *Tap) Close() {
	p.ln.Close()
	p.mu.Lock()
	for _, c := range p.conns {
		c.Close()
	}
	p.mu.Unlock()
	p.wg.Wait()
	os.Remove(p.path)
}
