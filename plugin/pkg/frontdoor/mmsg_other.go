//go:build !linux

package frontdoor

import "net"

// batchIO is recvmmsg and sendmmsg, which only Linux has (and Open fails elsewhere).
type batchIO struct{}

func newBatchIO(*net.UDPConn, int) (*batchIO, error) { return nil, errPlatform }

func (*batchIO) read() (int, error)         { return 0, errPlatform }
func (*batchIO) msg(int) (data, oob []byte) { return nil, nil }
func (*batchIO) family(int) int             { return 0 }
func (*batchIO) addr(int) *net.UDPAddr      { return nil }
func (*batchIO) queue(int, []byte, []byte)  {}
func (*batchIO) flush()                     {}
