package k8s

import (
	"bytes"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	kustypes "sigs.k8s.io/kustomize/api/types"
)

// helmValues and helmProductionValues are the YAML files here that no
// kustomization uses; TestNATSValues and TestProductionNATSUsesTLS check them.
const (
	helmValues           = "nats/values.yaml"
	helmProductionValues = "nats/values-production.yaml"
)

// jsonPatchOp is one RFC 6902 operation, as kustomize reads a patch file
// whose content is a list.
type jsonPatchOp struct {
	Op    string `json:"op"`
	Path  string `json:"path"`
	From  string `json:"from,omitempty"`
	Value any    `json:"value,omitempty"`
}

// TestManifestFilesDecodeStrictly checks every YAML file on its own, before
// kustomize merges anything: kustomization files decode strictly into
// kustomize's own type, resources and strategic-merge patches into the
// Kubernetes API types, JSON patches into RFC 6902 operations; and no YAML
// file lies around that no kustomization uses (it would never be applied).
func TestManifestFilesDecodeStrictly(t *testing.T) {
	t.Parallel()
	var yamlFiles []string
	err := filepath.WalkDir(".", func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if !d.IsDir() && (strings.HasSuffix(path, ".yaml") || strings.HasSuffix(path, ".yml")) {
			yamlFiles = append(yamlFiles, filepath.ToSlash(path))
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}

	resources := map[string]bool{}
	patches := map[string]bool{}
	used := map[string]bool{helmValues: true, helmProductionValues: true}
	for _, path := range yamlFiles {
		if filepath.Base(path) != "kustomization.yaml" {
			continue
		}
		used[path] = true
		k := readKustomization(t, path)
		dir := filepath.Dir(path)
		for _, r := range k.Resources {
			p := filepath.ToSlash(filepath.Join(dir, r))
			if info, err := os.Stat(p); err != nil {
				t.Errorf("%s: resource %s: %v", path, r, err)
			} else if !info.IsDir() {
				resources[p], used[p] = true, true
			}
		}
		for _, c := range k.Components {
			if _, err := os.Stat(filepath.Join(dir, c, "kustomization.yaml")); err != nil {
				t.Errorf("%s: component %s: %v", path, c, err)
			}
		}
		for _, p := range k.Patches {
			if p.Path == "" {
				t.Errorf("%s: inline patch: keep patches in files, so this test decodes them", path)
				continue
			}
			f := filepath.ToSlash(filepath.Join(dir, p.Path))
			patches[f], used[f] = true, true
		}
	}

	for _, path := range yamlFiles {
		data, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		switch {
		case !used[path]:
			t.Errorf("%s: no kustomization uses it, so it is never applied", path)
		case resources[path]:
			if _, err := decodeObjects(data); err != nil {
				t.Errorf("%s: %v", path, err)
			}
		case patches[path] && isList(data):
			var ops []jsonPatchOp
			if err := unmarshalStrict(data, &ops); err != nil {
				t.Errorf("%s: JSON patch: %v", path, err)
			}
			for i, op := range ops {
				if !slices.Contains([]string{"add", "remove", "replace", "move", "copy", "test"}, op.Op) || !strings.HasPrefix(op.Path, "/") {
					t.Errorf("%s: operation %d: %+v is not an RFC 6902 operation", path, i, op)
				}
			}
		case patches[path]:
			// A strategic-merge patch is a partial object: strict decoding
			// still rejects any field its type does not have.
			if _, err := decodeObjects(data); err != nil {
				t.Errorf("%s: %v", path, err)
			}
		}
	}

	for _, want := range []string{"base/kustomization.yaml", "overlays/dev/kustomization.yaml", "overlays/production/kustomization.yaml"} {
		if !used[want] {
			t.Errorf("%s is missing", want)
		}
	}
}

func readKustomization(t *testing.T, path string) kustypes.Kustomization {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var k kustypes.Kustomization
	if err := unmarshalStrict(data, &k); err != nil {
		t.Errorf("%s: %v", path, err)
	}
	return k
}

// isList reports whether a YAML document's top level is a sequence.
func isList(data []byte) bool {
	for line := range bytes.Lines(data) {
		s := strings.TrimSpace(string(line))
		if s == "" || strings.HasPrefix(s, "#") || s == "---" {
			continue
		}
		return strings.HasPrefix(s, "- ") || s == "-"
	}
	return false
}
