//go:build unix && !race

package warmcache

import "syscall"

// mapChunk maps n bytes of zeroed anonymous memory outside the Go heap, or returns nil.
// The kernel backs a page only once it is written, so a chunk costs what is used of it.
func mapChunk(n int) []byte {
	b, err := syscall.Mmap(-1, 0, n, syscall.PROT_READ|syscall.PROT_WRITE, syscall.MAP_PRIVATE|syscall.MAP_ANON)
	if err != nil {
		return nil
	}
	return b
}

// unmapChunk returns a chunk of mapChunk to the kernel.
func unmapChunk(b []byte) { syscall.Munmap(b) }
