// Package schemacompat is the compatibility gate of the event schemas: each
// version of an event type must accept what the version before it
// described, so that a consumer built with the new version reads every
// event already in the streams (docs/releasing.md, "Compatibility").
//
// Two checks, both required:
//   - a structural comparison of the two schemas (Compare): no required
//     field removed, no type, enum, bound, pattern or format narrowed, no
//     new required field without a default, no property dropped where no
//     other properties are allowed;
//   - the golden samples of the older version (testdata/golden) validated
//     against the newer schema by a JSON Schema validator
//     (santhosh-tekuri/jsonschema, draft 2020-12).
package schemacompat

import (
	"encoding/json"
	"fmt"
	"maps"
	"reflect"
	"slices"
)

// Problem is one incompatibility, at a JSON pointer-like path of the data.
type Problem struct {
	Path string
	What string
}

func (p Problem) String() string { return p.Path + ": " + p.What }

// Compare returns what makes next reject data that prev accepted, or drop
// a field prev's readers require. Both are JSON Schemas decoded into
// generic values (json.Unmarshal into any).
func Compare(prev, next map[string]any) []Problem {
	var out []Problem
	compare("", prev, next, &out)
	return out
}

func compare(path string, prev, next map[string]any, out *[]Problem) {
	add := func(format string, args ...any) {
		p := path
		if p == "" {
			p = "/"
		}
		*out = append(*out, Problem{Path: p, What: fmt.Sprintf(format, args...)})
	}
	if pt, nt := types(prev), types(next); pt != nil && nt != nil {
		for _, t := range pt {
			if !slices.Contains(nt, t) && !(t == "integer" && slices.Contains(nt, "number")) {
				add("type narrowed from %v to %v", pt, nt)
				break
			}
		}
	} else if pt == nil && nt != nil {
		add("type narrowed from any to %v", nt)
	}
	if pe, ok := prev["enum"].([]any); ok {
		ne, _ := next["enum"].([]any)
		for _, v := range pe {
			if _, has := next["enum"]; has && !containsValue(ne, v) {
				add("enum value %v removed", v)
			}
		}
	} else if _, has := next["enum"]; has {
		add("enum added: values outside it are now refused")
	}
	for _, k := range []string{"minimum", "exclusiveMinimum", "minLength", "minItems", "minProperties"} {
		if narrowedBound(prev, next, k, func(p, n float64) bool { return n > p }) {
			add("%s raised from %v to %v", k, prev[k], next[k])
		}
	}
	for _, k := range []string{"maximum", "exclusiveMaximum", "maxLength", "maxItems", "maxProperties"} {
		if narrowedBound(prev, next, k, func(p, n float64) bool { return n < p }) {
			add("%s lowered from %v to %v", k, prev[k], next[k])
		}
	}
	for _, k := range []string{"pattern", "format", "const"} {
		if nv, ok := next[k]; ok && !reflect.DeepEqual(prev[k], nv) {
			if _, had := prev[k]; had {
				add("%s changed from %v to %v", k, prev[k], nv)
			} else {
				add("%s %v added", k, nv)
			}
		}
	}

	prevReq, nextReq := stringList(prev["required"]), stringList(next["required"])
	nextProps, _ := next["properties"].(map[string]any)
	prevProps, _ := prev["properties"].(map[string]any)
	for _, r := range prevReq {
		if !slices.Contains(nextReq, r) {
			add("required field %q is no longer required: readers of the earlier version rely on it", r)
		}
	}
	for _, r := range nextReq {
		if slices.Contains(prevReq, r) {
			continue
		}
		prop, _ := nextProps[r].(map[string]any)
		if _, ok := prop["default"]; !ok {
			add("new required field %q has no default: events of the earlier version lack it", r)
		}
	}
	closed := next["additionalProperties"] == false
	if prev["additionalProperties"] != false && closed {
		add("additionalProperties closed: fields the earlier version allowed are now refused")
	}
	for _, name := range sortedKeys(prevProps) {
		pp, _ := prevProps[name].(map[string]any)
		np, ok := nextProps[name].(map[string]any)
		if !ok {
			if closed {
				add("field %q removed while no other fields are allowed: events that carry it are refused", name)
			}
			continue
		}
		compare(path+"/"+name, pp, np, out)
	}
	if pi, ok := prev["items"].(map[string]any); ok {
		if ni, ok := next["items"].(map[string]any); ok {
			compare(path+"/items", pi, ni, out)
		}
	} else if _, ok := next["items"].(map[string]any); ok {
		add("items constrained where any were allowed")
	}
}

// types returns the schema's type keyword as a list (nil: any type).
func types(s map[string]any) []string {
	switch t := s["type"].(type) {
	case string:
		return []string{t}
	case []any:
		return stringList(t)
	}
	return nil
}

func stringList(v any) []string {
	list, _ := v.([]any)
	out := make([]string, 0, len(list))
	for _, x := range list {
		if s, ok := x.(string); ok {
			out = append(out, s)
		}
	}
	return out
}

func containsValue(list []any, v any) bool {
	for _, x := range list {
		if reflect.DeepEqual(x, v) {
			return true
		}
	}
	return false
}

// narrowedBound reports whether next sets bound k tighter than prev (or
// sets it where prev had none).
func narrowedBound(prev, next map[string]any, k string, tighter func(p, n float64) bool) bool {
	nv, ok := next[k].(float64)
	if !ok {
		return false
	}
	pv, ok := prev[k].(float64)
	return !ok || tighter(pv, nv)
}

func sortedKeys[V any](m map[string]V) []string {
	return slices.Sorted(maps.Keys(m))
}

// decode parses a schema document.
func decode(raw []byte) (map[string]any, error) {
	var s map[string]any
	if err := json.Unmarshal(raw, &s); err != nil {
		return nil, err
	}
	return s, nil
}
