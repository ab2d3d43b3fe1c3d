package k8s

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/dnscache/dnscache/test/kit"
	"github.com/dnscache/dnscache/test/lab"
)

// activeRacetls is the racetls stanza in use in corefile.example and the ConfigMaps: public
// resolvers over DNS over TLS.
var activeRacetls = regexp.MustCompile(`(?m)^[ \t]*racetls \. tls://[^\n]*\{\n(?:[ \t]+[^#}\s][^\n]*\n)*[ \t]*\}\n`)

// resolvConfVariant turns a Corefile of the shipped shape into its other variant: the active
// racetls stanza removed, the commented-out `racetls . /etc/resolv.conf` stanza below it
// uncommented, and /etc/resolv.conf replaced by resolvConf. Each step must apply exactly once.
func resolvConfVariant(t *testing.T, corefile, resolvConf string) string {
	t.Helper()
	if n := len(activeRacetls.FindAllString(corefile, -1)); n != 1 {
		t.Fatalf("Corefile holds %d active racetls stanzas to public resolvers, want 1:\n%s", n, corefile)
	}
	corefile = activeRacetls.ReplaceAllLiteralString(corefile, "")
	lines := strings.SplitAfter(corefile, "\n")
	found, in := 0, false
	for i, line := range lines {
		s := strings.TrimSpace(line)
		if s == "#racetls . /etc/resolv.conf {" {
			found++
			in = true
		}
		if !in {
			continue
		}
		lines[i] = strings.Replace(line, "#", "", 1)
		if s == "#}" {
			in = false
		}
	}
	if found != 1 || in {
		t.Fatalf("Corefile holds %d commented-out `racetls . /etc/resolv.conf` stanzas (unterminated: %v), want 1:\n%s", found, in, corefile)
	}
	return strings.Replace(strings.Join(lines, ""), "racetls . /etc/resolv.conf {", "racetls . "+resolvConf+" {", 1)
}

// TestResolvConfVariant starts the second variant of corefile.example and of both ConfigMaps,
// `racetls . /etc/resolv.conf` (the node's resolvers, raced), with a resolv.conf that lists two
// lab upstreams serving plain DNS on port 53, and runs the checks of TestConfigMapCorefiles:
// external names are answered, by the file's nameservers.
func TestResolvConfVariant(t *testing.T) {
	ups := []*lab.Upstream{lab.StartPort53(t), lab.StartPort53(t)}
	resolvConf := filepath.Join(t.TempDir(), "resolv.conf")
	var body strings.Builder
	body.WriteString("search svc.cluster.local cluster.local\n")
	for _, u := range ups {
		fmt.Fprintf(&body, "nameserver %s\n", strings.TrimSuffix(u.UDPAddr(), ":53"))
	}
	body.WriteString("options ndots:5\n")
	if err := os.WriteFile(resolvConf, []byte(body.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	asked := func() int64 {
		var n int64
		for _, u := range ups {
			n += u.Count("example.org.")
		}
		return n
	}
	check := func(t *testing.T, p *ports, corefile string, socket bool) {
		if strings.Contains(corefile, "tls://") {
			t.Fatalf("the variant still names DoT upstreams:\n%s", corefile)
		}
		before := asked()
		p.s.Run(t, corefile)
		checkRunning(t, p, socket)
		if asked() == before {
			t.Error("example.org was answered, but not by the nameservers of the resolv.conf")
		}
	}

	// Not parallel: the environment is the process's.
	t.Run("corefile.example", func(t *testing.T) {
		p := newPorts(t)
		p.setenv(t)
		data, err := os.ReadFile(filepath.Join(kit.RepoRoot(t), "corefile.example"))
		if err != nil {
			t.Fatal(err)
		}
		check(t, p, resolvConfVariant(t, string(data), resolvConf), true)
	})
	for _, dir := range []string{"kube-dns", "node-cache"} {
		t.Run(dir, func(t *testing.T) {
			t.Parallel()
			p := newPorts(t)
			corefile := rewriteConfigMap(t, configMapText(t, dir), p)
			check(t, p, resolvConfVariant(t, corefile, resolvConf), strings.Contains(corefile, "unixsock"))
		})
	}
}

// TestResolvConfVariantUnused: the shipped Corefiles run the public resolvers' stanza, and the
// variant is a comment that CoreDNS does not read.
func TestResolvConfVariantUnused(t *testing.T) {
	texts := map[string]string{"kube-dns": configMapText(t, "kube-dns"), "node-cache": configMapText(t, "node-cache")}
	data, err := os.ReadFile(filepath.Join(kit.RepoRoot(t), "corefile.example"))
	if err != nil {
		t.Fatal(err)
	}
	texts["corefile.example"] = string(data)
	for name, text := range texts {
		if n := strings.Count(normalize(text), "racetls . "); n != 1 || !activeRacetls.MatchString(normalize(text)) {
			t.Errorf("%s: %d racetls stanzas read by CoreDNS, want the one to public resolvers", name, n)
		}
		resolvConfVariant(t, text, "/etc/resolv.conf") // the variant is there, and complete
	}
}
