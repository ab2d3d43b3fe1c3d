package unixsock

import (
	"context"
	"testing"

	"github.com/coredns/coredns/plugin/metadata"
	"github.com/coredns/coredns/request"
)

// TestMetadataPeer: the labels unixsock publishes for a peer whose SO_PEERCRED was read, for one
// whose credentials are unknown (the read failed, or not Linux), and for a query that did not
// come over the socket.
func TestMetadataPeer(t *testing.T) {
	u := New("/run/x.sock")
	labels := []string{"unixsock/pid", "unixsock/uid", "unixsock/gid", "unixsock/path"}
	for _, tc := range []struct {
		name string
		peer *peer
		want []string // per label; "" = unset
	}{
		{"known", &peer{pid: 42, uid: 1000, gid: 100, path: "/run/x.sock"}, []string{"42", "1000", "100", "/run/x.sock"}},
		{"other pid namespace", &peer{pid: 0, uid: 0, gid: 0, path: "/run/x.sock"}, []string{"0", "0", "0", "/run/x.sock"}},
		// Unknown credentials must not read as root.
		{"unknown", &peer{pid: -1, path: "/run/x.sock"}, []string{"", "", "", "/run/x.sock"}},
		{"not the socket", nil, []string{"", "", "", ""}},
	} {
		ctx := metadata.ContextWithMetadata(context.Background())
		if tc.peer != nil {
			ctx = context.WithValue(ctx, peerKey{}, tc.peer)
		}
		ctx = u.Metadata(ctx, request.Request{})
		for i, l := range labels {
			got := ""
			if f := metadata.ValueFunc(ctx, l); f != nil {
				got = f()
				if got == "" {
					t.Errorf("%s: %s set to the empty string", tc.name, l)
				}
			}
			if got != tc.want[i] {
				t.Errorf("%s: %s = %q, want %q", tc.name, l, got, tc.want[i])
			}
		}
	}
}
