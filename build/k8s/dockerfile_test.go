package k8s

import (
	"os"
	"path"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/dnscache/dnscache/test/kit"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
)

// instruction is one Dockerfile instruction with its continuation lines joined.
type instruction struct {
	Line int
	Cmd  string // upper case: FROM, RUN, COPY, ...
	Args string
}

// parseDockerfile splits a Dockerfile into instructions: comments and blank lines dropped,
// backslash continuations joined.
func parseDockerfile(data string) []instruction {
	var out []instruction
	var cur strings.Builder
	start := 0
	for i, line := range strings.Split(data, "\n") {
		trimmed := strings.TrimSpace(line)
		if trimmed == "" || strings.HasPrefix(trimmed, "#") {
			continue
		}
		if cur.Len() == 0 {
			start = i + 1
		}
		cont := strings.HasSuffix(trimmed, "\\")
		cur.WriteString(strings.TrimSuffix(trimmed, "\\"))
		cur.WriteString(" ")
		if cont {
			continue
		}
		cmd, args, _ := strings.Cut(strings.TrimSpace(cur.String()), " ")
		out = append(out, instruction{Line: start, Cmd: strings.ToUpper(cmd), Args: strings.TrimSpace(args)})
		cur.Reset()
	}
	return out
}

// stage is one FROM ... section.
type stage struct {
	Image, Name string
	Ins         []instruction
}

func stages(ins []instruction) []*stage {
	var out []*stage
	for _, in := range ins {
		if in.Cmd == "FROM" {
			f := strings.Fields(in.Args)
			s := &stage{Image: f[0]}
			if len(f) == 3 && strings.EqualFold(f[1], "AS") {
				s.Name = f[2]
			}
			out = append(out, s)
			continue
		}
		if len(out) > 0 {
			out[len(out)-1].Ins = append(out[len(out)-1].Ins, in)
		}
	}
	return out
}

// builderPackages maps files the final stage copies from the builder outside the source tree to
// the Debian package the builder must install for them.
var builderPackages = map[string]string{"/bin/busybox": "busybox-static"}

// buildPackages are the Debian packages `make build` needs beyond the golang image (which has
// gcc): musl-gcc builds the musl shim, preload/build/libdnscache-musl.so.
var buildPackages = map[string]string{"musl-tools": "musl-gcc"}

// TestDockerfile lints build/Dockerfile (hadolint is not available here): the Go image matches
// go.mod's Go version; the final image is distroless/static or scratch and runs as nonroot;
// every path copied from the build context exists, and every artifact copied from the builder
// is one `make build` leaves in the repository (so it must have run: `make build` before the
// tests, as for bin/coredns); the builder installs what `make build` needs (musl-gcc for the musl
// shim); the files the manifests use (the binary, both shims, busybox) are where the image puts
// them.
func TestDockerfile(t *testing.T) {
	root := kit.RepoRoot(t)
	data, err := os.ReadFile(filepath.Join(root, "build", "Dockerfile"))
	if err != nil {
		t.Fatal(err)
	}
	st := stages(parseDockerfile(string(data)))
	if len(st) < 2 {
		t.Fatalf("want a multi-stage build, have %d stages", len(st))
	}
	builder, final := st[0], st[len(st)-1]

	goVersion := goModVersion(t, root)
	m := regexp.MustCompile(`^golang:(\d+\.\d+)(\.\d+)?-bookworm$`).FindStringSubmatch(builder.Image)
	if m == nil {
		t.Fatalf("builder image %s, want golang:X.Y-bookworm", builder.Image)
	}
	if m[1] != goVersion {
		t.Errorf("builder image %s, go.mod says go %s", builder.Image, goVersion)
	}
	if builder.Name == "" {
		t.Error("the builder stage has no name")
	}

	static := final.Image == "scratch" || strings.HasPrefix(final.Image, "gcr.io/distroless/static")
	if !static {
		t.Errorf("final image %s, want gcr.io/distroless/static-* or scratch", final.Image)
	}
	workdir := "/"
	cgoOff, makeBuild, setcap := false, false, false
	var aptPkgs []string
	for _, in := range builder.Ins {
		switch in.Cmd {
		case "WORKDIR":
			workdir = path.Join(workdir, in.Args)
		case "ENV":
			if strings.ReplaceAll(in.Args, " ", "") == "CGO_ENABLED=0" {
				cgoOff = true
			}
		case "COPY":
			src, _ := copyArgs(t, in)
			for _, s := range src {
				if _, err := os.Stat(filepath.Join(root, s)); err != nil {
					t.Errorf("line %d: COPY %s: %v", in.Line, s, err)
				}
			}
		case "RUN":
			if strings.Contains(in.Args, "make build") {
				makeBuild = true
				if static && !cgoOff {
					t.Errorf("line %d: make build runs with cgo on; the static final image has no libc", in.Line)
				}
			}
			if strings.Contains(in.Args, "setcap cap_net_bind_service=+ep") {
				setcap = true
			}
			if i := strings.Index(in.Args, "apt-get install"); i >= 0 {
				aptPkgs = append(aptPkgs, strings.Fields(in.Args[i:])...)
			}
		}
	}
	if !makeBuild {
		t.Error("the builder does not run make build")
	}
	for pkg, tool := range buildPackages {
		if !slices.Contains(aptPkgs, pkg) {
			t.Errorf("the builder does not install %s: make build runs %s", pkg, tool)
		}
	}
	if !setcap {
		t.Error("the builder does not give bin/coredns cap_net_bind_service (port 53 as nonroot)")
	}

	dests := map[string]bool{}
	var user, entry string
	var exposed, labels []string
	for _, in := range final.Ins {
		switch in.Cmd {
		case "COPY":
			src, dst := copyArgs(t, in)
			if !strings.HasPrefix(in.Args, "--from="+builder.Name+" ") {
				t.Errorf("line %d: the final stage copies from outside the builder: %s", in.Line, in.Args)
			}
			dests[dst] = true
			for _, s := range src {
				if rel, ok := strings.CutPrefix(s, workdir+"/"); ok {
					if _, err := os.Stat(filepath.Join(root, rel)); err != nil {
						t.Errorf("line %d: %s is not what `make build` leaves in the repository (run make build first): %v", in.Line, rel, err)
					}
				} else if pkg := builderPackages[s]; pkg == "" || !slices.Contains(aptPkgs, pkg) {
					t.Errorf("line %d: %s comes from no package the builder installs", in.Line, s)
				}
			}
		case "USER":
			user = in.Args
		case "ENTRYPOINT":
			entry = in.Args
		case "EXPOSE":
			exposed = append(exposed, strings.Fields(in.Args)...)
		case "LABEL":
			labels = append(labels, regexp.MustCompile(`([\w.-]+)=`).FindAllString(in.Args, -1)...)
		}
	}
	if u, _, _ := strings.Cut(user, ":"); u != "nonroot" && u != "65532" {
		t.Errorf("final USER %q, want nonroot", user)
	}
	for _, p := range []string{"53/udp", "53/tcp", "8080/tcp", "8181/tcp", "9153/tcp"} {
		if !slices.Contains(exposed, p) {
			t.Errorf("EXPOSE lacks %s", p)
		}
	}
	for _, l := range []string{"org.opencontainers.image.title=", "org.opencontainers.image.source=", "org.opencontainers.image.description="} {
		if !slices.Contains(labels, l) {
			t.Errorf("no LABEL %s", strings.TrimSuffix(l, "="))
		}
	}
	if entry != `["/coredns"]` || !dests["/coredns"] {
		t.Errorf("ENTRYPOINT %s: want [\"/coredns\"], the binary copied there", entry)
	}
	for _, p := range []string{imageShim, imageMuslShim, imageBusybox} {
		if !dests[p] {
			t.Errorf("the image has no %s, which the node cache's init container uses", p)
		}
	}
	if !dests[imageCSI] {
		t.Errorf("the image has no %s, which the CSI DaemonSet runs", imageCSI)
	}
}

// TestManifestImages checks that every dnscache container in the manifests runs the same image,
// with the binary as its entrypoint (no command) and -conf pointing at a mounted Corefile.
func TestManifestImages(t *testing.T) {
	var images []string
	for _, dir := range []string{"kube-dns", "node-cache"} {
		b := loadBundle(t, dir)
		var specs []*corev1.PodSpec
		for _, d := range all[*appsv1.Deployment](b) {
			specs = append(specs, &d.Spec.Template.Spec)
		}
		for _, d := range all[*appsv1.DaemonSet](b) {
			specs = append(specs, &d.Spec.Template.Spec)
		}
		for _, s := range specs {
			for _, c := range append(slices.Clone(s.InitContainers), s.Containers...) {
				images = append(images, c.Image)
				if c.Name == "coredns" && len(c.Command) != 0 {
					t.Errorf("%s: coredns container overrides the entrypoint with %v", dir, c.Command)
				}
			}
		}
	}
	if len(images) < 3 || slices.ContainsFunc(images, func(s string) bool { return s != images[0] }) {
		t.Errorf("dnscache containers use different images: %v", images)
	}
	if !strings.Contains(images[0], ":") || strings.HasSuffix(images[0], ":latest") {
		t.Errorf("image %s: want a pinned tag", images[0])
	}
}

// goModVersion returns go.mod's language version as "X.Y".
func goModVersion(t *testing.T, root string) string {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(root, "go.mod"))
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`(?m)^go (\d+\.\d+)(\.\d+)?\s*$`).FindStringSubmatch(string(data))
	if m == nil {
		t.Fatal("go.mod has no go directive")
	}
	return m[1]
}

// copyArgs returns a COPY's sources and destination, flags dropped.
func copyArgs(t *testing.T, in instruction) ([]string, string) {
	t.Helper()
	var f []string
	for _, a := range strings.Fields(in.Args) {
		if !strings.HasPrefix(a, "--") {
			f = append(f, a)
		}
	}
	if len(f) < 2 {
		t.Fatalf("line %d: COPY %s: want sources and a destination", in.Line, in.Args)
	}
	return f[:len(f)-1], f[len(f)-1]
}
