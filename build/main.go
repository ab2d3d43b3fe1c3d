// Command coredns is CoreDNS built with dnscache's plugins: the plugin list and its order come
// from plugin.cfg, turned into zdirectives.go and zplugin.go by `go generate`.
package main

//go:generate go run directives_generate.go

import "github.com/coredns/coredns/coremain"

func main() {
	coremain.Run()
}
