package compose

// exampleTest is a zone with in-zone and out-of-zone CNAMEs; other.test serves the out-of-zone
// target, so that file chases it through pkg/upstream (a re-entry into the server's chain).
const exampleTest = `$ORIGIN example.test.
$TTL 6
@       IN SOA ns.example.test. hostmaster.example.test. 1 7200 3600 1209600 6
@       IN NS  ns
ns      IN A   192.0.2.53
www     IN A   192.0.2.1
www     IN AAAA 2001:db8::1
www     IN MX  10 mail
mail    IN A   192.0.2.25
alias   IN CNAME www
chain   IN CNAME alias
out     IN CNAME www.other.test.
ext     IN CNAME www.example.com.
compose-marker-1 IN NAPTR 100 10 "S" "SIP+D2U" "" _sip._udp.example.test.
compose-marker-2 IN NAPTR 100 10 "S" "SIP+D2U" "" _sip._udp.example.test.
compose-marker-3 IN NAPTR 100 10 "S" "SIP+D2U" "" _sip._udp.example.test.
`

const otherTest = `$ORIGIN other.test.
$TTL 6
@       IN SOA ns.other.test. hostmaster.other.test. 1 7200 3600 1209600 6
@       IN NS  ns.example.test.
www     IN A   192.0.2.2
www     IN AAAA 2001:db8::2
`

// otherBlocks serve other.test from a zone file and everything else from the lab, on the port
// of the case's main block.
const otherBlocks = `other.test:{{.Port}} {
    {{.Common}}
    {{.Cache}}
    file {{.Dir}}/other.test.db
}
.:{{.Port}} {
    {{.Common}}
    {{.Cache}}
    {{.Forward}}
}
`

var zoneFiles = map[string]string{"example.test.db": exampleTest, "other.test.db": otherTest}

const hostsFile = `192.0.2.10 h1.hosts.test h1
2001:db8::10 h1.hosts.test
192.0.2.11 h2.hosts.test
`

var cases = []Case{
	{
		Name:      "forward/baseline",
		FrontDoor: true,
		Queries:   []string{"www.example.com A", "WwW.ExAmPlE.CoM AAAA", "cname2-a.example.com A", "nx-a.example.com A", "nodata-a.example.com AAAA", "v4-a.example.com A +noedns", "www.example.com A +do +cd", "servfail-a.example.com A", "big-a.example.com A +noedns", "www.example.com TXT CH"},
	},
	{
		Name:    "file/cname-in-and-out-of-zone",
		Expect:  map[string]string{"out.example.test A": "www.other.test.\t6\tIN\tA\t192.0.2.2", "alias.example.test A": "www.example.test.\t6\tIN\tA\t192.0.2.1"},
		Zone:    "example.test",
		Plugins: "file {{.Dir}}/example.test.db",
		Blocks:  otherBlocks,
		Files:   zoneFiles,
		Queries: []string{"www.example.test A", "alias.example.test A", "chain.example.test AAAA", "out.example.test A", "ext.example.test A", "www.example.test MX", "nx.example.test A", "www.example.test TXT"},
	},
	{
		Name:      "rewrite/name-exact",
		Expect:    map[string]string{"foo.example.com A": ";foo.example.com.\tIN\t A"},
		Plugins:   "rewrite name exact foo.example.com. www.example.com.",
		Queries:   []string{"foo.example.com A", "foo.example.com AAAA", "www.example.com A"},
		Refreshes: 2,
	},
	{
		// Issue 11, seen 1: the reply must carry the client's question, not the rewritten one.
		Name:    "rewrite/name-exact-file",
		Expect:  map[string]string{"foo.example.test A": ";foo.example.test.\tIN\t A"},
		Zone:    "example.test",
		Plugins: "rewrite name exact foo.example.test. www.example.test.\nfile {{.Dir}}/example.test.db",
		Blocks:  otherBlocks,
		Files:   zoneFiles,
		Queries: []string{"foo.example.test A", "foo.example.test AAAA"},
	},
	{
		Name:    "rewrite/name-regex-answer-auto",
		Expect:  map[string]string{"www.rx.test A": "www.rx.test.\t6\tIN\tA"},
		Plugins: `rewrite name regex (.*)\.rx\.test\. {1}.example.com. answer auto`,
		Queries: []string{"www.rx.test A", "cname2-b.rx.test A"},
	},
	{
		Name:    "rewrite/name-suffix-answer-auto",
		Expect:  map[string]string{"a.sfx.test A": "a.sfx.test.\t6\tIN\tA"},
		Plugins: "rewrite name suffix .sfx.test. .example.com. answer auto",
		Queries: []string{"a.sfx.test A", "cname1-c.sfx.test AAAA"},
	},
	{
		Name:    "rewrite/type",
		Plugins: "rewrite type TXT A",
		Queries: []string{"www.example.com TXT"},
	},
	{
		Name:    "rewrite/class",
		Expect:  map[string]string{"www.example.com A CH": "www.example.com.\t6\tIN\tA"},
		Plugins: "rewrite class CH IN",
		Queries: []string{"www.example.com A CH", "www.example.com A"},
	},
	{
		Name:    "rewrite/ttl",
		Expect:  map[string]string{"www.example.com A": "www.example.com.\t3\tIN\tA"},
		Plugins: "rewrite ttl exact www.example.com. 3",
		Queries: []string{"www.example.com A", "other.example.com A"},
	},
	{
		Name:    "rewrite/edns0",
		Plugins: "rewrite edns0 local set 0xffee abcd",
		Queries: []string{"www.example.com A", "www.example.com AAAA +noedns"},
	},
	{
		Name:    "rewrite/cname",
		Expect:  map[string]string{"cname1-d.example.com A": "CNAME\twww.example.com."},
		Plugins: "rewrite cname exact d.example.com. www.example.com.",
		Queries: []string{"cname1-d.example.com A"},
	},
	{
		Name:    "dns64/ipv6-client",
		Expect:  map[string]string{"v4-a.example.com AAAA": "64:ff9b::"},
		Plugins: "dns64",
		IPv6:    true,
		Queries: []string{"v4-a.example.com AAAA", "www.example.com AAAA", "v4-a.example.com A"},
	},
	{
		Name:    "dns64/translate-all",
		Expect:  map[string]string{"www.example.com AAAA": "64:ff9b::"},
		Plugins: "dns64 {\n prefix 64:ff9b::/96\n translate_all\n allow_ipv4\n}",
		Queries: []string{"www.example.com AAAA", "v4-b.example.com AAAA"},
	},
	{
		Name:     "loadbalance/round-robin",
		Plugins:  "loadbalance",
		Shuffled: true,
		Queries:  []string{"big-a.example.com A +repeat=4", "big-a.example.com AAAA +repeat=4", "big-b.example.com A +noedns +repeat=2"},
	},
	{
		Name:    "header/flags",
		Expect:  map[string]string{"www.example.com A": "flags: qr aa rd;"},
		Plugins: "header {\n response set aa\n response clear ra\n}",
		Queries: []string{"www.example.com A", "nx-b.example.com A"},
	},
	{
		Name:    "minimal/authority-stripped",
		Expect:  map[string]string{"www.example.test A": "AUTHORITY: 0, ADDITIONAL: 1"},
		Zone:    "example.test",
		Plugins: "minimal\nfile {{.Dir}}/example.test.db",
		Blocks:  otherBlocks,
		Files:   zoneFiles,
		Queries: []string{"www.example.test A", "www.example.test MX", "nx.example.test A"},
	},
	{
		Name:    "any/hinfo",
		Expect:  map[string]string{"www.example.com ANY": "RFC 8482"},
		Plugins: "any",
		Queries: []string{"www.example.com ANY", "www.example.com A"},
	},
	{
		Name:    "acl/block-filter",
		Expect:  map[string]string{"www.example.com AAAA": "status: REFUSED"},
		Plugins: "acl {\n block type AAAA net 127.0.0.0/8\n filter type MX\n allow\n}",
		Queries: []string{"www.example.com A", "www.example.com AAAA", "www.example.com MX"},
	},
	{
		Name:    "view/by-name",
		Expect:  map[string]string{"v1.example.com A": "192.0.2.99"},
		Plugins: "view special {\n expr name() matches 'v1[.]example[.]com[.]$'\n}\ntemplate IN A example.com {\n match ^.*v1[.]example[.]com[.]$\n answer \"{{\"{{\"}} .Name }} 6 IN A 192.0.2.99\"\n fallthrough\n}",
		Blocks:  ".:{{.Port}} {\n    {{.Common}}\n    {{.Cache}}\n    {{.Forward}}\n}\n",
		Marker:  "compose-marker-%d.v1.example.com.",
		Queries: []string{"v1.example.com A", "x.v1.example.com AAAA"},
	},
	{
		Name:    "metadata/log-fields",
		Plugins: "metadata\nlog . \"{{.LogFmt}} uid={/unixsock/uid} path={/unixsock/path}\"",
		Queries: []string{"www.example.com A", "nx-c.example.com A"},
	},
	{
		Name:    "log/common",
		Plugins: "log . \"{{.LogFmt}}\"",
		Queries: []string{"www.example.com A", "nx-d.example.com A", "cname1-e.example.com AAAA +do"},
	},
	{
		Name:    "dnstap/full",
		Plugins: "dnstap {{.Dnstap}} full",
		Queries: []string{"www.example.com A", "nx-e.example.com AAAA", "cname2-f.example.com A +noedns"},
	},
	{
		Name:    "errors/servfail",
		Plugins: "errors\nlog . \"{{.LogFmt}}\" {\n class denial error\n}",
		Marker:  "nx-compose-marker-%d.example.com.", // logged: a denial
		Queries: []string{"servfail-b.example.com A", "www.example.com A", "nx-f.example.com A"},
	},
	{
		Name:    "template/answer-and-upstream",
		Expect:  map[string]string{"x.up.test A": "www.example.com.\t6\tIN\tA", "a.tmpl.test A": "192.0.2.7"},
		Plugins: "template IN A tmpl.test {\n match ^a[.]tmpl[.]test[.]$\n answer \"{{\"{{\"}} .Name }} 6 IN A 192.0.2.7\"\n fallthrough\n}\ntemplate IN A up.test {\n answer \"{{\"{{\"}} .Name }} 6 IN CNAME www.example.com.\"\n}\ntemplate IN ANY nxt.test {\n rcode NXDOMAIN\n authority \"nxt.test. 6 IN SOA ns.nxt.test. h.nxt.test. 1 60 60 60 6\"\n}",
		Queries: []string{"a.tmpl.test A", "x.up.test A", "b.tmpl.test A", "q.nxt.test A"},
	},
	{
		Name:    "hosts/file",
		Expect:  map[string]string{"h1.hosts.test A": "192.0.2.10", "10.2.0.192.in-addr.arpa PTR": "h1.hosts.test."},
		Plugins: "hosts {{.Dir}}/hosts {\n ttl 6\n fallthrough\n}",
		Files:   map[string]string{"hosts": hostsFile},
		Queries: []string{"h1.hosts.test A", "h1.hosts.test AAAA", "h2.hosts.test AAAA", "10.2.0.192.in-addr.arpa PTR", "www.example.com A"},
	},
	{
		Name:     "kubeadm/default-chain",
		Plugins:  "errors\nloadbalance\nlog . \"{{.LogFmt}}\"\ndnstap {{.Dnstap}} full",
		Shuffled: true,
		Queries:  []string{"www.example.com A", "big-c.example.com A +repeat=3", "nx-g.example.com A", "cname1-g.example.com A"},
	},
}

// kubernetes is the kubernetes plugin as kubeadm configures it, on the shared control plane.
const kubernetes = `kubernetes cluster.local in-addr.arpa ip6.arpa {
    kubeconfig {{.Kubeconfig}}
    pods verified
    fallthrough in-addr.arpa ip6.arpa
    ttl 6
}`

func init() {
	cases = append(cases,
		Case{
			Name:    "kubernetes/services-and-pods",
			Expect:  map[string]string{"b.db.apps.svc.cluster.local A": "10.1.0.6", "10-1-0-7.apps.pod.cluster.local A": "10.1.0.7", "10-1-0-99.apps.pod.cluster.local A": "NXDOMAIN", "6.0.1.10.in-addr.arpa PTR": "b.db.apps.svc.cluster.local."},
			Needs:   "kubernetes",
			Plugins: kubernetes,
			Queries: []string{"web.apps.svc.cluster.local A", "db.apps.svc.cluster.local A", "b.db.apps.svc.cluster.local A",
				"_http._tcp.web.apps.svc.cluster.local SRV", "_http._tcp.db.apps.svc.cluster.local SRV", "6.0.1.10.in-addr.arpa PTR",
				"10-1-0-7.apps.pod.cluster.local A", "10-1-0-99.apps.pod.cluster.local A", "nx.apps.svc.cluster.local A", "web.apps.svc.cluster.local AAAA"},
		},
		Case{
			Name:    "kubernetes/externalname",
			Expect:  map[string]string{"ext.apps.svc.cluster.local A": "www.example.com.\t6\tIN\tA"},
			Needs:   "kubernetes",
			Plugins: kubernetes,
			Queries: []string{"ext.apps.svc.cluster.local A", "ext.apps.svc.cluster.local AAAA"},
		},
		Case{
			Name:    "autopath/kubernetes",
			Expect:  map[string]string{"www.example.com.apps.svc.cluster.local A": "www.example.com.\t6\tIN\tA", "web.apps.apps.svc.cluster.local A": "CNAME\tweb.apps.svc.cluster.local."},
			Needs:   "kubernetes",
			Plugins: "autopath @kubernetes\n" + kubernetes,
			Queries: []string{"www.example.com.apps.svc.cluster.local A", "web.apps.apps.svc.cluster.local A", "web.apps.svc.cluster.local A"},
		},
		Case{
			// kubeadm's chain without log: the front door answers its hits.
			Name:      "frontdoor/kubeadm-chain",
			Needs:     "kubernetes",
			Plugins:   "errors\nloadbalance\n" + kubernetes,
			Shuffled:  true,
			FrontDoor: true,
			Queries:   []string{"db.apps.svc.cluster.local A +repeat=4", "ext.apps.svc.cluster.local A", "www.example.com A", "nx.apps.svc.cluster.local A", "big-c.example.com A +repeat=3"},
		},
		Case{
			Name:     "kubeadm/kubernetes-chain",
			Needs:    "kubernetes",
			Plugins:  "errors\nloadbalance\nlog . \"{{.LogFmt}}\"\n" + kubernetes,
			Shuffled: true,
			Queries:  []string{"db.apps.svc.cluster.local A +repeat=4", "ext.apps.svc.cluster.local A", "www.example.com A", "nx.apps.svc.cluster.local A"},
		},
	)
}
