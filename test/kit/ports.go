package kit

import (
	"errors"
	"net"
	"strconv"
	"testing"
)

// Port returns a loopback port that is free for both TCP and UDP at the time of the call.
func Port() (int, error) {
	for range 50 {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return 0, err
		}
		port := l.Addr().(*net.TCPAddr).Port
		u, err := net.ListenPacket("udp", l.Addr().String())
		l.Close()
		if err != nil {
			continue
		}
		u.Close()
		return port, nil
	}
	return 0, errors.New("kit: no loopback port free for both TCP and UDP")
}

// Addr returns "127.0.0.1:port" for a port from Port.
func Addr() (string, error) {
	p, err := Port()
	if err != nil {
		return "", err
	}
	return net.JoinHostPort("127.0.0.1", strconv.Itoa(p)), nil
}

// FreePort is Port for tests: it fails the test when no port is free.
func FreePort(t testing.TB) int {
	t.Helper()
	return must[int](t)(Port())
}

// FreeAddr is Addr for tests.
func FreeAddr(t testing.TB) string {
	t.Helper()
	return net.JoinHostPort("127.0.0.1", strconv.Itoa(FreePort(t)))
}
