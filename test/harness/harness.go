// Package harness is the former name of the bin/coredns runner, now in test/kit: every
// name here is an alias of kit's, kept for the packages that still import it. New code uses
// test/kit.
package harness

import "github.com/dnscache/dnscache/test/kit"

// Server is a running bin/coredns (kit.CoreDNS).
type Server = kit.CoreDNS

// The runner, ports, tools and metrics helpers, from kit.
var (
	Start    = kit.Start
	Prepare  = kit.Prepare
	Binary   = kit.Binary
	RepoRoot = kit.RepoRoot
	FreePort = kit.FreePort
	CheckFDs = kit.CheckFDs
	Run      = kit.Run
	Sum      = kit.Sum
)
