// Package kit is the test kit of dnscache, in the spirit of CoreDNS's plugin/test and
// plugin/pkg/dnstest: everything the end-to-end, reliability, composition and conformance
// tests, make bench and make demo need to run real servers and drive them.
//
//   - Free ports and a locked buffer: FreePort, FreeAddr, Buffer.
//   - Child processes: Process starts a program with its output in a Buffer, waits for it to
//     be ready (Await) and stops it by its PID (SIGTERM, then SIGKILL), reporting a panic, a
//     data race or a bad exit.
//   - bin/coredns: CoreDNS renders a Corefile template on free loopback ports and runs the
//     built server (Start, Prepare and Run for tests; NewCoreDNS and Launch for programs),
//     then queries it (Exchange, Kdig, Dig), reads its /metrics (Scrape, Metric, Sum),
//     reloads it (SIGUSR1), stops or kills it.
//   - /metrics: Scrape and Sum parse the Prometheus text format with expfmt.
//   - Load: a bounded, pipelined load generator over UDP, TCP, DoT and the unixsock socket
//     that records every query's latency (Histogram, and with Keep each query's fate).
//   - Third-party servers with their own configuration and certificates: StartUnbound,
//     StartNSD, StartKresd, StartDnsdist (LaunchUnbound, LaunchKresd and LaunchDnsdist for
//     programs such as make bench); test/kit/controlplane runs etcd and a Kubernetes API
//     server; test/lab the Go lab upstreams (and unbound in front of one).
//   - dnstap: Tap is a frame-stream sink on a Unix socket that keeps every message.
//   - CheckFDs and Run: a leak check for the test process and a runner for tools on PATH.
//
// Everything listens on loopback and is stopped when the test ends.
package kit
