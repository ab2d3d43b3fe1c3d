package racetls

import "github.com/dnscache/dnscache/plugin/pkg/wire"

// isResponse reports whether m is long enough to be a DNS message and has QR set.
func isResponse(m []byte) bool { return len(m) >= wire.HeaderLen && m[2]&0x80 != 0 }
