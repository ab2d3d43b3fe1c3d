package csi

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"

	"github.com/container-storage-interface/spec/lib/go/csi"
	"google.golang.org/grpc"
)

// Listen removes a stale socket left at path by an earlier run (only a socket: any other
// file is an error) and listens there.
func Listen(path string) (net.Listener, error) {
	if st, err := os.Lstat(path); err == nil {
		if st.Mode()&os.ModeSocket == 0 {
			return nil, fmt.Errorf("csi: %s exists and is not a socket", path)
		}
		if err := os.Remove(path); err != nil {
			return nil, err
		}
	}
	return net.Listen("unix", path)
}

// Serve serves d's Identity and Node services on l until ctx is done, then stops gracefully
// (calls in progress finish) and closes l, which removes its socket. Each failed call is
// logged with its method.
func Serve(ctx context.Context, l net.Listener, d *Driver) error {
	srv := grpc.NewServer(grpc.UnaryInterceptor(func(ctx context.Context, req any, info *grpc.UnaryServerInfo, h grpc.UnaryHandler) (any, error) {
		resp, err := h(ctx, req)
		if err != nil {
			d.log.Error("call failed", "method", info.FullMethod, "err", err)
		}
		return resp, err
	}))
	csi.RegisterIdentityServer(srv, d)
	csi.RegisterNodeServer(srv, d)
	done := make(chan struct{})
	go func() {
		select {
		case <-ctx.Done():
			srv.GracefulStop()
		case <-done:
		}
	}()
	err := srv.Serve(l)
	close(done)
	if errors.Is(err, grpc.ErrServerStopped) {
		err = nil
	}
	return err
}
