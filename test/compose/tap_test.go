package compose

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

// tapReader is a dnstap sink on a Unix socket: golang-dnstap's frame-stream reader (the
// bidirectional handshake CoreDNS's dnstap plugin speaks) on each connection the server makes.
type tapReader struct {
	path string
	ln   net.Listener

	mu    sync.Mutex
	msgs  []*dnstap.Dnstap
	bad   []string
	conns []net.Conn
	wg    sync.WaitGroup
}

func newTapReader(t *testing.T, path string) *tapReader {
	t.Helper()
	ln, err := net.Listen("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	r := &tapReader{path: path, ln: ln}
	r.wg.Add(1)
	go r.accept()
	t.Cleanup(r.close)
	return r
}

func (r *tapReader) accept() {
	defer r.wg.Done()
	for {
		c, err := r.ln.Accept()
		if err != nil {
			return
		}
		r.mu.Lock()
		r.conns = append(r.conns, c)
		r.mu.Unlock()
		r.wg.Add(1)
		go func() {
			defer r.wg.Done()
			in, err := dnstap.NewFrameStreamInputTimeout(c, true, 5*time.Second)
			if err != nil {
				r.fail("handshake: " + err.Error())
				return
			}
			frames := make(chan []byte, 256)
			done := make(chan struct{})
			go func() {
				defer close(done)
				for f := range frames {
					m := new(dnstap.Dnstap)
					if err := proto.Unmarshal(f, m); err != nil {
						r.fail("unmarshal: " + err.Error())
						continue
					}
					r.mu.Lock()
					r.msgs = append(r.msgs, m)
					r.mu.Unlock()
				}
			}()
			in.ReadInto(frames) // returns when the connection ends
			close(frames)
			<-done
		}()
	}
}

func (r *tapReader) fail(s string) {
	r.mu.Lock()
	r.bad = append(r.bad, s)
	r.mu.Unlock()
}

func (r *tapReader) close() {
	r.ln.Close()
	r.mu.Lock()
	for _, c := range r.conns {
		c.Close()
	}
	r.mu.Unlock()
	r.wg.Wait()
	os.Remove(r.path)
}

// connected reports whether a server has connected.
func (r *tapReader) connected() bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.conns) > 0
}

// messages returns the messages read so far.
func (r *tapReader) messages() []*dnstap.Dnstap {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]*dnstap.Dnstap(nil), r.msgs...)
}

// has reports whether a message of type typ for a question for qname has been read.
func (r *tapReader) has(typ dnstap.Message_Type, qname string) bool {
	for _, m := range r.messages() {
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
