package lab

import (
	"fmt"
	"strings"
	"time"
)

// FaultKind is a kind of misbehaviour the lab injects.
type FaultKind int

// Fault kinds.
const (
	None FaultKind = iota
	// IdleClose closes stream connections that were idle (nothing in flight) for Fault.After,
	// whatever edns-tcp-keepalive announced. Prob is drawn once per connection.
	IdleClose
	// Reset reads a query, then closes the TCP connection with SO_LINGER 0 (an RST) without
	// answering (DoH too). On UDP the query is dropped. On DoQ, half the reply is written,
	// then the stream is reset (RESET_STREAM, DOQ_INTERNAL_ERROR).
	Reset
	// BlackHole reads the query and never answers; the connection stays open.
	BlackHole
	// Garbage answers with random bytes that no DNS parser accepts (length-framed on streams).
	Garbage
	// WrongID answers with a message ID different from the query's.
	WrongID
	// WrongQuestion answers a different name than the one asked.
	WrongQuestion
	// ServFail answers SERVFAIL.
	ServFail
	// Refused answers REFUSED.
	Refused
	// HTTPError answers a DoH request with HTTP 503; WrongType with the right body under
	// Content-Type text/html; Oversize with a 200 body longer than a DNS message can be
	// (65536 bytes). On other transports these answer normally.
	HTTPError
	WrongType
	Oversize
)

var faultNames = [...]string{"none", "idleclose", "reset", "blackhole", "garbage", "wrongid", "wrongquestion", "servfail", "refused",
	"httperror", "wrongtype", "oversize"}

func (k FaultKind) String() string {
	if k >= 0 && int(k) < len(faultNames) {
		return faultNames[k]
	}
	return fmt.Sprintf("fault(%d)", int(k))
}

// ParseFaultKind parses a fault name as printed by FaultKind.String (case-insensitive).
func ParseFaultKind(s string) (FaultKind, error) {
	for i, n := range faultNames {
		if strings.EqualFold(s, n) {
			return FaultKind(i), nil
		}
	}
	return None, fmt.Errorf("unknown fault %q (want one of %s)", s, strings.Join(faultNames[:], ", "))
}

// Fault is the misbehaviour injected per query (per connection for IdleClose).
type Fault struct {
	Kind FaultKind
	Prob float64 // probability per query; 0 means 1
	// After is IdleClose's idle time.
	After time.Duration
}
