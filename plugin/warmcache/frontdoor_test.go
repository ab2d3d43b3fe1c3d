package warmcache

import "testing"

func TestSharedAddress(t *testing.T) {
	c := New()
	c.fd.addrs = []string{":1053"}
	tests := []struct {
		blocks [][]string
		want   bool
	}{
		{[][]string{{".:1053"}}, false},
		{[][]string{{"dns://.:1053"}, {"example.org:1054"}}, false},
		{[][]string{{".:1053"}, {".:1053"}}, true}, // a view: same keys
		{[][]string{{".:1053"}, {"example.org:1053"}}, true},
		{[][]string{{".:1053"}, {"tls://.:1053"}}, false},
	}
	for _, tc := range tests {
		var bs []caddyBlock
		for _, k := range tc.blocks {
			bs = append(bs, caddyBlock{keys: k})
		}
		if got := sharedAddress(c, bs) != ""; got != tc.want {
			t.Errorf("%v: shared %v, want %v", tc.blocks, got, tc.want)
		}
	}
}

func TestRoundRobinPolicy(t *testing.T) {
	c := New()
	c.keys = []string{"dns://.:1053"}
	for _, tc := range []struct {
		lb   []string
		want bool
	}{
		{nil, true},
		{[]string{"loadbalance"}, true},
		{[]string{"loadbalance", "round_robin"}, true},
		{[]string{"loadbalance", "weighted", "/etc/w"}, false},
		{[]string{"loadbalance", "round_robin", "{", "prefer", "10.0.0.0/8", "}"}, false},
	} {
		if got := roundRobin(c, []caddyBlock{{keys: []string{".:1053"}, lb: tc.lb}, {keys: []string{"example.org:53"}, lb: []string{"loadbalance", "weighted", "x"}}}); got != tc.want {
			t.Errorf("%v: %v, want %v", tc.lb, got, tc.want)
		}
	}
}

func TestNormKeys(t *testing.T) {
	for _, tc := range [][2][]string{
		{{"dns://example.org.:53"}, {"example.org"}},
		{{"dns://example.org.:1053", "dns://.:1053"}, {"Example.ORG:1053", ".:1053"}},
		{{"dns://.:53"}, {"."}},
	} {
		if a, b := normKeys(tc[0]), normKeys(tc[1]); a != b {
			t.Errorf("%v and %v: %q != %q", tc[0], tc[1], a, b)
		}
	}
	if normKeys([]string{"tls://.:853"}) == normKeys([]string{".:853"}) {
		t.Error("tls:// and dns:// keys compare equal")
	}
}
