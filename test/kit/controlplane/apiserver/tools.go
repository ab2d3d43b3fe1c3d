//go:build tools

// Package apiserver pins the Kubernetes release that the control-plane fixture builds
// kube-apiserver, kubectl and kubeadm from. It holds no code: the fixture runs
// `go build k8s.io/kubernetes/cmd/kube-apiserver` (and cmd/kubectl, cmd/kubeadm) in this module.
package apiserver

import (
	_ "k8s.io/kubernetes/cmd/kube-apiserver"
	_ "k8s.io/kubernetes/cmd/kubeadm"
	_ "k8s.io/kubernetes/cmd/kubectl"
)
