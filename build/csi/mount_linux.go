package csi

import (
	"bufio"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// mountInfo is the file that lists this process's mounts.
const mountInfo = "/proc/self/mountinfo"

// bindReadOnly bind-mounts source onto target, then makes that mount read-only, nosuid and
// nodev (a bind mount takes its flags only from a remount). If the remount fails the bind
// is undone, so a target is never left writable.
func bindReadOnly(source, target string) error {
	if err := unix.Mount(source, target, "", unix.MS_BIND, ""); err != nil {
		return fmt.Errorf("bind: %w", err)
	}
	flags := uintptr(unix.MS_BIND | unix.MS_REMOUNT | unix.MS_RDONLY | unix.MS_NOSUID | unix.MS_NODEV)
	if err := unix.Mount("", target, "", flags, ""); err != nil {
		unix.Unmount(target, unix.MNT_DETACH)
		return fmt.Errorf("remount read-only: %w", err)
	}
	return nil
}

// unmount unmounts target.
func unmount(target string) error {
	return unix.Unmount(target, 0)
}

// isMountPoint reports whether path is the mount point of some mount of this process's
// mount namespace.
func isMountPoint(path string) (bool, error) {
	mounts, err := mountPoints()
	if err != nil {
		return false, err
	}
	return mounts[filepath.Clean(path)] > 0, nil
}

// mountPoints returns every mount point of this process's mount namespace with the number of
// mounts stacked on it.
func mountPoints() (map[string]int, error) {
	f, err := os.Open(mountInfo)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	out := map[string]int{}
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		// 36 35 98:0 /mnt1 /mnt2 rw,noatime master:1 - ext3 /dev/root rw,errors=continue
		fields := strings.Fields(sc.Text())
		if len(fields) < 5 {
			continue
		}
		out[unescapeOctal(fields[4])]++
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("%s: %w", mountInfo, err)
	}
	return out, nil
}

// unescapeOctal undoes the kernel's escaping of space, tab, newline and backslash in
// mountinfo paths (\040, \011, \012, \134).
func unescapeOctal(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+4 <= len(s) {
			if n, err := strconv.ParseUint(s[i+1:i+4], 8, 8); err == nil {
				b.WriteByte(byte(n))
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}
