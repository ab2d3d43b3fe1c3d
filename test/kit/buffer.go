package kit

import (
	"bytes"
	"sync"
)

// Buffer is a bytes.Buffer safe for a child process's writers and the test's readers. With
// Max set it keeps the first Max bytes and drops the rest, so a chatty server cannot fill
// memory. The zero value is ready to use.
type Buffer struct {
	Max int

	mu sync.Mutex
	b  bytes.Buffer
}

func (b *Buffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.Max > 0 && b.b.Len()+len(p) > b.Max {
		b.b.Write(p[:max(b.Max-b.b.Len(), 0)])
		return len(p), nil
	}
	return b.b.Write(p)
}

// String returns what was written so far.
func (b *Buffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}
