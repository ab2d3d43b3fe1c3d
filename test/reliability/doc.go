// Package reliability holds the fault, abuse, leak and soak suite of dnscache: it runs the
// built bin/coredns (kit.CoreDNS) against lab upstreams (test/lab) under a bounded load
// (kit.Load) over UDP and the Unix socket, injects upstream faults, restarts,
// reloads and abusive clients, and samples the server's RSS, fds and goroutines.
//
// The short part runs in `go test ./...` with small counts and asserts only what must hold
// (no failed query while an upstream is healthy, no fd or goroutine growth, the server keeps
// answering). Timing is reported with t.Logf, never asserted. The long part runs with
// DNSCACHE_SOAK=1 (scripts/soak.sh, `make soak`) and prints the figures of
// docs/reliability.md.
package reliability
