//go:build !unix || race

package warmcache

// With the race detector the store's chunks come from the Go heap: the detector watches
// only the heap, and this way it checks every access to an entry's bytes. Elsewhere
// (mem_mmap.go) they are mapped from the kernel, outside the heap. They hold no pointers,
// so the collector does not scan them either way.

// mapChunk returns n zeroed bytes.
func mapChunk(n int) []byte { return make([]byte, n) }

// unmapChunk leaves b to the garbage collector.
func unmapChunk([]byte) {}
