package frontdoor

import (
	"encoding/binary"
	"net"
	"strconv"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"
)

// batchIO is one reader's batch I/O on its socket: recvmmsg and sendmmsg over message
// headers, buffers and peer addresses allocated once. The calls are raw system calls (the
// socket is non-blocking; on EAGAIN the reader waits in the runtime's poller): a batch
// call that takes longer than the scheduler's 20 µs tick would otherwise have its P taken
// and handed to another thread, and every batch would pay for the thread switches. A hit's
// reply goes to the peer address its query came from as the kernel wrote it, so a hit
// allocates nothing.
type batchIO struct {
	rc    syscall.RawConn
	in    []unix.Mmsghdr
	inIov []unix.Iovec
	bufs  [][]byte
	names []unix.RawSockaddrInet6
	oobs  [][]byte

	out    []unix.Mmsghdr
	outIov []unix.Iovec
	keep   [][]byte // the bytes out points to, reachable from here
}

func newBatchIO(c *net.UDPConn, oobSize int) (*batchIO, error) {
	rc, err := c.SyscallConn()
	if err != nil {
		return nil, err
	}
	b := &batchIO{
		rc: rc, in: make([]unix.Mmsghdr, batchLen), inIov: make([]unix.Iovec, batchLen), bufs: make([][]byte, batchLen),
		names: make([]unix.RawSockaddrInet6, batchLen), oobs: make([][]byte, batchLen),
		out: make([]unix.Mmsghdr, 0, batchLen), outIov: make([]unix.Iovec, batchLen), keep: make([][]byte, 0, 2*batchLen),
	}
	for i := range b.in {
		b.bufs[i] = make([]byte, readSize+1)
		b.inIov[i] = unix.Iovec{Base: &b.bufs[i][0]}
		b.inIov[i].SetLen(readSize + 1)
		h := &b.in[i].Hdr
		h.Name, h.Iov = (*byte)(unsafe.Pointer(&b.names[i])), &b.inIov[i]
		h.SetIovlen(1)
		if oobSize > 0 {
			b.oobs[i] = make([]byte, oobSize)
			h.Control = &b.oobs[i][0]
		}
	}
	return b, nil
}

// read fills the headers with the datagrams waiting on the socket, waiting for one if none
// is; it returns how many it read.
func (b *batchIO) read() (int, error) {
	for i := range b.in {
		h := &b.in[i].Hdr
		h.Namelen = unix.SizeofSockaddrInet6
		h.SetControllen(len(b.oobs[i]))
		h.Flags = 0
	}
	n, errno, err := mmsg(b.rc, false, b.in)
	if err != nil {
		return 0, err
	}
	if errno != 0 {
		return 0, errno
	}
	return n, nil
}

// msg returns the i-th datagram read: its bytes (at most readSize+1: a longer one was cut)
// and its control message.
func (b *batchIO) msg(i int) (data, oob []byte) {
	m := &b.in[i]
	if b.oobs[i] != nil {
		oob = b.oobs[i][:m.Hdr.Controllen]
	}
	return b.bufs[i][:m.Len], oob
}

// family returns the i-th datagram's address family as request.Request's Family counts it
// (1 for IPv4, IPv4-mapped IPv6 included; 2 for IPv6), or 0 for another family.
func (b *batchIO) family(i int) int {
	sa := &b.names[i]
	switch sa.Family {
	case unix.AF_INET:
		return 1
	case unix.AF_INET6:
		a := &sa.Addr
		if binary.NativeEndian.Uint64(a[:8]) == 0 && a[8] == 0 && a[9] == 0 && a[10] == 0xff && a[11] == 0xff {
			return 1
		}
		return 2
	}
	return 0
}

// addr returns the i-th datagram's peer address as x/net's batch reads give it; nil for a
// family other than IPv4 and IPv6.
func (b *batchIO) addr(i int) *net.UDPAddr {
	sa := &b.names[i]
	port := int(binary.BigEndian.Uint16((*[2]byte)(unsafe.Pointer(&sa.Port))[:]))
	switch sa.Family {
	case unix.AF_INET:
		in4 := (*unix.RawSockaddrInet4)(unsafe.Pointer(sa))
		return &net.UDPAddr{IP: append(net.IP(nil), in4.Addr[:]...), Port: port}
	case unix.AF_INET6:
		a := &net.UDPAddr{IP: append(net.IP(nil), sa.Addr[:]...), Port: port}
		if id := int(sa.Scope_id); id > 0 {
			if ifi, err := net.InterfaceByIndex(id); err == nil {
				a.Zone = ifi.Name
			} else {
				a.Zone = strconv.Itoa(id)
			}
		}
		return a
	}
	return nil
}

// queue adds a reply to the i-th datagram read, with control message oob, to the write
// batch; reply and oob must stay unchanged until flush.
func (b *batchIO) queue(i int, reply, oob []byte) {
	k := len(b.out)
	b.out = b.out[:k+1]
	b.outIov[k] = unix.Iovec{Base: unsafe.SliceData(reply)}
	b.outIov[k].SetLen(len(reply))
	b.keep = append(b.keep, reply)
	h := &b.out[k].Hdr
	*h = unix.Msghdr{Name: (*byte)(unsafe.Pointer(&b.names[i])), Namelen: b.in[i].Hdr.Namelen, Iov: &b.outIov[k]}
	h.SetIovlen(1)
	if len(oob) > 0 {
		b.keep = append(b.keep, oob)
		h.Control = &oob[0]
		h.SetControllen(len(oob))
	}
}

// mmsg makes one sendmmsg (write) or recvmmsg system call over msgs on rc's socket, again
// on EINTR, after waiting in the runtime's poller on EAGAIN. It returns the messages done and
// the call's errno; err is the poller's (the socket closed).
func mmsg(rc syscall.RawConn, write bool, msgs []unix.Mmsghdr) (int, syscall.Errno, error) {
	trap, op := uintptr(unix.SYS_RECVMMSG), rc.Read
	if write {
		trap, op = unix.SYS_SENDMMSG, rc.Write
	}
	var n int
	var errno syscall.Errno
	err := op(func(fd uintptr) bool {
		for {
			r, _, e := unix.RawSyscall6(trap, fd, uintptr(unsafe.Pointer(&msgs[0])), uintptr(len(msgs)), 0, 0, 0)
			switch e {
			case unix.EINTR:
				continue
			case unix.EAGAIN:
				return false
			}
			n, errno = int(r), e
			return true
		}
	})
	return n, errno, err
}

// flush sends the write batch. A datagram the kernel refuses is dropped (as a lost
// datagram: the client asks again) and the rest are sent.
func (b *batchIO) flush() {
	out := b.out
	for len(out) > 0 {
		n, errno, err := mmsg(b.rc, true, out)
		if err != nil {
			break // the socket is closed
		}
		if errno != 0 || n == 0 {
			n = 1
		}
		out = out[n:]
	}
	b.out = b.out[:0]
	clear(b.keep)
	b.keep = b.keep[:0]
}
