package gen

import (
	"strings"
	"testing"
)

func TestParse(t *testing.T) {
	tests := []struct {
		in      string
		want    []Plugin
		wantErr string
	}{
		{in: "# c\n\nlog:log\nx:example.com/x/y\non:github.com/coredns/caddy/onevent\n", want: []Plugin{
			{"log", "github.com/coredns/coredns/plugin/log", 3},
			{"x", "example.com/x/y", 4},
			{"on", "github.com/coredns/caddy/onevent", 5},
		}},
		{in: "log:log\nlog:log\n", wantErr: "line 2: duplicate plugin \"log\""},
		{in: "log\n", wantErr: "line 1: want name:package"},
		{in: "a b:c\n", wantErr: "line 1: want name:package"},
	}
	for _, tc := range tests {
		got, err := Parse([]byte(tc.in))
		if tc.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Errorf("Parse(%q) err = %v, want %q", tc.in, err, tc.wantErr)
			}
			continue
		}
		if err != nil {
			t.Fatalf("Parse(%q): %v", tc.in, err)
		}
		if len(got) != len(tc.want) {
			t.Fatalf("Parse(%q) = %v, want %v", tc.in, got, tc.want)
		}
		for i := range got {
			if got[i] != tc.want[i] {
				t.Errorf("Parse(%q)[%d] = %v, want %v", tc.in, i, got[i], tc.want[i])
			}
		}
	}
}

func TestGenerate(t *testing.T) {
	files, err := Generate([]byte("log:log\nmine:example.com/m\n"))
	if err != nil {
		t.Fatal(err)
	}
	d := string(files["zdirectives.go"])
	if !strings.Contains(d, "\"log\",\n\t\"mine\",") || !strings.Contains(d, "dnsserver.SetDirectives") {
		t.Errorf("zdirectives.go:\n%s", d)
	}
	p := string(files["zplugin.go"])
	if !strings.Contains(p, `_ "github.com/coredns/coredns/plugin/log"`) || !strings.Contains(p, `_ "example.com/m"`) {
		t.Errorf("zplugin.go:\n%s", p)
	}
}
