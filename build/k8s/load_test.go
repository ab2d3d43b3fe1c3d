package k8s

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	storagev1 "k8s.io/api/storage/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	kjson "sigs.k8s.io/json"
	"sigs.k8s.io/yaml"
)

// kustomization is the part of kustomize's Kustomization (kustomize.config.k8s.io/v1beta1)
// that the manifests use; any other field fails the strict decode, which keeps the files
// within what this test understands.
type kustomization struct {
	metav1.TypeMeta `json:",inline"`
	Resources       []string    `json:"resources"`
	Images          []kustImage `json:"images"`
}

// kustImage is one entry of a kustomization's images: every container image named Name is
// replaced by NewName:NewTag (or NewName@Digest).
type kustImage struct {
	Name    string `json:"name"`
	NewName string `json:"newName"`
	NewTag  string `json:"newTag"`
	Digest  string `json:"digest"`
}

// newObject returns an empty typed object for apiVersion and kind, or an error for a kind
// the manifests are not expected to hold.
func newObject(tm metav1.TypeMeta) (any, error) {
	switch tm.APIVersion + " " + tm.Kind {
	case "v1 ServiceAccount":
		return &corev1.ServiceAccount{}, nil
	case "v1 Namespace":
		return &corev1.Namespace{}, nil
	case "storage.k8s.io/v1 CSIDriver":
		return &storagev1.CSIDriver{}, nil
	case "v1 ConfigMap":
		return &corev1.ConfigMap{}, nil
	case "v1 Service":
		return &corev1.Service{}, nil
	case "apps/v1 Deployment":
		return &appsv1.Deployment{}, nil
	case "apps/v1 DaemonSet":
		return &appsv1.DaemonSet{}, nil
	case "rbac.authorization.k8s.io/v1 ClusterRole":
		return &rbacv1.ClusterRole{}, nil
	case "rbac.authorization.k8s.io/v1 ClusterRoleBinding":
		return &rbacv1.ClusterRoleBinding{}, nil
	case "policy/v1 PodDisruptionBudget":
		return &policyv1.PodDisruptionBudget{}, nil
	case "kustomize.config.k8s.io/v1beta1 Kustomization":
		return &kustomization{}, nil
	}
	return nil, fmt.Errorf("unknown apiVersion/kind %q/%q", tm.APIVersion, tm.Kind)
}

// decodeStrict decodes one YAML document into obj the way the API server's strict field
// validation does: YAMLToJSONStrict rejects duplicate keys, and sigs.k8s.io/json (the API
// server's decoder) matches field names case-sensitively and rejects unknown and duplicate
// fields. encoding/json with DisallowUnknownFields is not enough: it matches names without
// regard to case, so "clusterIp" would pass for "clusterIP".
func decodeStrict(doc []byte, obj any) error {
	js, err := yaml.YAMLToJSONStrict(doc)
	if err != nil {
		return err
	}
	strict, err := kjson.UnmarshalStrict(js, obj)
	if err != nil {
		return err
	}
	return errors.Join(strict...)
}

// object is one decoded document of a manifest file.
type object struct {
	File string // relative to build/k8s
	Kind string
	Obj  any
}

// splitDocs splits a multi-document YAML stream, dropping documents that hold only comments.
func splitDocs(data []byte) ([][]byte, error) {
	r := utilyaml.NewYAMLReader(bufio.NewReader(bytes.NewReader(data)))
	var docs [][]byte
	for {
		doc, err := r.Read()
		if err == io.EOF {
			return docs, nil
		}
		if err != nil {
			return nil, err
		}
		var v any
		if err := yaml.Unmarshal(doc, &v); err != nil {
			return nil, err
		}
		if v != nil {
			docs = append(docs, doc)
		}
	}
}

// decodeFile strictly decodes every document of one manifest file.
func decodeFile(path, rel string) ([]object, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	docs, err := splitDocs(data)
	if err != nil {
		return nil, fmt.Errorf("%s: %v", rel, err)
	}
	if len(docs) == 0 {
		return nil, fmt.Errorf("%s: no document", rel)
	}
	var objs []object
	for i, doc := range docs {
		var tm metav1.TypeMeta
		if err := yaml.Unmarshal(doc, &tm); err != nil {
			return nil, fmt.Errorf("%s document %d: %v", rel, i, err)
		}
		obj, err := newObject(tm)
		if err != nil {
			return nil, fmt.Errorf("%s document %d: %v", rel, i, err)
		}
		if err := decodeStrict(doc, obj); err != nil {
			return nil, fmt.Errorf("%s document %d (%s): %v", rel, i, tm.Kind, err)
		}
		objs = append(objs, object{File: rel, Kind: tm.Kind, Obj: obj})
	}
	return objs, nil
}

// manifestFiles lists every YAML file under build/k8s, relative to it.
func manifestFiles(t *testing.T) []string {
	t.Helper()
	var files []string
	err := filepath.WalkDir(".", func(p string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if !d.IsDir() && (strings.HasSuffix(p, ".yaml") || strings.HasSuffix(p, ".yml")) {
			files = append(files, p)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	slices.Sort(files)
	return files
}

// bundle is one install unit: a directory with a kustomization and the objects it lists.
type bundle struct {
	Dir  string
	Objs []object
}

// loadBundle decodes dir's kustomization and every resource it lists.
func loadBundle(t *testing.T, dir string) *bundle {
	t.Helper()
	objs, err := decodeFile(filepath.Join(dir, "kustomization.yaml"), filepath.Join(dir, "kustomization.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	k := objs[0].Obj.(*kustomization)
	b := &bundle{Dir: dir}
	for _, r := range k.Resources {
		rel := filepath.Join(dir, r)
		o, err := decodeFile(rel, rel)
		if err != nil {
			t.Fatal(err)
		}
		b.Objs = append(b.Objs, o...)
	}
	return b
}

// all returns the bundle's objects of type T.
func all[T any](b *bundle) []T {
	var out []T
	for _, o := range b.Objs {
		if v, ok := o.Obj.(T); ok {
			out = append(out, v)
		}
	}
	return out
}

// one returns the bundle's only object of type T, failing the test when there is not exactly one.
func one[T any](t *testing.T, b *bundle) T {
	t.Helper()
	v := all[T](b)
	if len(v) != 1 {
		var zero T
		t.Fatalf("%s: want exactly one %T, have %d", b.Dir, zero, len(v))
	}
	return v[0]
}
