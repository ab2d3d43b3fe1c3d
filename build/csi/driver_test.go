package csi

import (
	"context"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/container-storage-interface/spec/lib/go/csi"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"
)

// clients are the two services of a driver, over its socket.
type clients struct {
	csi.IdentityClient
	csi.NodeClient
	ctl csi.ControllerClient
}

// dial connects to the CSI socket at path, as the kubelet and node-driver-registrar do.
func dial(t *testing.T, path string) clients {
	t.Helper()
	conn, err := grpc.NewClient("unix://"+path, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return clients{csi.NewIdentityClient(conn), csi.NewNodeClient(conn), csi.NewControllerClient(conn)}
}

// serve runs a Driver for cfg in this process on a socket in a temporary directory, and
// returns a client and the socket's path. The server stops when the test ends.
func serve(t *testing.T, cfg Config) (clients, string) {
	t.Helper()
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	d, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "csi.sock")
	l, err := Listen(path)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- Serve(ctx, l, d) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Serve: %v", err)
		}
		if _, err := os.Stat(path); !os.IsNotExist(err) {
			t.Errorf("socket %s left behind: %v", path, err)
		}
	})
	return dial(t, path), path
}

// mountCap is the volume capability the kubelet sends for an inline volume.
func mountCap() *csi.VolumeCapability {
	return &csi.VolumeCapability{
		AccessType: &csi.VolumeCapability_Mount{Mount: &csi.VolumeCapability_MountVolume{}},
		AccessMode: &csi.VolumeCapability_AccessMode{Mode: csi.VolumeCapability_AccessMode_SINGLE_NODE_WRITER},
	}
}

// publishReq is a NodePublishVolumeRequest as the kubelet makes it for an inline volume with
// readOnly: true, for a CSIDriver with podInfoOnMount: true.
func publishReq(target string) *csi.NodePublishVolumeRequest {
	return &csi.NodePublishVolumeRequest{
		VolumeId:         "csi-5e7a1f0c2b9d4e8f",
		TargetPath:       target,
		VolumeCapability: mountCap(),
		Readonly:         true,
		VolumeContext: map[string]string{
			ephemeralKey:                             "true",
			"csi.storage.k8s.io/pod.name":            "app",
			"csi.storage.k8s.io/pod.namespace":       "apps",
			"csi.storage.k8s.io/pod.uid":             "0b7f6c2e",
			"csi.storage.k8s.io/serviceAccount.name": "default",
		},
	}
}

// kubeletTarget makes the directories the kubelet makes for a pod's inline volume under root
// and returns the target path it would pass.
func kubeletTarget(t *testing.T, root, uid string) string {
	t.Helper()
	dir := filepath.Join(root, uid, "volumes", "kubernetes.io~csi", "dns-cache")
	if err := os.MkdirAll(dir, 0o750); err != nil {
		t.Fatal(err)
	}
	return filepath.Join(dir, "mount")
}

func TestNew(t *testing.T) {
	dir := t.TempDir()
	for _, cfg := range []Config{
		{Source: dir, TargetRoot: dir},                             // no node ID
		{NodeID: "n", TargetRoot: dir},                             // no source
		{NodeID: "n", Source: dir},                                 // no target root
		{NodeID: "n", Source: "dns_cache", TargetRoot: dir},        // relative
		{NodeID: "n", Source: dir, TargetRoot: dir + "/no/such/x"}, // missing root
	} {
		if _, err := New(cfg); err == nil {
			t.Errorf("New(%+v) succeeded", cfg)
		}
	}
}

// TestIdentity calls the Identity service and NodeGetInfo/NodeGetCapabilities over the socket.
func TestIdentity(t *testing.T) {
	src := t.TempDir()
	c, _ := serve(t, Config{NodeID: "node-1", Source: src, TargetRoot: t.TempDir()})
	ctx := context.Background()
	info, err := c.GetPluginInfo(ctx, &csi.GetPluginInfoRequest{})
	if err != nil || info.Name != DefaultName || info.VendorVersion != Version {
		t.Errorf("GetPluginInfo: %v %v", info, err)
	}
	if caps, err := c.GetPluginCapabilities(ctx, &csi.GetPluginCapabilitiesRequest{}); err != nil || len(caps.Capabilities) != 0 {
		t.Errorf("GetPluginCapabilities: %v %v, want none (no controller service)", caps, err)
	}
	if ni, err := c.NodeGetInfo(ctx, &csi.NodeGetInfoRequest{}); err != nil || ni.NodeId != "node-1" {
		t.Errorf("NodeGetInfo: %v %v", ni, err)
	}
	if nc, err := c.NodeGetCapabilities(ctx, &csi.NodeGetCapabilitiesRequest{}); err != nil || len(nc.Capabilities) != 0 {
		t.Errorf("NodeGetCapabilities: %v %v, want none", nc, err)
	}
	if p, err := c.Probe(ctx, &csi.ProbeRequest{}); err != nil || !p.GetReady().GetValue() {
		t.Errorf("Probe with the source present: %v %v, want ready", p, err)
	}
	if err := os.Remove(src); err != nil {
		t.Fatal(err)
	}
	if p, err := c.Probe(ctx, &csi.ProbeRequest{}); err != nil || p.GetReady().GetValue() {
		t.Errorf("Probe with the source gone: %v %v, want not ready", p, err)
	}
	// There is no controller service.
	if _, err := c.ctl.ControllerGetCapabilities(ctx, &csi.ControllerGetCapabilitiesRequest{}); status.Code(err) != codes.Unimplemented {
		t.Errorf("ControllerGetCapabilities: %v, want Unimplemented", err)
	}
}

// TestRequestsRefused sends requests that must be refused before anything is mounted, each
// with the code the CSI spec gives and a message that says what to fix.
func TestRequestsRefused(t *testing.T) {
	root := t.TempDir()
	c, _ := serve(t, Config{NodeID: "node-1", Source: t.TempDir(), TargetRoot: root})
	target := kubeletTarget(t, root, "pod-a")
	outside := t.TempDir()
	if err := os.Symlink(outside, filepath.Join(root, "escape")); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	mod := func(f func(r *csi.NodePublishVolumeRequest)) *csi.NodePublishVolumeRequest {
		r := publishReq(target)
		f(r)
		return r
	}
	for _, tc := range []struct {
		name string
		req  *csi.NodePublishVolumeRequest
		msg  string
	}{
		{"no volume id", mod(func(r *csi.NodePublishVolumeRequest) { r.VolumeId = "" }), "volume_id"},
		{"no target", mod(func(r *csi.NodePublishVolumeRequest) { r.TargetPath = "" }), "target_path"},
		{"no capability", mod(func(r *csi.NodePublishVolumeRequest) { r.VolumeCapability = nil }), "volume_capability"},
		{"block", mod(func(r *csi.NodePublishVolumeRequest) {
			r.VolumeCapability.AccessType = &csi.VolumeCapability_Block{Block: &csi.VolumeCapability_BlockVolume{}}
		}), "mount access type"},
		{"not read-only", mod(func(r *csi.NodePublishVolumeRequest) { r.Readonly = false }), "readOnly: true"},
		{"persistent", mod(func(r *csi.NodePublishVolumeRequest) { delete(r.VolumeContext, ephemeralKey) }), "ephemeral"},
		{"relative target", mod(func(r *csi.NodePublishVolumeRequest) { r.TargetPath = "pod-a/mount" }), "not absolute"},
		{"outside the root", mod(func(r *csi.NodePublishVolumeRequest) { r.TargetPath = filepath.Join(outside, "mount") }), "not under"},
		{"dot-dot out of the root", mod(func(r *csi.NodePublishVolumeRequest) { r.TargetPath = root + "/pod-a/../../mount" }), "not under"},
		{"symlink out of the root", mod(func(r *csi.NodePublishVolumeRequest) { r.TargetPath = root + "/escape/mount" }), "not under"},
		{"missing parent", mod(func(r *csi.NodePublishVolumeRequest) { r.TargetPath = root + "/no-such-pod/mount" }), "no such file"},
	} {
		_, err := c.NodePublishVolume(ctx, tc.req)
		if status.Code(err) != codes.InvalidArgument || !strings.Contains(err.Error(), tc.msg) {
			t.Errorf("%s: %v, want InvalidArgument naming %q", tc.name, err, tc.msg)
		}
	}
	for _, e := range []string{target, filepath.Join(outside, "mount"), root + "/no-such-pod"} {
		if _, err := os.Lstat(e); !os.IsNotExist(err) {
			t.Errorf("a refused publish created %s", e)
		}
	}

	for _, tc := range []struct {
		name string
		req  *csi.NodeUnpublishVolumeRequest
		code codes.Code
	}{
		{"no volume id", &csi.NodeUnpublishVolumeRequest{TargetPath: target}, codes.InvalidArgument},
		{"no target", &csi.NodeUnpublishVolumeRequest{VolumeId: "v"}, codes.InvalidArgument},
		{"outside the root", &csi.NodeUnpublishVolumeRequest{VolumeId: "v", TargetPath: outside}, codes.InvalidArgument},
		// Already unpublished (or never published): success, as the spec asks of a repeat.
		{"target absent", &csi.NodeUnpublishVolumeRequest{VolumeId: "v", TargetPath: target}, codes.OK},
	} {
		_, err := c.NodeUnpublishVolume(ctx, tc.req)
		if status.Code(err) != tc.code {
			t.Errorf("unpublish, %s: %v, want %v", tc.name, err, tc.code)
		}
	}
	if _, err := os.Stat(outside); err != nil {
		t.Errorf("the refused unpublish touched %s: %v", outside, err)
	}
}

// TestListenStale shows a restarted driver takes over its stale socket, and refuses to
// remove a file that is not a socket.
func TestListenStale(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "csi.sock")
	l, err := net.Listen("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	l.(*net.UnixListener).SetUnlinkOnClose(false)
	l.Close()
	l2, err := Listen(path)
	if err != nil {
		t.Fatalf("over a stale socket: %v", err)
	}
	l2.Close()
	reg := filepath.Join(dir, "file")
	if err := os.WriteFile(reg, []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := Listen(reg); err == nil || !strings.Contains(err.Error(), "not a socket") {
		t.Errorf("over a regular file: %v", err)
	}
	if _, err := os.Stat(reg); err != nil {
		t.Errorf("the regular file was removed: %v", err)
	}
}

func TestUnescapeOctal(t *testing.T) {
	for in, want := range map[string]string{
		`/var/lib/kubelet/pods`: "/var/lib/kubelet/pods",
		`/a\040b`:               "/a b",
		`/a\134b\011c`:          "/a\\b\tc",
		`/trailing\04`:          `/trailing\04`,
		`/x\999`:                `/x\999`,
	} {
		if got := unescapeOctal(in); got != want {
			t.Errorf("unescapeOctal(%q) = %q, want %q", in, got, want)
		}
	}
}

// waitSocket waits until path accepts a connection.
func waitSocket(t *testing.T, path string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		c, err := net.Dial("unix", path)
		if err == nil {
			c.Close()
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: %v", path, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
