package warmcache

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"
	"unsafe"

	"github.com/miekg/dns"
)

func TestSizeClasses(t *testing.T) {
	prev := 0
	for cl, size := range classSize {
		if size <= prev || size%grain != 0 {
			t.Fatalf("class %d: size %d after %d", cl, size, prev)
		}
		prev = size
	}
	if prev != chunkSize {
		t.Fatalf("largest class %d, want %d", prev, chunkSize)
	}
	for n := 1; n <= chunkSize; n += 1 + n/64 {
		cl := sizeClass(n)
		size := classSize[cl]
		if size < n || (cl > 0 && classSize[cl-1] >= n) {
			t.Fatalf("sizeClass(%d) = %d (size %d): not the smallest class that holds it", n, cl, size)
		}
		if slack := size - n; (n <= 256 && slack >= grain) || (n > 256 && slack*8 > n) {
			t.Fatalf("%d bytes in a block of %d: slack over bound", n, size)
		}
	}
}

// TestSlab allocates and frees blocks of random sizes: no two blocks in use overlap (each
// keeps the pattern written into it), blocks of sizes that are multiples of a cache line
// start on one, and freed blocks are reused.
func TestSlab(t *testing.T) {
	s := newSlab()
	t.Cleanup(s.close)
	type block struct {
		ref  uint32
		n    int
		fill byte
	}
	var live []block
	rng := rand.New(rand.NewPCG(3, 4))
	check := func(b block) {
		for i, v := range s.block(b.ref, b.n) {
			if v != b.fill {
				t.Fatalf("block %x of %d bytes: byte %d is %d, want %d: overwritten", b.ref, b.n, i, v, b.fill)
			}
		}
	}
	for step := range 20000 {
		if len(live) > 0 && rng.IntN(2) == 0 {
			k := rng.IntN(len(live))
			check(live[k])
			s.release(live[k].ref, live[k].n)
			live[k] = live[len(live)-1]
			live = live[:len(live)-1]
			continue
		}
		n := 1 + rng.IntN(300)
		if rng.IntN(10) == 0 {
			n = 64 << rng.IntN(9) // records and index tables
		}
		ref, mem, ok := s.alloc(n)
		if !ok {
			t.Fatal("alloc failed")
		}
		if len(mem) < n {
			t.Fatalf("alloc(%d) gave %d bytes", n, len(mem))
		}
		if alignedClass(sizeClass(n)) && uintptr(unsafe.Pointer(&mem[0]))%cacheLine != 0 {
			t.Fatalf("block of %d bytes at %p: not on a cache line", classSize[sizeClass(n)], &mem[0])
		}
		b := block{ref, n, byte(step)}
		for i := range mem[:n] {
			mem[i] = b.fill
		}
		live = append(live, b)
	}
	for _, b := range live {
		check(b)
	}
	// Without reuse the 20000 blocks take 5 chunks; the few live at any time fit in 2.
	if m := s.mapped(); m > 2*chunkSize {
		t.Errorf("%d chunks mapped for %d live blocks: freed blocks not reused", m/chunkSize, len(live))
	}
}

// testEntry returns an entry for name number i, version v: v+1 A records, so that
// versions differ in size, each address encoding i and v.
func testEntry(tb testing.TB, i, v int, now int64) *entry {
	tb.Helper()
	name := fmt.Sprintf("n%d.example.org.", i)
	m := new(dns.Msg)
	m.SetQuestion(name, dns.TypeA)
	m.Response = true
	for j := 0; j <= v%8; j++ {
		m.Answer = append(m.Answer, &dns.A{Hdr: dns.RR_Header{Name: name, Rrtype: dns.TypeA, Class: dns.ClassINET, Ttl: 300},
			A: net.IPv4(byte(i>>16), byte(i>>8), byte(i), byte(v))})
	}
	h := hashKey(name, dns.TypeA, dns.ClassINET, false, false)
	e := newEntry(makeKey(name, dns.TypeA, dns.ClassINET, false, false), h, m, classSuccess, 300, time.Unix(0, now))
	if e == nil {
		tb.Fatal("entry not packed")
	}
	e.hits, e.lastHit = 1, now
	return e
}

// counted is what max_bytes counts in s, computed from its contents.
func counted(s *store) int64 {
	var n int64
	for i := range s.shards {
		n += int64(8 * len(s.shards[i].idx))
	}
	s.each(func(_ ref, r *record, _ []byte) { n += int64(blockSize(r.payloadLen()) + recordSize) })
	return n
}

// TestIndexAgainstMap runs random puts and removes on one shard, through its index's
// growth and backward-shift deletions, against a map.
func TestIndexAgainstMap(t *testing.T) {
	s := newStore(1, [3]int64{1 << 20, 1 << 20, 1 << 20}, 0)
	t.Cleanup(s.close)
	model := map[int]int{} // name number -> version
	rng := rand.New(rand.NewPCG(1, 2))
	for step := range 20000 {
		i := rng.IntN(3000)
		if rng.IntN(3) == 0 {
			if v, ok := model[i]; ok {
				e := s.get(testEntry(t, i, v, 0).hash)
				if e == nil || !s.remove(e.ref) {
					t.Fatalf("step %d: n%d not removed", step, i)
				}
				delete(model, i)
			}
			continue
		}
		v := step
		if _, _, ok := s.put(testEntry(t, i, v, 0), 0); !ok {
			t.Fatalf("step %d: put failed", step)
		}
		model[i] = v
	}
	if s.len() != int64(len(model)) {
		t.Fatalf("%d entries, model has %d", s.len(), len(model))
	}
	for i := range 3000 {
		want := testEntry(t, i, model[i], 0)
		p := probe{name: want.key.name, qtype: dns.TypeA, qclass: dns.ClassINET, raw: rawAlways,
			rt: replyTo{id: 7, qname: want.key.name}}
		out := s.lookup(want.hash, &p, nil)
		v, ok := model[i]
		if p.found != ok {
			t.Fatalf("n%d: found %v, want %v", i, p.found, ok)
		}
		if !ok {
			continue
		}
		m := new(dns.Msg)
		if err := m.Unpack(out); err != nil || len(m.Answer) != v%8+1 || m.Answer[0].(*dns.A).A[3] != byte(v) {
			t.Fatalf("n%d: reply %v (%v), want version %d", i, m, err, v)
		}
	}
	if got, want := s.bytes.Load(), counted(s); got != want {
		t.Errorf("bytes %d, counted from the contents %d", got, want)
	}
}

// TestMaxBytesCountsWhatIsHeld: the byte gauge is exactly the blocks, slack included, the
// records and the index tables; and max_bytes bounds it.
func TestMaxBytesCountsWhatIsHeld(t *testing.T) {
	const max = 64 << 10
	s := newStore(4, [3]int64{1 << 20, 1 << 20, 1 << 20}, max)
	t.Cleanup(s.close)
	evicted := 0
	for i := range 5000 {
		_, n, ok := s.put(testEntry(t, i, i, int64(i)), int64(i))
		if !ok {
			t.Fatal("put failed")
		}
		evicted += n
		if b := s.bytes.Load(); b > max {
			t.Fatalf("after %d puts: %d bytes, over max_bytes %d", i+1, b, max)
		}
	}
	if evicted == 0 {
		t.Errorf("nothing evicted: 5000 entries fit in %d bytes", max)
	}
	if got, want := s.bytes.Load(), counted(s); got != want {
		t.Errorf("bytes %d, counted from the contents %d", got, want)
	}
	// A one-A entry for n1.example.org.: 12 header + 20 question + 30 answer + 2 for its
	// TTL offset = 64 bytes, a block of 64, and a record of 64; two more bytes of name
	// take a block of 72.
	if got := testEntry(t, 1, 0, 0).size(); got != 64+recordSize {
		t.Errorf("one-A entry counts %d bytes, want %d", got, 64+recordSize)
	}
	if got := testEntry(t, 10, 0, 0).size(); got != 72+recordSize {
		t.Errorf("one-A entry counts %d bytes, want %d", got, 72+recordSize)
	}
	if held := s.slab.mapped(); held < s.bytes.Load() {
		t.Errorf("slab maps %d bytes, less than the %d counted", held, s.bytes.Load())
	}
	for i := range 5000 {
		if e := s.get(testEntry(t, i, i, 0).hash); e != nil {
			s.remove(e.ref)
		}
	}
	if got, want := s.bytes.Load(), counted(s); got != want || s.len() != 0 {
		t.Errorf("emptied: bytes %d (contents %d), %d entries", got, want, s.len())
	}
}

func TestMaxBytesThroughCorefile(t *testing.T) {
	c, clk := newCache(t, "warmcache {\n max_bytes 32k\n}", nil)
	c.Next = oneAHandler
	w := &recorder{}
	for i := range 1000 {
		clk.Advance(time.Millisecond)
		query(t, c, w, fmt.Sprintf("n%d.example.org.", i), dns.TypeA)
		w.raw = w.raw[:0]
	}
	if b := c.store.bytes.Load(); b > 32<<10 || b != counted(c.store) {
		t.Errorf("%d bytes held, %d counted from the contents; max_bytes 32k", b, counted(c.store))
	}
	if n := c.store.len(); n < 100 || n > 250 {
		t.Errorf("%d one-A entries in 32k, want about 32768/170", n)
	}
}

func TestClosedStoreMisses(t *testing.T) {
	c, _ := newCache(t, "warmcache", nil)
	c.Next = oneAHandler
	w := &recorder{}
	query(t, c, w, "a.example.org.", dns.TypeA)
	c.store.close()
	if m := query(t, c, w, "a.example.org.", dns.TypeA); len(m.Answer) != 1 {
		t.Errorf("closed store: reply %v, want the chain's answer", m)
	}
	if c.store.len() != 0 || c.store.bytes.Load() != 0 {
		t.Errorf("closed store holds %d entries, %d bytes", c.store.len(), c.store.bytes.Load())
	}
	q, _ := new(dns.Msg).SetQuestion("a.example.org.", dns.TypeA).Pack()
	if _, _, ok := c.Hit(q, true, nil, ""); ok {
		t.Errorf("closed store answered the front door")
	}
	c.sweep(time.Now())
}

// TestStoreStress: hits render entries while others replace them with versions of other
// sizes, evict them and sweep them, and the store closes under them. Every reply must be
// the whole of one version of the right name: a block freed or reused under a reader
// would show as a reply that does not unpack or mixes versions. Run it with -race too.
func TestStoreStress(t *testing.T) {
	const names = 600
	s := newStore(8, [3]int64{400, 400, 400}, 48<<10)
	var stop atomic.Bool
	var wg sync.WaitGroup
	var hits, checked atomic.Int64
	for g := range 4 {
		wg.Go(func() {
			rng := rand.New(rand.NewPCG(uint64(g), 9))
			for !stop.Load() {
				i := rng.IntN(names)
				name := fmt.Sprintf("n%d.example.org.", i)
				h := hashKey(name, dns.TypeA, dns.ClassINET, false, false)
				p := probe{name: name, qtype: dns.TypeA, qclass: dns.ClassINET, now: 1, raw: rawAlways,
					rt: replyTo{id: uint16(i), qname: name}}
				out := s.lookup(h, &p, nil)
				if !p.rendered {
					continue
				}
				hits.Add(1)
				m := new(dns.Msg)
				if err := m.Unpack(out); err != nil {
					t.Errorf("reply to %s does not unpack: %v", name, err)
					return
				}
				v := m.Answer[0].(*dns.A).A.To4()
				for _, rr := range m.Answer {
					a := rr.(*dns.A).A.To4()
					if rr.Header().Name != name || a[1] != byte(i>>8) || a[2] != byte(i) || a[3] != v[3] {
						t.Errorf("reply to %s holds %v", name, rr)
						return
					}
				}
				if len(m.Answer) != int(v[3])%8+1 || m.Question[0].Name != name || m.Id != uint16(i) {
					t.Errorf("reply to %s: %v", name, m)
					return
				}
				checked.Add(1)
			}
		})
	}
	wg.Go(func() { // writers: new versions, evictions
		rng := rand.New(rand.NewPCG(7, 7))
		for v := 0; !stop.Load(); v++ {
			s.put(testEntry(t, rng.IntN(names), v%256, 1), 1)
		}
	})
	wg.Go(func() { // the sweeper's pass: remove a share of what it sees
		for !stop.Load() {
			var gone []ref
			s.each(func(r ref, _ *record, _ []byte) {
				if r.slot%5 == 0 {
					gone = append(gone, r)
				}
			})
			for _, r := range gone {
				s.remove(r)
			}
		}
	})
	deadline := time.Now().Add(2 * time.Second)
	for checked.Load() < 20000 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	s.close() // under the readers and writers: they find it empty
	time.Sleep(20 * time.Millisecond)
	stop.Store(true)
	wg.Wait()
	if checked.Load() == 0 {
		t.Fatalf("no hit checked (%d hits)", hits.Load())
	}
	t.Logf("%d hits checked", checked.Load())
}

// TestEntriesOutsideTheHeap: a store of many entries adds no Go heap object per entry.
func TestEntriesOutsideTheHeap(t *testing.T) {
	c := New()
	c.Next = oneAHandler
	c.pcap = 20000
	c.init()
	t.Cleanup(c.store.close)
	r := new(dns.Msg)
	r.SetQuestion("n0.example.org.", dns.TypeA)
	c.ServeDNS(context.Background(), &discard{}, r)
	_, objs0, _ := memNow(t)
	for i := range 20000 {
		r.SetQuestion(fmt.Sprintf("n%d.example.org.", i+1), dns.TypeA)
		c.ServeDNS(context.Background(), &discard{}, r)
	}
	_, objs, _ := memNow(t)
	// Entries as Go objects took 4 each; the margin is for whatever else runs meanwhile.
	if per := float64(objs-objs0) / 20000; per > 0.5 {
		t.Errorf("%.2f heap objects per entry, want none", per)
	}
}

// TestAdoptWithinMaxBytes: adoption never evicts, and stops at max_bytes, index included.
func TestAdoptWithinMaxBytes(t *testing.T) {
	old, clk := newCache(t, "warmcache", nil)
	old.Next = oneAHandler
	w := &recorder{}
	for i := range 1000 {
		query(t, old, w, fmt.Sprintf("n%d.example.org.", i), dns.TypeA)
		w.raw = w.raw[:0]
	}
	c, _ := newCache(t, "warmcache {\n max_bytes 32k\n}", nil)
	c.now = clk.Now
	kept, dropped := c.adopt(old)
	if b := c.store.bytes.Load(); b > 32<<10 || b != counted(c.store) {
		t.Errorf("adopted into %d bytes (%d counted from the contents), max_bytes 32k", b, counted(c.store))
	}
	if kept == 0 || dropped == 0 || int64(kept) != c.store.len() {
		t.Errorf("kept %d, dropped %d, %d entries", kept, dropped, c.store.len())
	}
	// One shard of 96 entries: the 97th doubles its index from 128 to 256 buckets (1 KiB
	// more). It fits in max_bytes; with the index growth it does not.
	s := newStore(1, [3]int64{1 << 20, 1 << 20, 1 << 20}, 0)
	t.Cleanup(s.close)
	for i := range 96 {
		if !s.adopt(testEntry(t, i, 0, 0)) {
			t.Fatalf("entry %d not adopted without max_bytes", i)
		}
	}
	next := testEntry(t, 96, 0, 0)
	s.maxBytes = s.bytes.Load() + next.size() + 512
	if s.adopt(next) || s.bytes.Load() > s.maxBytes {
		t.Errorf("adopted an entry whose index growth passes max_bytes: %d bytes of %d", s.bytes.Load(), s.maxBytes)
	}
}

// TestBigIndex: past chunkSize an index table is a mapping of its own, grown, freed and
// counted like the others.
func TestBigIndex(t *testing.T) {
	s := newStore(1, [3]int64{1 << 20, 1 << 20, 1 << 20}, 0)
	t.Cleanup(s.close)
	e := testEntry(t, 0, 0, 0)
	const n = 100_000 // past 3/4 of 131072 buckets: a table of 2 MiB
	hash := func(i int) uint64 { return uint64(i)*0x9E3779B97F4A7C15 + 12345 }
	for i := range n {
		e.hash = hash(i)
		if _, _, ok := s.put(e, 0); !ok {
			t.Fatalf("put %d failed", i)
		}
	}
	sh := &s.shards[0]
	if !sh.idxBig || len(sh.idx) != 1<<18 {
		t.Fatalf("index of %d buckets, big %v; want 262144 in a mapping of its own", len(sh.idx), sh.idxBig)
	}
	if got, want := s.bytes.Load(), counted(s); got != want {
		t.Errorf("bytes %d, counted from the contents %d", got, want)
	}
	for i := 0; i < n; i += 2 {
		if g := s.get(hash(i)); g == nil || !s.remove(g.ref) {
			t.Fatalf("entry %d not found or not removed", i)
		}
	}
	for i := range n {
		if got := s.get(hash(i)) != nil; got != (i%2 == 1) {
			t.Fatalf("entry %d present %v after removing the even ones", i, got)
		}
	}
}
