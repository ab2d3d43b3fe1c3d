// Package frontdoor answers cache hits where a query arrives, before anything is unpacked
// (DESIGN §6.3). On UDP it keeps a group of sockets of its own on a server block's address:
// bound with SO_REUSEPORT before CoreDNS binds its socket, so that they share one reuseport
// group, and steered by a classic BPF program (SO_ATTACH_REUSEPORT_CBPF) that picks one of
// ours for every datagram. Each socket reads and writes in batches (recvmmsg, sendmmsg):
// a hit is rendered by the cache into the batch, and anything else is handled as
// miekg/dns's server handles it (a drop, FORMERR, NOTIMP) or unpacked and handed to the
// block's dnsserver.Server with a writer on the same socket. When our sockets close, the
// kernel hands every datagram to CoreDNS's own socket, which keeps the block answering.
//
// The plugins a hit skips are reproduced: the prometheus plugin's coredns_dns_* series,
// counted through children resolved once per label set (Reporter), a batch at a time before
// the batch's replies are sent, so that a client holding a reply finds it counted. Whether
// a block may have a front door at all is the caller's decision (Eligible).
package frontdoor
