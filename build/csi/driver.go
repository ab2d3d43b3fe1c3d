// Package csi is dnscache's CSI node driver: it publishes the node cache's directory (the
// socket dns.sock and the preload shim libnss_dnscache.so.2, /run/dnscache on the node) into
// pods as an ephemeral inline volume, so that apps in namespaces whose PodSecurity level
// forbids hostPath (baseline, restricted) can opt in. It is modelled on spiffe-csi-driver,
// which does the same for the SPIFFE Workload API socket.
//
// It serves the CSI Identity and Node services only: no controller, nothing to provision or
// attach, and no state beyond the mounts themselves. NodePublishVolume bind-mounts the
// directory onto the target path that the kubelet names, read-only, nosuid and nodev;
// NodeUnpublishVolume unmounts it and removes the target. The directory is bound, never the
// socket file, so a node cache that re-creates its socket is seen by every pod at once.
//
// A pod asks for it with a CSI inline volume (see build/k8s/csi/example-app):
//
//	volumes:
//	  - name: dns-cache
//	    csi:
//	      driver: csi.dnscache.io
//	      readOnly: true
package csi

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"

	"github.com/container-storage-interface/spec/lib/go/csi"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/wrapperspb"
)

// DefaultName is the driver's name: the CSIDriver object's name and a pod volume's csi.driver.
const DefaultName = "csi.dnscache.io"

// Version is the driver's vendor version (GetPluginInfo).
const Version = "0.1.0"

// ephemeralKey is the volume context key the kubelet sets to "true" for an inline volume when
// the CSIDriver object has podInfoOnMount: true.
const ephemeralKey = "csi.storage.k8s.io/ephemeral"

// Config is what a Driver needs.
type Config struct {
	Name   string // the driver's name; DefaultName when empty
	NodeID string // this node's name (NodeGetInfo); required
	// Source is the directory to publish: the node cache's host directory as this process
	// sees it. Required.
	Source string
	// TargetRoot is the directory every target path must lie under: the kubelet's pods
	// directory (/var/lib/kubelet/pods). A target outside it, symbolic links resolved, is
	// refused. Required.
	TargetRoot string
	Log        *slog.Logger // slog.Default() when nil
}

// Driver implements the CSI Identity and Node services.
type Driver struct {
	csi.UnimplementedIdentityServer
	csi.UnimplementedNodeServer

	name, nodeID, source, root string
	log                        *slog.Logger

	mu sync.Mutex // serialises publish and unpublish
}

// New checks cfg and returns a Driver.
func New(cfg Config) (*Driver, error) {
	if cfg.Name == "" {
		cfg.Name = DefaultName
	}
	if cfg.Log == nil {
		cfg.Log = slog.Default()
	}
	switch {
	case cfg.NodeID == "":
		return nil, errors.New("csi: a node ID is required")
	case cfg.Source == "":
		return nil, errors.New("csi: a source directory is required")
	case cfg.TargetRoot == "":
		return nil, errors.New("csi: a target root directory is required")
	}
	if !filepath.IsAbs(cfg.Source) || !filepath.IsAbs(cfg.TargetRoot) {
		return nil, fmt.Errorf("csi: source %q and target root %q must be absolute", cfg.Source, cfg.TargetRoot)
	}
	root, err := filepath.EvalSymlinks(cfg.TargetRoot)
	if err != nil {
		return nil, fmt.Errorf("csi: target root: %w", err)
	}
	return &Driver{
		name:   cfg.Name,
		nodeID: cfg.NodeID,
		source: filepath.Clean(cfg.Source),
		root:   root,
		log:    cfg.Log,
	}, nil
}

// GetPluginInfo returns the driver's name and version.
func (d *Driver) GetPluginInfo(context.Context, *csi.GetPluginInfoRequest) (*csi.GetPluginInfoResponse, error) {
	return &csi.GetPluginInfoResponse{Name: d.name, VendorVersion: Version}, nil
}

// GetPluginCapabilities returns none: there is no controller service and no topology.
func (d *Driver) GetPluginCapabilities(context.Context, *csi.GetPluginCapabilitiesRequest) (*csi.GetPluginCapabilitiesResponse, error) {
	return &csi.GetPluginCapabilitiesResponse{}, nil
}

// Probe answers ready while the source is a directory.
func (d *Driver) Probe(context.Context, *csi.ProbeRequest) (*csi.ProbeResponse, error) {
	st, err := os.Stat(d.source)
	return &csi.ProbeResponse{Ready: wrapperspb.Bool(err == nil && st.IsDir())}, nil
}

// NodeGetCapabilities returns none: no staging, no stats, no expansion.
func (d *Driver) NodeGetCapabilities(context.Context, *csi.NodeGetCapabilitiesRequest) (*csi.NodeGetCapabilitiesResponse, error) {
	return &csi.NodeGetCapabilitiesResponse{}, nil
}

// NodeGetInfo returns the node ID; no volume limit (0), no topology.
func (d *Driver) NodeGetInfo(context.Context, *csi.NodeGetInfoRequest) (*csi.NodeGetInfoResponse, error) {
	return &csi.NodeGetInfoResponse{NodeId: d.nodeID}, nil
}

// NodePublishVolume bind-mounts the source directory read-only onto the request's target path,
// creating that directory. Publishing again onto a target that is already a mount point
// succeeds without mounting twice.
func (d *Driver) NodePublishVolume(_ context.Context, req *csi.NodePublishVolumeRequest) (*csi.NodePublishVolumeResponse, error) {
	switch {
	case req.GetVolumeId() == "":
		return nil, status.Error(codes.InvalidArgument, "volume_id is required")
	case req.GetTargetPath() == "":
		return nil, status.Error(codes.InvalidArgument, "target_path is required")
	case req.GetVolumeCapability() == nil:
		return nil, status.Error(codes.InvalidArgument, "volume_capability is required")
	case req.GetVolumeCapability().GetMount() == nil:
		return nil, status.Error(codes.InvalidArgument, "only the mount access type is supported (this volume is a directory, not a block device)")
	case !req.GetReadonly():
		return nil, status.Error(codes.InvalidArgument, "set readOnly: true on the pod's csi volume: the node cache's directory is published read-only")
	case req.GetVolumeContext()[ephemeralKey] != "true":
		return nil, status.Errorf(codes.InvalidArgument, "only ephemeral inline volumes are supported (volume context %s is %q, want \"true\")", ephemeralKey, req.GetVolumeContext()[ephemeralKey])
	}
	target, err := d.target(req.GetTargetPath())
	if err != nil {
		return nil, err
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if err := os.Mkdir(target, 0o755); err != nil && !errors.Is(err, os.ErrExist) {
		return nil, status.Errorf(codes.Internal, "create target %s: %v", target, err)
	}
	if st, err := os.Lstat(target); err != nil || !st.IsDir() {
		return nil, status.Errorf(codes.InvalidArgument, "target %s is not a directory", target)
	}
	mounted, err := isMountPoint(target)
	if err != nil {
		return nil, status.Errorf(codes.Internal, "%v", err)
	}
	if !mounted {
		if err := bindReadOnly(d.source, target); err != nil {
			return nil, status.Errorf(codes.Internal, "mount %s on %s: %v", d.source, target, err)
		}
	}
	d.log.Info("published", "volume", req.GetVolumeId(), "target", target, "pod", req.GetVolumeContext()["csi.storage.k8s.io/pod.namespace"]+"/"+req.GetVolumeContext()["csi.storage.k8s.io/pod.name"], "again", mounted)
	return &csi.NodePublishVolumeResponse{}, nil
}

// NodeUnpublishVolume unmounts the target path and removes it. A target that does not exist
// (already unpublished) succeeds, as the CSI spec asks.
func (d *Driver) NodeUnpublishVolume(_ context.Context, req *csi.NodeUnpublishVolumeRequest) (*csi.NodeUnpublishVolumeResponse, error) {
	switch {
	case req.GetVolumeId() == "":
		return nil, status.Error(codes.InvalidArgument, "volume_id is required")
	case req.GetTargetPath() == "":
		return nil, status.Error(codes.InvalidArgument, "target_path is required")
	}
	if _, err := os.Lstat(req.GetTargetPath()); errors.Is(err, os.ErrNotExist) {
		return &csi.NodeUnpublishVolumeResponse{}, nil
	}
	target, err := d.target(req.GetTargetPath())
	if err != nil {
		return nil, err
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	for {
		mounted, err := isMountPoint(target)
		if err != nil {
			return nil, status.Errorf(codes.Internal, "%v", err)
		}
		if !mounted {
			break
		}
		if err := unmount(target); err != nil {
			return nil, status.Errorf(codes.Internal, "unmount %s: %v", target, err)
		}
	}
	if err := os.Remove(target); err != nil && !errors.Is(err, os.ErrNotExist) {
		return nil, status.Errorf(codes.Internal, "remove target %s: %v", target, err)
	}
	d.log.Info("unpublished", "volume", req.GetVolumeId(), "target", target)
	return &csi.NodeUnpublishVolumeResponse{}, nil
}

// target checks that p is an absolute path whose parent, symbolic links resolved, lies under
// the target root, and returns it with the parent resolved. The parent must exist: the
// kubelet creates it.
func (d *Driver) target(p string) (string, error) {
	if !filepath.IsAbs(p) {
		return "", status.Errorf(codes.InvalidArgument, "target_path %q is not absolute", p)
	}
	p = filepath.Clean(p)
	parent, err := filepath.EvalSymlinks(filepath.Dir(p))
	if err != nil {
		return "", status.Errorf(codes.InvalidArgument, "target_path %q: %v", p, err)
	}
	if !strings.HasPrefix(parent+"/", d.root+"/") {
		return "", status.Errorf(codes.InvalidArgument, "target_path %q is not under %s", p, d.root)
	}
	return filepath.Join(parent, filepath.Base(p)), nil
}
