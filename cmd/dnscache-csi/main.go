// Command dnscache-csi is dnscache's CSI node driver (package build/csi): it publishes the node
// cache's directory into pods as a read-only ephemeral inline volume, for apps in namespaces
// whose PodSecurity level forbids hostPath. It serves the CSI Identity and Node services on a
// Unix socket for the kubelet (registered by node-driver-registrar) until SIGTERM or SIGINT.
//
//	dnscache-csi -endpoint /csi/csi.sock -node-id $NODE_NAME -source /dns_cache -target-root /var/lib/kubelet/pods
//
// build/k8s/csi runs it as a DaemonSet.
package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/dnscache/dnscache/build/csi"
)

func main() {
	endpoint := flag.String("endpoint", "/csi/csi.sock", "the Unix socket to serve CSI on (a path, or unix://PATH)")
	name := flag.String("driver-name", csi.DefaultName, "the driver's name, as in the CSIDriver object")
	nodeID := flag.String("node-id", os.Getenv("NODE_NAME"), "this node's name (default $NODE_NAME)")
	source := flag.String("source", "/dns_cache", "the node cache's directory, as this process sees it")
	root := flag.String("target-root", "/var/lib/kubelet/pods", "every target path must lie under this directory")
	version := flag.Bool("version", false, "print the version and exit")
	flag.Parse()
	if *version {
		fmt.Println(*name, csi.Version)
		return
	}
	if flag.NArg() != 0 {
		fail("unexpected arguments %q", flag.Args())
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, nil))
	d, err := csi.New(csi.Config{Name: *name, NodeID: *nodeID, Source: *source, TargetRoot: *root, Log: log})
	if err != nil {
		fail("%v", err)
	}
	path := strings.TrimPrefix(*endpoint, "unix://")
	l, err := csi.Listen(path)
	if err != nil {
		fail("%v", err)
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	log.Info("serving", "driver", *name, "version", csi.Version, "endpoint", path, "node", *nodeID, "source", *source)
	if err := csi.Serve(ctx, l, d); err != nil {
		fail("%v", err)
	}
	log.Info("stopped")
}

func fail(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "dnscache-csi: "+format+"\n", args...)
	os.Exit(1)
}
