package k8s

import (
	"bytes"
	"debug/elf"
	"fmt"
	"io/fs"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"

	"github.com/dnscache/dnscache/test/kit"
	"github.com/dnscache/dnscache/test/lab"
	"github.com/miekg/dns"
	appsv1 "k8s.io/api/apps/v1"
)

// Paths inside the image, as build/Dockerfile lays it out.
const (
	imageBusybox  = "/usr/local/bin/busybox"
	imageShim     = "/usr/local/lib/dnscache/libnss_dnscache.so.2" // the glibc build
	imageMuslShim = "/usr/local/lib/dnscache/libdnscache-musl.so"  // the musl build
	imageCSI      = "/dnscache-csi"                                // the CSI node driver, cmd/dnscache-csi
)

// installedLayout is what the node cache's init container installs in its directory: each
// file, relative to the directory, and the image file it is a copy of. The "$LIB" names serve
// the one LD_PRELOAD value preloadValue: glibc's loader expands $LIB to its library directory
// name, musl's takes it literally.
var installedLayout = map[string]string{
	"libnss_dnscache.so.2":                 imageShim,     // the first name, for pods that preload it so
	"lib/x86_64-linux-gnu/libdnscache.so":  imageShim,     // glibc's $LIB on Debian and Ubuntu, amd64
	"lib/aarch64-linux-gnu/libdnscache.so": imageShim,     // the same on arm64
	"lib64/libdnscache.so":                 imageShim,     // Red Hat, SUSE
	"lib/libdnscache.so":                   imageShim,     // glibc built with the default slibdir
	"$LIB/libdnscache.so":                  imageMuslShim, // musl: "$LIB" is a directory name
}

// installRun is the node cache's init script, rewritten to run here with busybox: /dns_cache
// becomes dir, the image's files become the given local files, the image's busybox the local
// one, and, when the test does not run as root, the chown target 0:65532 becomes the caller's
// uid and gid.
type installRun struct {
	busybox, script string
}

// newInstallRun takes the init script from daemonset.yaml. It fails the test when busybox (the
// Debian busybox-static the image carries) is not installed.
func newInstallRun(t *testing.T) *installRun {
	t.Helper()
	busybox, err := exec.LookPath("busybox")
	if err != nil {
		t.Fatalf("busybox not installed (Debian package busybox-static; run `make deps`): %v", err)
	}
	ds := one[*appsv1.DaemonSet](t, loadBundle(t, "node-cache"))
	script := installScript(t, &ds.Spec.Template.Spec.InitContainers[0])
	for _, p := range []string{imageBusybox, imageShim, imageMuslShim, hostDir} {
		if !strings.Contains(script, p) {
			t.Fatalf("install script does not mention %s:\n%s", p, script)
		}
	}
	return &installRun{busybox: busybox, script: script}
}

// run runs the script against dir with images (image path -> local file), as pod hostname.
func (r *installRun) run(t *testing.T, dir string, images map[string]string, hostname string) {
	t.Helper()
	owner := "0:65532"
	if os.Geteuid() != 0 {
		owner = fmt.Sprintf("%d:%d", os.Getuid(), os.Getgid())
	}
	repl := []string{imageBusybox, r.busybox, hostDir, dir, "chown 0:65532", "chown " + owner}
	for img, local := range images {
		repl = append(repl, img, local)
	}
	script := strings.NewReplacer(repl...).Replace(r.script)
	cmd := exec.Command(r.busybox, "sh", "-euc", script)
	cmd.Env = []string{"HOSTNAME=" + hostname, "PATH=/nonexistent"}
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("install script: %v\n%s\nscript:\n%s", err, out, script)
	}
}

// TestInstallShim runs the node cache's init script (see installRun) against a temporary
// directory standing in for the hostPath, twice (a restarted pod), with a glibc and a musl
// "library" of distinct contents each time. A "running app" maps the old library first. The
// test checks that the directory then holds exactly installedLayout (every file the right
// build, mode 0644, no temporary file left; library directories 0755), that each file of the
// second run replaced the first's by rename (new inode, old mapping intact), and that the
// directory ends up sticky and group-writable for the server's group.
func TestInstallShim(t *testing.T) {
	r := newInstallRun(t)
	tmp := t.TempDir()
	dir := filepath.Join(tmp, "dns_cache")
	glibc := filepath.Join(tmp, "image-glibc.so")
	musl := filepath.Join(tmp, "image-musl.so")
	images := map[string]string{imageShim: glibc, imageMuslShim: musl}
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	wantGID := 65532
	if os.Geteuid() != 0 {
		wantGID = os.Getgid()
	}

	legacy := filepath.Join(dir, "libnss_dnscache.so.2")
	old := bytes.Repeat([]byte("old library "), 1000)
	if err := os.WriteFile(legacy, old, 0o644); err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(legacy)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	mapped, err := syscall.Mmap(int(f.Fd()), 0, len(old), syscall.PROT_READ, syscall.MAP_SHARED)
	if err != nil {
		t.Fatal(err)
	}
	defer syscall.Munmap(mapped)
	inodes := map[string]uint64{"libnss_dnscache.so.2": inode(t, legacy)}

	for run, v := range []string{"v1", "v2"} {
		content := map[string]string{imageShim: "glibc library " + v, imageMuslShim: "musl library " + v}
		for img, local := range images {
			if err := os.WriteFile(local, []byte(content[img]), 0o755); err != nil {
				t.Fatal(err)
			}
		}
		r.run(t, dir, images, "dnscache-node-x7k2p")

		var files []string
		err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			rel, _ := filepath.Rel(dir, p)
			st, err := os.Lstat(p)
			if err != nil {
				return err
			}
			switch {
			case p == dir:
			case d.IsDir():
				if st.Mode().Perm() != 0o755 || st.Mode()&(os.ModeSticky|os.ModeSetgid) != 0 {
					t.Errorf("run %d: directory %s mode %v, want 0755", run, rel, st.Mode())
				}
			case st.Mode().IsRegular():
				files = append(files, rel)
				if st.Mode().Perm() != 0o644 {
					t.Errorf("run %d: %s mode %v, want 0644", run, rel, st.Mode())
				}
			default:
				t.Errorf("run %d: %s is a %v, want a regular file", run, rel, st.Mode().Type())
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		slices.Sort(files)
		if want := slices.Sorted(maps.Keys(installedLayout)); !slices.Equal(files, want) {
			t.Fatalf("run %d: %s holds %q, want %q (a missing name, or a temporary file left)", run, dir, files, want)
		}
		for rel, img := range installedLayout {
			p := filepath.Join(dir, rel)
			if got, err := os.ReadFile(p); err != nil || string(got) != content[img] {
				t.Errorf("run %d: %s holds %.40q (%v), want %q (a copy of the image's %s)", run, rel, got, err, content[img], img)
			}
			ino := inode(t, p)
			if prev, ok := inodes[rel]; ok && ino == prev {
				t.Errorf("run %d: %s kept its inode: not replaced by rename", run, rel)
			}
			inodes[rel] = ino
		}
		if !bytes.Equal(mapped, old) {
			t.Fatalf("run %d: the library a running process mapped was changed in place", run)
		}
		ds, err := os.Stat(dir)
		if err != nil {
			t.Fatal(err)
		}
		if ds.Mode()&os.ModeSticky == 0 || ds.Mode().Perm() != 0o775 {
			t.Fatalf("run %d: %s mode %v, want sticky 0775", run, dir, ds.Mode())
		}
		if gid := int(ds.Sys().(*syscall.Stat_t).Gid); gid != wantGID {
			t.Fatalf("run %d: %s group %d, want %d", run, dir, gid, wantGID)
		}
	}
}

// muslProgram is a small program linked with musl: it resolves each argument with musl's
// getaddrinfo (both families) and gethostbyname, which libdnscache-musl.so interposes.
const muslProgram = `#define _DEFAULT_SOURCE /* gethostbyname */
#include <arpa/inet.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdio.h>
#include <sys/socket.h>

int main(int argc, char **argv)
{
	for (int i = 1; i < argc; i++) {
		struct addrinfo h = {.ai_socktype = SOCK_STREAM}, *res = NULL;
		int rc = getaddrinfo(argv[i], NULL, &h, &res);
		printf("getaddrinfo %s rc=%d", argv[i], rc);
		for (struct addrinfo *a = res; a; a = a->ai_next) {
			char s[INET6_ADDRSTRLEN];
			const void *p = a->ai_family == AF_INET
				? (const void *)&((struct sockaddr_in *)a->ai_addr)->sin_addr
				: (const void *)&((struct sockaddr_in6 *)a->ai_addr)->sin6_addr;
			printf(" %s", inet_ntop(a->ai_family, p, s, sizeof s));
		}
		printf("\n");
		if (res)
			freeaddrinfo(res);
		struct hostent *he = gethostbyname(argv[i]);
		printf("gethostbyname %s", argv[i]);
		for (char **p = he ? he->h_addr_list : NULL; p && *p; p++) {
			char s[INET_ADDRSTRLEN];
			printf(" %s", inet_ntop(AF_INET, *p, s, sizeof s));
		}
		printf("\n");
	}
	return 0;
}
`

// buildMuslProgram compiles muslProgram with musl-gcc (Debian's musl-tools) and checks that the
// result is a musl program: its interpreter is musl's loader.
func buildMuslProgram(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	src, bin := filepath.Join(dir, "resolve.c"), filepath.Join(dir, "resolve")
	if err := os.WriteFile(src, []byte(muslProgram), 0o644); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("musl-gcc", "-std=c11", "-O2", "-Wall", "-Wextra", "-Werror", "-o", bin, src).CombinedOutput(); err != nil {
		t.Fatalf("musl-gcc (Debian package musl-tools; run `make deps`): %v\n%s", err, out)
	}
	f, err := elf.Open(bin)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	for _, p := range f.Progs {
		if p.Type != elf.PT_INTERP {
			continue
		}
		b := make([]byte, p.Filesz)
		if _, err := p.ReadAt(b, 0); err != nil {
			t.Fatal(err)
		}
		if interp := strings.TrimRight(string(b), "\x00"); !strings.Contains(interp, "ld-musl") {
			t.Fatalf("%s: interpreter %q, want musl's loader", bin, interp)
		}
		return bin
	}
	t.Fatalf("%s: no interpreter, want a dynamically linked musl program", bin)
	return ""
}

// TestInstalledShimsResolve installs the real libraries (preload/build, from `make build`)
// with the node cache's init script (see installRun) into the directory of a bin/coredns that
// serves its unixsock socket there, as the DaemonSet lays it out on a node, then resolves
// through that directory with the one LD_PRELOAD value of the manifests (DNSCACHE_SOCKET
// points the shims at the socket in place of /dns_cache/dns.sock): glibc's getent ahosts, a
// musl-linked program (getaddrinfo, gethostbyname), and getent with the first name,
// libnss_dnscache.so.2, that existing pods preload. Each must answer the lab's addresses for
// its name with the fallback to the libc's own resolver off, and with queries counted on the
// socket.
func TestInstalledShimsResolve(t *testing.T) {
	r := newInstallRun(t)
	root := kit.RepoRoot(t)
	images := map[string]string{
		imageShim:     filepath.Join(root, "preload", "build", "libnss_dnscache.so.2"),
		imageMuslShim: filepath.Join(root, "preload", "build", "libdnscache-musl.so"),
	}
	for _, p := range images {
		if _, err := os.Stat(p); err != nil {
			t.Fatalf("shim: %v (run `make build`)", err)
		}
	}
	musl := buildMuslProgram(t)

	u := lab.StartTest(t, lab.Config{TTL: 300})
	s := kit.Prepare(t)
	r.run(t, s.Dir, images, "dnscache-node-x7k2p")
	s.Run(t, fmt.Sprintf(`.:{{.Port}} {
    bind 127.0.0.1
    {{.Std}}
    unixsock {{.Sock}} {
        mode 0666
    }
    warmcache
    forward . %s
}
`, u.UDPAddr()))

	// labAddrs asks the lab directly for name's A and AAAA records.
	labAddrs := func(name string) (v4, v6 []string) {
		for _, qt := range []uint16{dns.TypeA, dns.TypeAAAA} {
			m := new(dns.Msg)
			m.SetQuestion(name, qt)
			resp, err := dns.Exchange(m, u.UDPAddr())
			if err != nil {
				t.Fatal(err)
			}
			if qt == dns.TypeA {
				v4 = kit.Answers(resp, qt)
			} else {
				v6 = kit.Answers(resp, qt)
			}
		}
		if len(v4) == 0 || len(v6) == 0 {
			t.Fatalf("the lab answers %s with %v %v, want both families", name, v4, v6)
		}
		return v4, v6
	}
	// The example apps' LD_PRELOAD value (glibc and musl: the same), in this directory.
	value := ""
	for _, dir := range []string{"example-app", "example-app/alpine"} {
		v := ldPreload(t, dir, &one[*appsv1.Deployment](t, loadBundle(t, dir)).Spec.Template.Spec.Containers[0])
		if value != "" && v != value {
			t.Fatalf("%s: LD_PRELOAD=%s, example-app's is %s", dir, v, value)
		}
		value = v
	}
	rel, ok := strings.CutPrefix(value, hostDir+"/")
	if !ok {
		t.Fatalf("LD_PRELOAD=%s is not in %s", value, hostDir)
	}
	preload := filepath.Join(s.Dir, rel)
	cases := []struct {
		what, preload, name string
		argv                []string
		want                map[string]bool // printed's keys that must hold the addresses: true for both families
	}{
		// getent ahosts asks with AI_ADDRCONFIG, which may leave the IPv6 addresses out.
		{"glibc getent ahosts", preload, "glibc.install-shim.example.", []string{"getent", "ahosts"}, map[string]bool{"getent": false}},
		{"musl program", preload, "musl.install-shim.example.", []string{musl}, map[string]bool{"getaddrinfo": true, "gethostbyname": false}},
		// Pods that preload the first name keep working.
		{"glibc getent ahosts, LD_PRELOAD=.../libnss_dnscache.so.2", s.Dir + "/libnss_dnscache.so.2", "legacy.install-shim.example.", []string{"getent", "ahosts"}, map[string]bool{"getent": false}},
	}
	for _, tc := range cases {
		v4, v6 := labAddrs(tc.name)
		before := s.Metric(t, "coredns_unixsock_requests_total", nil)
		cmd := exec.Command(tc.argv[0], append(tc.argv[1:], tc.name)...)
		cmd.Env = append(os.Environ(), "LD_PRELOAD="+tc.preload, "DNSCACHE_SOCKET="+s.Sock,
			"DNSCACHE_FALLBACK=0", "DNSCACHE_TIMEOUT_MS=5000")
		out, err := cmd.CombinedOutput()
		after := s.Metric(t, "coredns_unixsock_requests_total", nil)
		if err != nil {
			why := ""
			if cmd.ProcessState != nil && cmd.ProcessState.ExitCode() == 127 {
				why = " (the loader refused the library)"
			}
			t.Errorf("%s %s: %v%s\n%s", tc.what, tc.name, err, why, out)
			continue
		}
		got := printed(string(out))
		for key, both := range tc.want {
			want := slices.Clone(v4)
			if both {
				want = append(want, v6...)
			}
			for _, a := range want {
				if !slices.Contains(got[key], a) {
					t.Errorf("%s %s: %s printed %v, want %v:\n%s", tc.what, tc.name, key, got[key], want, out)
					break
				}
			}
		}
		if after <= before {
			t.Errorf("%s: no query on the socket (%v before, %v after): the library was not loaded from %s", tc.what, before, after, tc.preload)
		}
	}
}

// printed returns the addresses in the output of getent ahosts (key "getent": "ADDR STREAM
// NAME" lines) and of muslProgram (keys "getaddrinfo" and "gethostbyname").
func printed(out string) map[string][]string {
	m := map[string][]string{}
	for _, line := range strings.Split(out, "\n") {
		f := strings.Fields(line)
		switch {
		case len(f) == 3 && f[1] == "STREAM":
			m["getent"] = append(m["getent"], f[0])
		case len(f) >= 3 && f[0] == "getaddrinfo" && f[2] == "rc=0":
			m["getaddrinfo"] = append(m["getaddrinfo"], f[3:]...)
		case len(f) >= 2 && f[0] == "gethostbyname":
			m["gethostbyname"] = append(m["gethostbyname"], f[2:]...)
		}
	}
	return m
}

func inode(t *testing.T, path string) uint64 {
	t.Helper()
	st, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	return st.Sys().(*syscall.Stat_t).Ino
}
