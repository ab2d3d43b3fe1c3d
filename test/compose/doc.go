// Package compose is the composition suite of DESIGN §6.1 (issue 11, deliverable 4): warmcache
// and racetls must behave like cache and forward next to every CoreDNS plugin that can share a
// server block with a cache.
//
// Each case runs two real bin/coredns processes from the same Corefile, one with `cache` and
// `forward`, the other with `warmcache` and `racetls`; both forward over DNS-over-TLS to one
// shared lab upstream (test/lab) with the lab's CA. Each process serves three copies of the
// case's server blocks, one per transport, each on its own port with its own cache: one is asked
// over UDP, one over TCP and one over its unixsock socket (2-byte framed DNS over SOCK_STREAM).
// Every query of the case is sent to each copy three times, in phases:
//
//  1. miss: the caches are empty;
//  2. hit: the same queries at once again;
//  3. refreshed: once warmcache's sweeper has refreshed the entries
//     (coredns_warmcache_prefetch_total{result="ok"} has grown) and stock cache's entries have
//     expired, so stock cache asks again.
//
// After each phase a marker query (NAPTR compose-marker-N.ZONE) is sent to each copy; it tells the
// suite when the log, dnstap and /metrics of the phase are complete. Compared, for every phase
// and transport:
//
//   - the reply bytes, with the message ID zeroed (each reply's ID is checked against its
//     query's), and TTLs zeroed after phase 1; TTLs after phase 1 must not exceed those of phase 1;
//   - the deltas of coredns_dns_requests_total and coredns_dns_responses_total, by every label
//     (the server label is mapped to the transport);
//   - the log plugin's lines (the case writes `log . "{{.LogFmt}}"`: CoreDNS's common format
//     behind a per-transport tag), with client ports, IDs and durations normalised;
//   - the dnstap messages (`dnstap {{.Dnstap}} full`), read by golang-dnstap's frame-stream
//     reader from a socket the suite listens on, with times, client ports and IDs normalised;
//   - at the end, the [WARNING] and [ERROR] lines each process printed.
//
// A case with `loadbalance` sets Shuffled: sections are compared as sets, and a query asked
// several times (+repeat=N) must come back in more than one order from each process.
//
// # Adding a case
//
// Add one entry to the cases table in cases_test.go: a name starting with the plugin under
// test, the directives of the main server block (Plugins; the suite adds bind, prometheus,
// unixsock, the cache and the forwarder), optional extra server blocks on the same port
// (Blocks), zone files written into the server's directory (Files), and the queries, one per
// string in dig's order: "NAME [TYPE] [CLASS] [+noedns] [+bufsize=N] [+do] [+cd] [+nord]
// [+repeat=N]". Corefile text is a Go template with {{.Port}}, {{.Dir}}, {{.Cache}},
// {{.Forward}}, {{.Common}} (bind and prometheus, for extra blocks), {{.LogFmt}} and
// {{.Dnstap}}, {{.Kubeconfig}}; the template plugin's own braces are written {{"{{"}}. Answers
// should have a TTL of at most TTL (6 s) so that the refresh phase has something to refresh; the
// suite waits for a refresh on each transport when any answer qualifies, or for Refreshes. Expect
// names text that stock cache's first reply to a query must hold, so that a case cannot pass by
// both sides ignoring the plugin. A case with Needs "kubernetes" runs against the control plane
// of test/kit/controlplane, shared by all such cases (objects: see clusterFixture). Queries should
// not use NAPTR or other types that coredns_dns_requests_total counts as "other": the markers do.
//
// The comparison fails on every difference; each failure names the plugin under test, the
// phase, the transport and the query, with a line diff of the two sides. COMPOSE_SUMMARY=FILE
// writes every distinct difference of each case into FILE.
//
// Every case runs twice: as written, where warmcache's front door (DESIGN §6.3) answers hits
// of the blocks that allow it, and as "front_door-off/<case>" with `front_door off`; both
// must match stock. A case with FrontDoor set also requires that the front door answered hits
// over UDP and the socket.
package compose
