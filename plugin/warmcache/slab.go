package warmcache

import (
	"math/bits"
	"sync"
	"sync/atomic"
)

// The store keeps its entries outside Go objects (DESIGN §6.2): every byte an entry holds
// (its message, its TTL offsets, its record, its share of the index) lives in 1 MiB
// chunks that are mapped from the kernel (mem_mmap.go) and carved into blocks by a
// size-class allocator, and everything refers to everything else by integers. The Go heap
// holds a few slices per shard, whatever the number of entries, so the garbage collector
// neither scans nor paces for the entries: their memory is not in the heap it doubles
// (GOGC), and a cache of a million entries costs the collector what a cache of ten does.
//
// Why size classes rather than a log-structured arena: entries are replaced one at a time
// (a refresh, an eviction) at random across the cache, so a log would need compaction,
// which moves bytes that concurrent hits are reading and rewrites every index pointer to
// them. Blocks never move: a block freed by one entry is reused by the next entry of its
// class. The cost is the slack between an entry's size and its class, at most 7 bytes
// below 256 bytes and 12.5% above, counted against max_bytes.

const (
	chunkShift = 20
	chunkSize  = 1 << chunkShift // bytes per chunk
	grainShift = 3
	grain      = 1 << grainShift // block alignment and the smallest class

	smallClasses = 256 / grain                     // 8, 16, ... 256
	numClasses   = smallClasses + (chunkShift-8)*8 // then 8 classes per doubling, to chunkSize
	maxChunks    = 1 << (32 - (chunkShift - grainShift))
	cacheLine    = 64
)

// classSize is the size of each class's blocks.
var classSize = func() (s [numClasses]int) {
	for i := range smallClasses {
		s[i] = (i + 1) * grain
	}
	i := smallClasses
	for p := 256; p < chunkSize; p *= 2 {
		for j := 1; j <= 8; j++ {
			s[i] = p + j*p/8
			i++
		}
	}
	return s
}()

// sizeClass returns the class of a block of n bytes, 0 < n <= chunkSize.
func sizeClass(n int) int {
	if n <= 256 {
		return (n+grain-1)/grain - 1
	}
	k := bits.Len(uint(n-1)) - 1 // 2^k < n <= 2^(k+1)
	p := 1 << k
	step := p / 8
	return smallClasses + (k-8)*8 + (n-p+step-1)/step - 1
}

// blockSize is what a block for n bytes holds, slack included.
func blockSize(n int) int { return classSize[sizeClass(n)] }

// slab hands out blocks of chunks. A block is named by a 32-bit ref: chunk index and
// offset in grains. Free blocks are kept in a list per class, linked through their first
// four bytes. Callers serialize their use of a block (the store's shard locks); the slab's
// lock guards only its own lists.
type slab struct {
	mu     sync.Mutex
	dir    atomic.Pointer[[][]byte] // chunks by index; replaced, never changed, when one is added
	cur    int                      // the chunk being carved, -1 for none
	off    int                      // carving offset in cur
	free   [numClasses]uint32       // ref+1 of the first free block of each class, 0 for none
	closed bool
}

func newSlab() *slab {
	s := &slab{cur: -1}
	s.dir.Store(&[][]byte{})
	return s
}

// alloc returns a block of at least n bytes, 0 < n <= chunkSize, and its ref, or false
// when no memory can be mapped. The block holds whatever it held before.
func (s *slab) alloc(n int) (uint32, []byte, bool) {
	cl := sizeClass(n)
	size := classSize[cl]
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return 0, nil, false
	}
	if head := s.free[cl]; head != 0 {
		ref := head - 1
		b := s.block(ref, size)
		s.free[cl] = leUint32(b)
		return ref, b, true
	}
	ref, ok := s.carve(cl)
	if !ok {
		if !s.grow() {
			return 0, nil, false
		}
		ref, _ = s.carve(cl)
	}
	return ref, s.block(ref, size), true
}

// alignedClass reports whether blocks of class cl start on a cache line: those whose size
// is a multiple of one (a block of records among them), so that no record straddles two.
func alignedClass(cl int) bool { return classSize[cl]%cacheLine == 0 }

// carve cuts a block of class cl from the current chunk, or returns false when it does
// not fit.
func (s *slab) carve(cl int) (uint32, bool) {
	size := classSize[cl]
	off := s.off
	if alignedClass(cl) {
		off = (off + cacheLine - 1) &^ (cacheLine - 1)
	}
	if s.cur < 0 || off+size > chunkSize {
		return 0, false
	}
	s.spill(off)
	ref := s.ref(s.off)
	s.off += size
	return ref, true
}

// spill gives the current chunk's bytes from the carving offset to end to the free lists,
// in the largest blocks that fit there with their class's alignment.
func (s *slab) spill(end int) {
	for end-s.off >= grain {
		cl := sizeClass(end - s.off)
		for classSize[cl] > end-s.off || (alignedClass(cl) && s.off%cacheLine != 0) {
			cl--
		}
		s.push(cl, s.ref(s.off))
		s.off += classSize[cl]
	}
}

// ref names the block at offset off of the current chunk.
func (s *slab) ref(off int) uint32 {
	return uint32(s.cur)<<(chunkShift-grainShift) | uint32(off>>grainShift) // #nosec G115 -- bounded by maxChunks and chunkSize
}

// grow starts a new chunk, after giving the rest of the current one to the free lists.
func (s *slab) grow() bool {
	dir := *s.dir.Load()
	if len(dir) == maxChunks {
		return false
	}
	c := mapChunk(chunkSize)
	if c == nil {
		return false
	}
	if s.cur >= 0 {
		s.spill(chunkSize)
	}
	next := make([][]byte, len(dir), len(dir)+1)
	copy(next, dir)
	next = append(next, c)
	s.dir.Store(&next)
	s.cur, s.off = len(dir), 0
	return true
}

// release returns the block ref of n bytes (the n it was allocated for).
func (s *slab) release(ref uint32, n int) {
	s.mu.Lock()
	if !s.closed {
		s.push(sizeClass(n), ref)
	}
	s.mu.Unlock()
}

func (s *slab) push(cl int, ref uint32) {
	putLeUint32(s.block(ref, grain), s.free[cl])
	s.free[cl] = ref + 1
}

// block returns the n bytes at ref. The caller holds the lock of whatever the block
// belongs to, and the slab is not closed.
func (s *slab) block(ref uint32, n int) []byte {
	c := (*s.dir.Load())[ref>>(chunkShift-grainShift)]
	o := int(ref&(1<<(chunkShift-grainShift)-1)) << grainShift
	return c[o : o+n : o+n]
}

// mapped returns the bytes of chunks the slab holds.
func (s *slab) mapped() int64 { return int64(len(*s.dir.Load())) * chunkSize }

// close unmaps every chunk. The caller guarantees that no block is in use or will be.
func (s *slab) close() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return
	}
	s.closed = true
	for _, c := range *s.dir.Load() {
		unmapChunk(c)
	}
	s.dir.Store(&[][]byte{})
}

func leUint32(b []byte) uint32 {
	return uint32(b[0]) | uint32(b[1])<<8 | uint32(b[2])<<16 | uint32(b[3])<<24
}

func putLeUint32(b []byte, v uint32) {
	b[0], b[1], b[2], b[3] = byte(v), byte(v>>8), byte(v>>16), byte(v>>24)
}
