//go:build !linux

package csi

import "errors"

var errNotLinux = errors.New("bind mounts need Linux")

func bindReadOnly(source, target string) error { return errNotLinux }
func unmount(target string) error              { return errNotLinux }
func isMountPoint(path string) (bool, error)   { return false, errNotLinux }
