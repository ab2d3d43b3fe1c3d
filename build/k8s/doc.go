// Package k8s holds dnscache's Kubernetes manifests (kube-dns drop-in, node cache DaemonSet,
// example app) and the tests that keep them, the Corefiles, build/Dockerfile and the Grafana
// dashboard honest: strict decoding into k8s.io/api types, content checks, and runs of the
// real bin/coredns on every Corefile. It has no Go code of its own.
package k8s
