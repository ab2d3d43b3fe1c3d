package racetls

import (
	"context"
	"encoding/binary"
	"fmt"
	"testing"
	"time"

	"github.com/dnscache/dnscache/test/lab"
	"github.com/miekg/dns"
)

// TestStreamBatchToNSD: a batch of pipelined queries on one DoT connection is answered in
// full by NSD, which answers only the first query of a TLS record until the socket is
// readable again: each query goes in a record of its own. Plain TCP is held to the same.
func TestStreamBatchToNSD(t *testing.T) {
	nsd, ca, _ := startNSD(t)
	for _, tr := range []*streamTransport{
		{addr: nsd.TLSAddr(), tlsConfig: ca.ClientTLS(lab.DefaultServerName), timeout: 2 * time.Second},
		{addr: nsd.Addr(), timeout: 2 * time.Second},
	} {
		t.Run(tr.scheme(), func(t *testing.T) {
			s, err := tr.dial(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			defer s.close()
			const n = 5
			var batch []byte
			for i := range n {
				m := new(dns.Msg)
				m.SetQuestion(fmt.Sprintf("q%d.ql.test.", i), dns.TypeA)
				m.Id = uint16(i)
				b, err := m.Pack()
				if err != nil {
					t.Fatal(err)
				}
				batch = binary.BigEndian.AppendUint16(batch, uint16(len(b)))
				batch = append(batch, b...)
			}
			if err := s.send(batch); err != nil {
				t.Fatal(err)
			}
			// Not a timing threshold: without a reply the read would wait forever.
			s.(*streamSession).c.SetReadDeadline(time.Now().Add(5 * time.Second))
			seen := map[uint16]bool{}
			for len(seen) < n {
				r, err := s.recv()
				if err != nil {
					t.Fatalf("%d of %d replies, then %v", len(seen), n, err)
				}
				seen[binary.BigEndian.Uint16(r.msg)] = true
			}
		})
	}
}
