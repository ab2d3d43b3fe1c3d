package unixsock

import "time"

// stream is a served connection's byte stream: read and write with deadlines, close.
// *net.UnixConn is one; on Linux, detach (stream_linux.go) takes the connection out of Go's
// netpoller.
type stream interface {
	Read(p []byte) (int, error)
	Write(p []byte) (int, error)
	SetReadDeadline(t time.Time) error
	SetWriteDeadline(t time.Time) error
	Close() error
}
