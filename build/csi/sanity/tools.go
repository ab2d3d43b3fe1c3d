//go:build tools

// Package sanity pins the csi-test release whose csi-sanity checks the driver in build/csi.
// It holds no code: build/csi's TestSanity runs
// `go build github.com/kubernetes-csi/csi-test/v5/cmd/csi-sanity` in this module.
package sanity

import _ "github.com/kubernetes-csi/csi-test/v5/cmd/csi-sanity"
