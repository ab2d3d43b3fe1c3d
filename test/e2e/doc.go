// Package e2e holds the end-to-end tests: the built bin/coredns, run by test/kit against
// lab upstreams and a real unbound, queried by real clients (kdig, dig, getent, curl, python3).
package e2e
