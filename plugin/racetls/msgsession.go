package racetls

import (
	"context"
	"encoding/binary"
	"errors"
	"net"
	"sync"

	"github.com/dnscache/dnscache/plugin/pkg/wire"
)

// msgSession runs each query of a batch as its own exchange (a QUIC stream, an HTTP/2
// request, a UDP socket) and hands the replies to the conn's reader, so that the conn's
// ID bookkeeping, expiry and stats work as on a pipelined stream.
type msgSession struct {
	// exchange sends the message q (the conn's ID in its header) and returns the reply
	// with the same ID. It must return when ctx ends.
	exchange func(ctx context.Context, q []byte) ([]byte, error)
	// closed is closed when the underlying connection is gone (nil: never).
	closed <-chan struct{}
	// cause says why closed was closed.
	cause func() error
	// fatal reports whether an exchange's error means the connection is gone.
	fatal func(error) bool
	// onClose releases the underlying connection.
	onClose func()
	hs      handshake
	local   net.Addr // this end of the connection, for dnstap

	ctx     context.Context
	cancel  context.CancelFunc
	replies chan reply
	wg      sync.WaitGroup
	once    sync.Once
	errMu   sync.Mutex
	err     error
}

func newMsgSession(m *msgSession) *msgSession {
	m.ctx, m.cancel = context.WithCancel(context.Background())
	m.replies = make(chan reply, 64)
	return m
}

func (m *msgSession) send(batch []byte) error {
	for len(batch) >= 2 {
		n := int(binary.BigEndian.Uint16(batch))
		if len(batch) < 2+n || n < wire.HeaderLen {
			return errGarbage
		}
		// The batch is the conn's buffer, reused once send returns.
		q := append([]byte(nil), batch[2:2+n]...)
		batch = batch[2+n:]
		if m.ctx.Err() != nil {
			return errClosed
		}
		m.wg.Add(1)
		go m.run(q)
	}
	return nil
}

func (m *msgSession) run(q []byte) {
	defer m.wg.Done()
	id := binary.BigEndian.Uint16(q)
	r, err := m.exchange(m.ctx, q)
	var rep reply
	switch {
	case m.ctx.Err() != nil:
		return
	case err != nil && m.fatal != nil && m.fatal(err):
		m.die(err)
		return
	case err != nil:
		rep = reply{id: id, err: err}
	case !isResponse(r):
		rep = reply{id: id, err: &queryError{kind: kindGarbage, err: errGarbage}}
	default:
		rep = reply{msg: r}
	}
	select {
	case m.replies <- rep:
	case <-m.ctx.Done():
	}
}

// die ends the session with err: recv returns it.
func (m *msgSession) die(err error) {
	m.errMu.Lock()
	if m.err == nil {
		m.err = err
	}
	m.errMu.Unlock()
	m.cancel()
}

func (m *msgSession) recv() (reply, error) {
	select {
	case r := <-m.replies:
		return r, nil
	case <-m.closed:
		err := error(errClosed)
		if m.cause != nil {
			err = m.cause()
		}
		m.die(err)
	case <-m.ctx.Done():
	}
	m.errMu.Lock()
	defer m.errMu.Unlock()
	if m.err == nil {
		return reply{}, errClosed
	}
	return reply{}, m.err
}

func (m *msgSession) close() error {
	m.once.Do(func() {
		m.die(errClosed)
		m.wg.Wait()
		if m.onClose != nil {
			m.onClose()
		}
	})
	return nil
}

func (m *msgSession) handshake() handshake { return m.hs }
func (m *msgSession) localAddr() net.Addr  { return m.local }

var errShortReply = errors.New("reply shorter than a DNS header")
