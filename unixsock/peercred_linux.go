package unixsock

import (
	"net"
	"syscall"
)

// peerCred returns the peer's credentials at connect time (SO_PEERCRED, unix(7)). The pid is in
// our pid namespace: 0 when the peer's process is not visible from it (another pod).
func peerCred(c *net.UnixConn) (pid int32, uid, gid uint32, ok bool) {
	rc, err := c.SyscallConn()
	if err != nil {
		return 0, 0, 0, false
	}
	var cred *syscall.Ucred
	var cerr error
	if err := rc.Control(func(fd uintptr) {
		cred, cerr = syscall.GetsockoptUcred(int(fd), syscall.SOL_SOCKET, syscall.SO_PEERCRED)
	}); err != nil || cerr != nil {
		return 0, 0, 0, false
	}
	return cred.Pid, cred.Uid, cred.Gid, true
}
