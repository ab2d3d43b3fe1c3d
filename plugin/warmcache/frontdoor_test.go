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
