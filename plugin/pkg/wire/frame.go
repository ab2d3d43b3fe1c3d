package wire

import (
	"encoding/binary"
	"io"
)

// MaxFrame is the largest message a 2-byte length prefix can carry (RFC 1035 §4.2.2).
const MaxFrame = 0xFFFF

// frameGuess is the buffer ReadFrame makes when it is given none: the largest plain DNS
// message over UDP (RFC 1035 §4.2.1), which most messages fit.
const frameGuess = 512

// ReadFrame reads one message with RFC 1035 §4.2.2 framing (TCP, DoT, the unixsock
// socket): a 2-byte big-endian length, then that many bytes. The message is read into buf
// when it fits and returned. buf may be nil: then a buffer of frameGuess bytes is made,
// and one of the message's length only when the message is longer. It returns io.EOF when
// r ends before the first byte, io.ErrUnexpectedEOF when it ends inside a frame, and
// ErrZeroFrame for a zero length.
func ReadFrame(r io.Reader, buf []byte) ([]byte, error) {
	// The prefix is read into buf too: a local array handed to r.Read would escape to
	// the heap, an allocation per frame.
	if cap(buf) < 2 {
		buf = make([]byte, 2, frameGuess)
	}
	buf = buf[:2]
	if _, err := io.ReadFull(r, buf); err != nil {
		return nil, err
	}
	l := int(binary.BigEndian.Uint16(buf))
	if l == 0 {
		return nil, ErrZeroFrame
	}
	if cap(buf) < l {
		buf = make([]byte, l)
	}
	buf = buf[:l]
	if _, err := io.ReadFull(r, buf); err != nil {
		if err == io.EOF {
			err = io.ErrUnexpectedEOF
		}
		return nil, err
	}
	return buf, nil
}

// AppendFrame appends msg with its 2-byte length prefix to b.
func AppendFrame(b, msg []byte) ([]byte, error) {
	if len(msg) > MaxFrame {
		return b, ErrFrameTooLong
	}
	b = binary.BigEndian.AppendUint16(b, uint16(len(msg))) // #nosec G115 -- checked above.
	return append(b, msg...), nil
}

// WriteFrame writes msg with its 2-byte length prefix to w in one Write, so that writers
// that serialise their Write calls never interleave frames.
func WriteFrame(w io.Writer, msg []byte) error {
	b, err := AppendFrame(make([]byte, 0, 2+len(msg)), msg)
	if err != nil {
		return err
	}
	_, err = w.Write(b)
	return err
}

// StartFrame appends a length placeholder to b for a message that the caller then
// appends in place, and returns the frame's offset for EndFrame.
func StartFrame(b []byte) ([]byte, int) { return append(b, 0, 0), len(b) }

// EndFrame fills in the length of the frame that StartFrame began at off, which must run
// to the end of b.
func EndFrame(b []byte, off int) error {
	n := len(b) - off - 2
	if n > MaxFrame {
		return ErrFrameTooLong
	}
	binary.BigEndian.PutUint16(b[off:], uint16(n)) // #nosec G115 -- checked above.
	return nil
}
