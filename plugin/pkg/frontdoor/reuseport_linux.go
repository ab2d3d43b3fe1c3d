package frontdoor

import (
	"context"
	"fmt"
	"net"
	"syscall"
	"unsafe"

	"golang.org/x/net/bpf"
	"golang.org/x/sys/unix"
)

// listen binds a UDP socket to addr with SO_REUSEPORT, as CoreDNS's reuseport package
// binds its own, so that both are in one reuseport group.
func listen(addr string) (*net.UDPConn, error) {
	lc := net.ListenConfig{Control: func(_, _ string, c syscall.RawConn) error {
		var serr error
		err := c.Control(func(fd uintptr) {
			serr = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_REUSEPORT, 1) // #nosec G115 -- a socket's fd
		})
		if err != nil {
			return err
		}
		return serr
	}}
	pc, err := lc.ListenPacket(context.Background(), "udp", addr)
	if err != nil {
		return nil, err
	}
	return pc.(*net.UDPConn), nil
}

// steer attaches to the reuseport group of conn a program that returns, for every datagram,
// the index of a socket: base + random % n, or base when n is 0. Sockets are indexed in the
// order they joined the group; an index past the group makes the kernel pick by hash.
func steer(conn *net.UDPConn, base, n uint32) error {
	prog := []bpf.Instruction{bpf.RetConstant{Val: base}}
	if n > 0 {
		prog = []bpf.Instruction{
			bpf.LoadExtension{Num: bpf.ExtRand},
			bpf.ALUOpConstant{Op: bpf.ALUOpMod, Val: n},
			bpf.ALUOpConstant{Op: bpf.ALUOpAdd, Val: base},
			bpf.RetA{},
		}
	}
	raw, err := bpf.Assemble(prog)
	if err != nil {
		return err
	}
	filter := make([]unix.SockFilter, len(raw))
	for i, ins := range raw {
		filter[i] = unix.SockFilter{Code: ins.Op, Jt: ins.Jt, Jf: ins.Jf, K: ins.K}
	}
	fprog := unix.SockFprog{Len: uint16(len(filter)), Filter: unsafe.SliceData(filter)} // #nosec G115 -- at most 4 instructions
	sc, err := conn.SyscallConn()
	if err != nil {
		return err
	}
	var serr error
	err = sc.Control(func(fd uintptr) {
		serr = unix.SetsockoptSockFprog(int(fd), unix.SOL_SOCKET, unix.SO_ATTACH_REUSEPORT_CBPF, &fprog) // #nosec G115 -- a socket's fd
	})
	if err != nil {
		return err
	}
	if serr != nil {
		return fmt.Errorf("SO_ATTACH_REUSEPORT_CBPF: %w", serr)
	}
	return nil
}
