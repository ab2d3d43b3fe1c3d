package racetls

import (
	"errors"
	"testing"
	"time"
)

// TestSendAllIDsTaken: with every one of the 65536 IDs in flight, a probe (which may pass
// max_inflight) gets errFull instead of searching forever for a free ID under the lock.
func TestSendAllIDsTaken(t *testing.T) {
	opts := &options{maxInflight: 65535}
	c := &conn{u: &upstream{opts: opts}, pending: make(map[uint16]*call, 1<<16)}
	for i := range 1 << 16 {
		c.pending[uint16(i)] = &call{}
	}
	done := make(chan error, 1)
	go func() { done <- c.send(&call{buf: make([]byte, 14)}) }()
	select {
	case err := <-done:
		if !errors.Is(err, errFull) {
			t.Fatalf("send with every ID taken: %v, want errFull", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("send with every ID taken did not return")
	}
}
