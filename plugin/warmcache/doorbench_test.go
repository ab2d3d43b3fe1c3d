package warmcache

import (
	"context"
	"testing"
)

// BenchmarkDoorHit is the front door's hit: a packed query answered into a reused buffer.
func BenchmarkDoorHit(b *testing.B) {
	c := New()
	c.Next = answerHandler
	r := benchQuery()
	c.ServeDNS(context.Background(), &packWriter{}, r) // the miss that fills the cache
	q, err := r.Pack()
	if err != nil {
		b.Fatal(err)
	}
	dst := make([]byte, 0, 512)
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		if _, _, ok := c.Hit(q, true, dst[:0], "dns://:53"); !ok {
			b.Fatal("no hit")
		}
	}
}
