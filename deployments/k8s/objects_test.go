package k8s

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	policyv1 "k8s.io/api/policy/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	sigsjson "sigs.k8s.io/json"
	"sigs.k8s.io/kustomize/api/krusty"
	"sigs.k8s.io/kustomize/kyaml/filesys"
	"sigs.k8s.io/yaml"
)

// objects is one set of manifests decoded into the Kubernetes API types.
type objects struct {
	namespaces  []corev1.Namespace
	deployments []appsv1.Deployment
	services    []corev1.Service
	configMaps  []corev1.ConfigMap
	secrets     []corev1.Secret
	pdbs        []policyv1.PodDisruptionBudget
	hpas        []autoscalingv2.HorizontalPodAutoscaler
	netpols     []networkingv1.NetworkPolicy
}

// decodeObjects decodes every YAML document of data STRICTLY into the API
// type its apiVersion and kind name: an unknown or misspelt field, a
// duplicate field or a kind this deployment does not use is an error.
func decodeObjects(data []byte) (objects, error) {
	var o objects
	r := utilyaml.NewYAMLReader(bufio.NewReader(bytes.NewReader(data)))
	for i := 0; ; i++ {
		doc, err := r.Read()
		if errors.Is(err, io.EOF) {
			return o, nil
		}
		if err != nil {
			return o, fmt.Errorf("document %d: %w", i, err)
		}
		var tm metav1.TypeMeta
		if err := yaml.Unmarshal(doc, &tm); err != nil {
			return o, fmt.Errorf("document %d: %w", i, err)
		}
		if tm.APIVersion == "" && tm.Kind == "" {
			if isEmptyDocument(doc) {
				continue // comments only
			}
			return o, fmt.Errorf("document %d: no apiVersion and kind", i)
		}
		if err := o.add(tm, doc); err != nil {
			return o, fmt.Errorf("document %d (%s %s): %w", i, tm.APIVersion, tm.Kind, err)
		}
	}
}

func isEmptyDocument(doc []byte) bool {
	var v any
	return yaml.Unmarshal(doc, &v) == nil && v == nil
}

func (o *objects) add(tm metav1.TypeMeta, doc []byte) error {
	switch tm.APIVersion + " " + tm.Kind {
	case "v1 Namespace":
		return decodeInto(doc, &o.namespaces)
	case "apps/v1 Deployment":
		return decodeInto(doc, &o.deployments)
	case "v1 Service":
		return decodeInto(doc, &o.services)
	case "v1 ConfigMap":
		return decodeInto(doc, &o.configMaps)
	case "v1 Secret":
		return decodeInto(doc, &o.secrets)
	case "policy/v1 PodDisruptionBudget":
		return decodeInto(doc, &o.pdbs)
	case "autoscaling/v2 HorizontalPodAutoscaler":
		return decodeInto(doc, &o.hpas)
	case "networking.k8s.io/v1 NetworkPolicy":
		return decodeInto(doc, &o.netpols)
	default:
		return errors.New("not a kind this deployment uses")
	}
}

func decodeInto[T any](doc []byte, list *[]T) error {
	var v T
	if err := unmarshalStrict(doc, &v); err != nil {
		return err
	}
	*list = append(*list, v)
	return nil
}

// unmarshalStrict decodes YAML as the API server's strict field validation
// does: a duplicate key, an unknown field, or a known field spelt with other
// capitals (newtag for newTag) is an error. yaml.UnmarshalStrict alone lets
// the last through, because encoding/json matches names case-insensitively.
func unmarshalStrict(doc []byte, v any) error {
	j, err := yaml.YAMLToJSONStrict(doc)
	if err != nil {
		return err
	}
	strictErrs, err := sigsjson.UnmarshalStrict(j, v)
	if err != nil {
		return err
	}
	return errors.Join(strictErrs...)
}

// deepCopy lets a test break a copy without touching the original.
func (o objects) deepCopy() objects {
	var c objects
	for _, v := range o.namespaces {
		c.namespaces = append(c.namespaces, *v.DeepCopy())
	}
	for _, v := range o.deployments {
		c.deployments = append(c.deployments, *v.DeepCopy())
	}
	for _, v := range o.services {
		c.services = append(c.services, *v.DeepCopy())
	}
	for _, v := range o.configMaps {
		c.configMaps = append(c.configMaps, *v.DeepCopy())
	}
	for _, v := range o.secrets {
		c.secrets = append(c.secrets, *v.DeepCopy())
	}
	for _, v := range o.pdbs {
		c.pdbs = append(c.pdbs, *v.DeepCopy())
	}
	for _, v := range o.hpas {
		c.hpas = append(c.hpas, *v.DeepCopy())
	}
	for _, v := range o.netpols {
		c.netpols = append(c.netpols, *v.DeepCopy())
	}
	return c
}

func (o objects) deployment(name string) (*appsv1.Deployment, bool) {
	for i := range o.deployments {
		if o.deployments[i].Name == name {
			return &o.deployments[i], true
		}
	}
	return nil, false
}

func (o objects) configMap(namespace, name string) (*corev1.ConfigMap, bool) {
	for i := range o.configMaps {
		if o.configMaps[i].Namespace == namespace && o.configMaps[i].Name == name {
			return &o.configMaps[i], true
		}
	}
	return nil, false
}

// render builds a kustomization directory (relative to this package) the
// way `kubectl apply -k` would, and decodes the result strictly.
func render(t *testing.T, dir string) objects {
	t.Helper()
	k := krusty.MakeKustomizer(krusty.MakeDefaultOptions())
	abs, err := filepath.Abs(dir)
	if err != nil {
		t.Fatal(err)
	}
	m, err := k.Run(filesys.MakeFsOnDisk(), abs)
	if err != nil {
		t.Fatalf("kustomize build %s: %v", dir, err)
	}
	out, err := m.AsYaml()
	if err != nil {
		t.Fatalf("kustomize build %s: %v", dir, err)
	}
	o, err := decodeObjects(out)
	if err != nil {
		t.Fatalf("kustomize build %s: %v", dir, err)
	}
	return o
}
