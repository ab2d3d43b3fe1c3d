package warmcache

import (
	"math/bits"
	"unsafe"
)

// Each shard's index maps a hash to the slot of its record: open addressing with linear
// probing, in a table of 8-byte buckets (a slab block, or a mapping of its own past
// chunkSize) that doubles at three quarters full, and backward-shift deletion, so that
// no bucket is ever a tombstone. It is read under the shard's read lock and changed under
// its write lock.

// fib spreads a hash over the index (Fibonacci hashing).
const fib = 0x9E3779B97F4A7C15

// minIndex is the smallest index table, in buckets.
const minIndex = 16

// find returns the slot of hash h, or the empty bucket where it would go.
func (sh *shard) find(h uint64) (slot uint32, bucket int, ok bool) {
	if len(sh.idx) == 0 {
		return 0, -1, false
	}
	mix := h * fib
	tag := uint32(mix >> 32)
	mask := len(sh.idx) - 1
	for i := int(mix >> (64 - sh.bits)); ; i = (i + 1) & mask {
		v := sh.idx[i]
		if v == 0 {
			return 0, i, false
		}
		if uint32(v>>32) == tag {
			if slot := uint32(v) - 1; sh.rec(slot).hash == h {
				return slot, i, true
			}
		}
	}
}

// unlink empties bucket b, shifting back the buckets after it that probed past it.
func (sh *shard) unlink(b int) {
	mask := len(sh.idx) - 1
	i := b
	for j := (i + 1) & mask; ; j = (j + 1) & mask {
		v := sh.idx[j]
		if v == 0 {
			break
		}
		home := int(uint32(v>>32) >> (32 - sh.bits))
		if (j-i)&mask <= (j-home)&mask {
			sh.idx[i] = v
			i = j
		}
	}
	sh.idx[i] = 0
}

// growth is the bytes by which sh's index grows to take one more entry.
func (sh *shard) growth() int64 {
	if (sh.n+1)*4 <= len(sh.idx)*3 {
		return 0
	}
	return int64(8 * (max(minIndex, 2*len(sh.idx)) - len(sh.idx)))
}

// grow doubles sh's index (or makes its first). sh is write-locked.
func (s *store) grow(sh *shard) bool {
	nb := max(minIndex, 2*len(sh.idx))
	size := nb * 8
	var (
		mem []byte
		ref uint32
		big = size > chunkSize
		ok  bool
	)
	if big {
		mem = mapChunk(size)
		ok = mem != nil
	} else if ref, mem, ok = s.slab.alloc(size); ok {
		clear(mem)
	}
	if !ok {
		return false
	}
	idx := unsafe.Slice((*uint64)(unsafe.Pointer(&mem[0])), nb)
	nbits := uint8(bits.TrailingZeros(uint(nb))) // #nosec G115 -- nb is a power of two
	mask := nb - 1
	for _, v := range sh.idx {
		if v == 0 {
			continue
		}
		i := int(uint32(v>>32) >> (32 - nbits))
		for idx[i] != 0 {
			i = (i + 1) & mask
		}
		idx[i] = v
	}
	s.bytes.Add(int64(size - 8*len(sh.idx)))
	s.freeIndex(sh)
	sh.idx, sh.bits, sh.idxBig, sh.idxRef = idx, nbits, big, ref
	return true
}

// freeIndex returns sh's index table to where it came from.
func (s *store) freeIndex(sh *shard) {
	switch {
	case len(sh.idx) == 0:
	case sh.idxBig:
		unmapChunk(unsafe.Slice((*byte)(unsafe.Pointer(&sh.idx[0])), 8*len(sh.idx)))
	default:
		s.slab.release(sh.idxRef, 8*len(sh.idx))
	}
	sh.idx = nil
}
