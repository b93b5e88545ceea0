package events

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
)

// The JSON Schemas are the contract; the hot path checks events with Go
// code (Decode, DecodeData, each payload's Validate). These tests hold the
// two together: every golden sample passes both, and no mutation of a
// sample that the schema refuses gets past the decoder.

// decodeAll is what a consumer does with raw: the envelope, then the
// payload into its type.
func decodeAll(raw []byte) error {
	env, err := Decode("", raw)
	if err != nil {
		return err
	}
	v, err := NewPayload(env.Type)
	if err != nil {
		return err
	}
	return env.DecodeData(v)
}

// goldens returns every golden sample by its dataschema: one per version
// of each type.
func goldens(t *testing.T) map[string][]byte {
	t.Helper()
	out, err := goldensForFuzz()
	if err != nil || len(out) == 0 {
		t.Fatalf("golden samples: %v (%d)", err, len(out))
	}
	return out
}

func goldensForFuzz() (map[string][]byte, error) {
	files, err := filepath.Glob("testdata/golden/*.json")
	if err != nil {
		return nil, err
	}
	out := map[string][]byte{}
	for _, f := range files {
		raw, err := os.ReadFile(f)
		if err != nil {
			return nil, err
		}
		var env Envelope
		if err := json.Unmarshal(raw, &env); err != nil {
			return nil, fmt.Errorf("%s: %w", f, err)
		}
		out[env.DataSchema] = raw
	}
	return out, nil
}

func TestGoldenSamplesPassSchemaAndDecoder(t *testing.T) {
	t.Parallel()
	reg := DefaultRegistry()
	samples := goldens(t)
	for uri, typ := range reg.known {
		raw, ok := samples[uri]
		if !ok {
			t.Errorf("no golden sample of %s in testdata/golden", uri)
			continue
		}
		if _, err := reg.Parse(raw); err != nil {
			t.Errorf("%s: schema refuses the golden sample: %v", typ, err)
		}
		if err := decodeAll(raw); err != nil {
			t.Errorf("%s: decoder refuses the golden sample: %v", typ, err)
		}
		subject, _ := Subject(typ, "0193a1c2-7b5e-7c3d-9f00-aaaaaaaaaaaa")
		if _, err := Decode(subject, raw); err != nil {
			t.Errorf("%s on %s: %v", typ, subject, err)
		}
	}
}

func TestSchemaIDsFollowTheirFileNames(t *testing.T) {
	t.Parallel()
	reg := DefaultRegistry()
	if len(dataSchemas) != len(reg.byURI) {
		t.Fatalf("decoder knows %d dataschemas, the registry %d", len(dataSchemas), len(reg.byURI))
	}
	for uri, typ := range reg.known {
		if dataSchemas[uri].typ != typ {
			t.Errorf("schema $id %s (%s): the decoder maps it to %q", uri, typ, dataSchemas[uri].typ)
		}
	}
	for typ, uri := range reg.current {
		if producedSchema[typ] != uri {
			t.Errorf("%s: producers name %s, the registry %s", typ, producedSchema[typ], uri)
		}
	}
	if len(reg.current) != len(routes) {
		t.Errorf("contract.json names a produced version of %d types, there are %d", len(reg.current), len(routes))
	}
}

// mutations returns named variants of doc, each one change away from it:
// every field removed, set to null, to another JSON type, emptied, made too
// long, given a dot or a negative number, and an unknown field added, at
// every level.
func mutations(doc map[string]any) map[string]map[string]any {
	out := map[string]map[string]any{}
	var walk func(path []string, get func(root map[string]any) map[string]any, obj map[string]any)
	walk = func(path []string, get func(root map[string]any) map[string]any, obj map[string]any) {
		at := strings.Join(path, "/")
		add := func(name string, change func(m map[string]any)) {
			c := deepCopy(doc)
			change(get(c))
			out[at+" "+name] = c
		}
		add("extra field", func(m map[string]any) { m["unexpected"] = 1 })
		keys := make([]string, 0, len(obj))
		for k := range obj {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			add(k+" removed", func(m map[string]any) { delete(m, k) })
			add(k+" null", func(m map[string]any) { m[k] = nil })
			add(k+" object", func(m map[string]any) { m[k] = map[string]any{} })
			add(k+" bool", func(m map[string]any) { m[k] = true })
			switch v := obj[k].(type) {
			case string:
				add(k+" number", func(m map[string]any) { m[k] = 7 })
				add(k+" empty", func(m map[string]any) { m[k] = "" })
				add(k+" dotted", func(m map[string]any) { m[k] = "a.b" })
				add(k+" lower", func(m map[string]any) { m[k] = strings.ToLower(v) })
				add(k+" too long", func(m map[string]any) { m[k] = strings.Repeat("x", 1100) })
				add(k+" 65 chars", func(m map[string]any) { m[k] = strings.Repeat("y", 65) })
				add(k+" 129 chars", func(m map[string]any) { m[k] = strings.Repeat("z", 129) })
				add(k+" 257 chars", func(m map[string]any) { m[k] = strings.Repeat("w", 257) })
				add(k+" other", func(m map[string]any) { m[k] = "something_else" })
			case float64:
				add(k+" string", func(m map[string]any) { m[k] = fmt.Sprint(v) })
				add(k+" negative", func(m map[string]any) { m[k] = -1 })
				add(k+" zero", func(m map[string]any) { m[k] = 0 })
				add(k+" fraction", func(m map[string]any) { m[k] = v + 0.5 })
				add(k+" huge", func(m map[string]any) { m[k] = 1e30 })
				add(k+" 10001", func(m map[string]any) { m[k] = 10001 })
			case []any:
				add(k+" empty", func(m map[string]any) { m[k] = []any{} })
				add(k+" string", func(m map[string]any) { m[k] = "x" })
				add(k+" 101 items", func(m map[string]any) {
					items := make([]any, 101)
					for i := range items {
						items[i] = deepCopy(map[string]any{"x": v[0]})["x"]
					}
					m[k] = items
				})
				for i, e := range v {
					if child, ok := e.(map[string]any); ok {
						walk(append(append([]string(nil), path...), k, fmt.Sprint(i)), func(root map[string]any) map[string]any {
							return get(root)[k].([]any)[i].(map[string]any)
						}, child)
					}
				}
			case map[string]any:
				walk(append(append([]string(nil), path...), k), func(root map[string]any) map[string]any {
					return get(root)[k].(map[string]any)
				}, v)
			}
		}
	}
	walk([]string{""}, func(root map[string]any) map[string]any { return root }, doc)
	return out
}

func deepCopy(m map[string]any) map[string]any {
	b, _ := json.Marshal(m)
	var c map[string]any
	_ = json.Unmarshal(b, &c)
	return c
}

// TestDecoderIsAtLeastAsStrictAsSchemas mutates every golden sample in
// every way mutations knows and holds the decoder to the schema: whatever
// the schema refuses, the decoder refuses too. (The decoder may refuse
// more: a line total that is not quantity × price, a total that is not the
// sum of the lines.)
func TestDecoderIsAtLeastAsStrictAsSchemas(t *testing.T) {
	t.Parallel()
	reg := DefaultRegistry()
	var checked, stricter int
	for typ, raw := range goldens(t) {
		var doc map[string]any
		if err := json.Unmarshal(raw, &doc); err != nil {
			t.Fatal(err)
		}
		for name, m := range mutations(doc) {
			b, err := json.Marshal(m)
			if err != nil {
				t.Fatal(err)
			}
			_, schemaErr := reg.Parse(b)
			decErr := decodeAll(b)
			checked++
			switch {
			case schemaErr != nil && decErr == nil:
				t.Errorf("%s, %s: the schema refuses it (%v), the decoder takes it", typ, name, schemaErr)
			case schemaErr == nil && decErr != nil:
				stricter++
			}
			if decErr != nil && !errors.Is(decErr, ErrInvalidEvent) {
				t.Errorf("%s, %s: decoder error %v does not wrap ErrInvalidEvent", typ, name, decErr)
			}
		}
	}
	if checked < 500 {
		t.Fatalf("only %d mutations checked", checked)
	}
	t.Logf("%d mutations checked; the decoder refused %d that the schemas take", checked, stricter)
}

// TestDecoderChecksWhatSchemasCannot: the facts a payload states about
// itself.
func TestDecoderChecksWhatSchemasCannot(t *testing.T) {
	t.Parallel()
	raw := goldens(t)[SchemaURI(InventoryReserved, 1)]
	tests := []struct{ name, from, to, want string }{
		{"total is not the sum of the lines", `"total_cents":3897`, `"total_cents":1`, "not the sum of the lines"},
		{"line total is not quantity × price", `"line_total_cents":2598`, `"line_total_cents":2599`, "is not 2 × 1299"},
	}
	for _, tt := range tests {
		b := []byte(strings.Replace(string(raw), tt.from, tt.to, 1))
		if _, err := DefaultRegistry().Parse(b); err != nil {
			t.Fatalf("%s: the schema refuses it already: %v", tt.name, err)
		}
		if err := decodeAll(b); err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s: decoder error = %v, want it to say %q", tt.name, err, tt.want)
		}
	}
}
