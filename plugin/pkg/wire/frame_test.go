package wire

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"testing"
)

func frame(t testing.TB, msg []byte) []byte {
	t.Helper()
	b, err := AppendFrame(nil, msg)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestReadFrame(t *testing.T) {
	big := bytes.Repeat([]byte{7}, MaxFrame)
	tests := []struct {
		name string
		in   []byte
		want [][]byte
		err  error
	}{
		{"empty", nil, nil, io.EOF},
		{"one", frame(t, []byte("abc")), [][]byte{[]byte("abc")}, io.EOF},
		{"two back to back", append(frame(t, []byte("a")), frame(t, []byte("bc"))...), [][]byte{[]byte("a"), []byte("bc")}, io.EOF},
		{"largest", frame(t, big), [][]byte{big}, io.EOF},
		{"zero length", []byte{0, 0, 1}, nil, ErrZeroFrame},
		{"half a length", []byte{0}, nil, io.ErrUnexpectedEOF},
		{"short body", []byte{0, 3, 1, 2}, nil, io.ErrUnexpectedEOF},
		{"length only", []byte{0, 3}, nil, io.ErrUnexpectedEOF},
	}
	for _, tc := range tests {
		for _, buf := range [][]byte{nil, make([]byte, 0, 2)} { // fresh and reused buffers
			r := bytes.NewReader(tc.in)
			var got [][]byte
			var err error
			for {
				var b []byte
				if b, err = ReadFrame(r, buf); err != nil {
					break
				}
				got = append(got, bytes.Clone(b))
			}
			if !errors.Is(err, tc.err) || len(got) != len(tc.want) {
				t.Errorf("%s: got %d frames, err %v; want %d, %v", tc.name, len(got), err, len(tc.want), tc.err)
				continue
			}
			for i := range got {
				if !bytes.Equal(got[i], tc.want[i]) {
					t.Errorf("%s: frame %d differs", tc.name, i)
				}
			}
		}
	}
}

func TestReadFrameReusesBuffer(t *testing.T) {
	buf := make([]byte, 0, 16)
	b, err := ReadFrame(bytes.NewReader(frame(t, []byte("abcd"))), buf)
	if err != nil || string(b) != "abcd" || &b[0] != &buf[:1][0] {
		t.Fatalf("ReadFrame = %q, %v; want abcd read into buf", b, err)
	}
}

// TestReadFrameAllocs: with a buffer the message fits, ReadFrame allocates nothing (the
// length prefix is read into the buffer too); without one, a single buffer for a message
// of up to 512 bytes.
func TestReadFrameAllocs(t *testing.T) {
	data := frame(t, bytes.Repeat([]byte("m"), 100))
	r := bytes.NewReader(data)
	buf := make([]byte, 0, 512)
	for _, c := range []struct {
		buf  []byte
		want float64
	}{{buf, 0}, {nil, 1}} {
		got := testing.AllocsPerRun(100, func() {
			r.Reset(data)
			if m, err := ReadFrame(r, c.buf); err != nil || len(m) != 100 {
				t.Fatalf("ReadFrame = %d bytes, %v", len(m), err)
			}
		})
		if got != c.want {
			t.Errorf("ReadFrame with a buffer of capacity %d: %v allocations, want %v", cap(c.buf), got, c.want)
		}
	}
}

func TestAppendAndWriteFrame(t *testing.T) {
	b, err := AppendFrame([]byte("x"), []byte("hello"))
	if err != nil || string(b) != "x\x00\x05hello" {
		t.Fatalf("AppendFrame = %q, %v", b, err)
	}
	if _, err := AppendFrame(nil, make([]byte, MaxFrame+1)); !errors.Is(err, ErrFrameTooLong) {
		t.Errorf("AppendFrame of %d bytes: %v, want ErrFrameTooLong", MaxFrame+1, err)
	}
	var w countingWriter
	if err := WriteFrame(&w, []byte("hello")); err != nil || w.String() != "\x00\x05hello" || w.writes != 1 {
		t.Fatalf("WriteFrame wrote %q in %d writes, %v", w.String(), w.writes, err)
	}
	if err := WriteFrame(&w, make([]byte, MaxFrame+1)); !errors.Is(err, ErrFrameTooLong) || w.writes != 1 {
		t.Errorf("WriteFrame of %d bytes: %v after %d writes", MaxFrame+1, err, w.writes)
	}
}

type countingWriter struct {
	bytes.Buffer
	writes int
}

func (w *countingWriter) Write(p []byte) (int, error) { w.writes++; return w.Buffer.Write(p) }

func TestStartEndFrame(t *testing.T) {
	b, off := StartFrame([]byte("xy"))
	b = append(b, "query"...)
	if err := EndFrame(b, off); err != nil || off != 2 || string(b) != "xy\x00\x05query" {
		t.Fatalf("frame %q at %d, %v", b, off, err)
	}
	b, off = StartFrame(nil)
	b = append(b, make([]byte, MaxFrame+1)...)
	if err := EndFrame(b, off); !errors.Is(err, ErrFrameTooLong) {
		t.Errorf("EndFrame of %d bytes: %v, want ErrFrameTooLong", MaxFrame+1, err)
	}
	if n := binary.BigEndian.Uint16(b); n != 0 {
		t.Errorf("EndFrame wrote length %d for a message too long", n)
	}
}
