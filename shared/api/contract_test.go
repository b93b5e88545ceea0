package api_test

import (
	"encoding/json"
	"fmt"
	"maps"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/eventshop/shared/api"
	"github.com/eventshop/shared/api/openapi"
)

// types is every type of the package under the name of its schema.
var types = map[string]any{
	"Problem": api.Problem{}, "Health": api.Health{}, "Readiness": api.Readiness{},
	"CreateOrderRequest": api.CreateOrderRequest{}, "OrderAccepted": api.OrderAccepted{}, "Order": api.Order{},
	"Item": api.Item{}, "Line": api.Line{}, "ShippingAddress": api.ShippingAddress{}, "OrderList": api.OrderList{},
	"PutStockRequest": api.PutStockRequest{}, "StockItem": api.StockItem{}, "StockList": api.StockList{},
	"Payment": api.Payment{}, "Breaker": api.Breaker{},
	"NotificationList": api.NotificationList{}, "Notification": api.Notification{}, "NotificationPayload": api.NotificationPayload{},
	"Timeline": api.Timeline{}, "TimelineEntry": api.TimelineEntry{}, "Verification": api.Verification{},
	"DeadLetter": api.DeadLetter{}, "DeadLetterList": api.DeadLetterList{}, "DeadLetterReplay": api.DeadLetterReplay{},
	"DeadLetterBulk": api.DeadLetterBulk{},
}

// TestTypesMatchTheDocuments holds every object schema of every document
// to the type of its name: each property a field, each field a property, of
// the same JSON type, optional exactly when the field is omitempty. So a
// client that decodes with these types reads every field a service
// documents, and one that encodes sends nothing the schema refuses.
func TestTypesMatchTheDocuments(t *testing.T) {
	t.Parallel()
	seen := map[string]bool{}
	for _, s := range openapi.Services {
		raw, err := openapi.Document(s)
		if err != nil {
			t.Fatal(err)
		}
		var doc map[string]any
		if err := json.Unmarshal(raw, &doc); err != nil {
			t.Fatal(err)
		}
		schemas := doc["components"].(map[string]any)["schemas"].(map[string]any)
		for _, name := range slices.Sorted(maps.Keys(schemas)) {
			schema := schemas[name].(map[string]any)
			if schema["type"] != "object" {
				continue // a named enum or scalar: its uses are checked
			}
			typ, ok := types[name]
			if !ok {
				t.Errorf("%s: schema %s has no Go type in package api", s, name)
				continue
			}
			seen[name] = true
			c := comparer{schemas: schemas}
			c.compare(name, reflect.TypeOf(typ), schema)
			for _, e := range c.errs {
				t.Errorf("%s: %s", s, e)
			}
		}
	}
	for name := range types {
		if !seen[name] {
			t.Errorf("api.%s names no object schema of any document", name)
		}
	}
}

// TestComparerFinds shows the comparison failing on each kind of drift.
func TestComparerFinds(t *testing.T) {
	t.Parallel()
	schema := map[string]any{"type": "object", "required": []any{"a", "n"}, "properties": map[string]any{
		"a": map[string]any{"type": "string"},
		"n": map[string]any{"type": "integer"},
		"o": map[string]any{"type": "array", "items": map[string]any{"type": "string"}},
	}}
	tests := []struct {
		name string
		typ  any
		want string // in the first error; "" for none
	}{
		{"matches", struct {
			A string   `json:"a"`
			N int64    `json:"n"`
			O []string `json:"o,omitempty"`
		}{}, ""},
		{"renamed field", struct {
			A string   `json:"aa"`
			N int64    `json:"n"`
			O []string `json:"o,omitempty"`
		}{}, "field aa is not in the schema"},
		{"missing field", struct {
			A string `json:"a"`
			N int64  `json:"n"`
		}{}, "property o has no field"},
		{"wrong type", struct {
			A string   `json:"a"`
			N string   `json:"n"`
			O []string `json:"o,omitempty"`
		}{}, "n: Go string, schema integer"},
		{"optional sent always", struct {
			A string   `json:"a"`
			N int64    `json:"n"`
			O []string `json:"o"`
		}{}, "o: optional, so the field must be omitempty"},
		{"required left out", struct {
			A string   `json:"a,omitempty"`
			N int64    `json:"n"`
			O []string `json:"o,omitempty"`
		}{}, "a: required, so the field must not be omitempty"},
		{"wrong item type", struct {
			A string  `json:"a"`
			N int64   `json:"n"`
			O []int64 `json:"o,omitempty"`
		}{}, "o[]: Go int64, schema string"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			c := comparer{}
			c.compare("T", reflect.TypeOf(tt.typ), schema)
			switch {
			case tt.want == "" && len(c.errs) > 0:
				t.Fatalf("errors %v, want none", c.errs)
			case tt.want != "" && (len(c.errs) == 0 || !strings.Contains(c.errs[0], tt.want)):
				t.Fatalf("errors %v, want %q", c.errs, tt.want)
			}
		})
	}
}

// comparer compares Go types with JSON Schemas, resolving local references
// to the document's component schemas.
type comparer struct {
	schemas map[string]any
	errs    []string
}

var (
	timeType = reflect.TypeOf(time.Time{})
	rawType  = reflect.TypeOf(json.RawMessage{})
)

func (c *comparer) fail(format string, args ...any) {
	c.errs = append(c.errs, fmt.Sprintf(format, args...))
}

func (c *comparer) compare(at string, typ reflect.Type, schema map[string]any) {
	schema = c.deref(schema)
	for typ.Kind() == reflect.Pointer {
		typ = typ.Elem()
	}
	want, _ := schema["type"].(string)
	switch {
	case typ == rawType:
		if want != "" {
			c.fail("%s: Go json.RawMessage (any JSON), schema %s", at, want)
		}
	case typ == timeType:
		if want != "string" || schema["format"] != "date-time" {
			c.fail("%s: Go time.Time, schema %s (format %v), want a date-time string", at, want, schema["format"])
		}
	case typ.Kind() == reflect.Struct:
		if want != "object" {
			c.fail("%s: Go struct, schema %s", at, want)
			return
		}
		c.fields(at, typ, schema)
	case typ.Kind() == reflect.Map:
		items, _ := schema["additionalProperties"].(map[string]any)
		if want != "object" || items == nil || typ.Key().Kind() != reflect.String {
			c.fail("%s: Go %s, schema %s without additionalProperties", at, typ, want)
			return
		}
		c.compare(at+"{}", typ.Elem(), items)
	case typ.Kind() == reflect.Slice:
		items, _ := schema["items"].(map[string]any)
		if want != "array" || items == nil {
			c.fail("%s: Go %s, schema %s", at, typ, want)
			return
		}
		c.compare(at+"[]", typ.Elem(), items)
	default:
		if got := jsonType(typ.Kind()); got != want {
			c.fail("%s: Go %s, schema %s", at, typ, want)
		}
	}
}

// fields compares a struct's fields with an object schema's properties.
func (c *comparer) fields(at string, typ reflect.Type, schema map[string]any) {
	props, _ := schema["properties"].(map[string]any)
	required := map[string]bool{}
	names, _ := schema["required"].([]any)
	for _, r := range names {
		required[r.(string)] = true
	}
	seen := map[string]bool{}
	for i := range typ.NumField() {
		f := typ.Field(i)
		name, opts, _ := strings.Cut(f.Tag.Get("json"), ",")
		if !f.IsExported() || name == "-" {
			continue
		}
		seen[name] = true
		prop, ok := props[name].(map[string]any)
		if !ok {
			c.fail("%s: field %s is not in the schema", at, name)
			continue
		}
		omit := strings.Contains(opts, "omitempty")
		switch {
		case required[name] && omit:
			c.fail("%s.%s: required, so the field must not be omitempty", at, name)
		case !required[name] && !omit:
			c.fail("%s.%s: optional, so the field must be omitempty", at, name)
		}
		c.compare(at+"."+name, f.Type, prop)
	}
	for _, name := range slices.Sorted(maps.Keys(props)) {
		if !seen[name] {
			c.fail("%s: property %s has no field", at, name)
		}
	}
}

// deref follows a reference to a component schema.
func (c *comparer) deref(schema map[string]any) map[string]any {
	for {
		ref, ok := schema["$ref"].(string)
		if !ok {
			return schema
		}
		name, ok := strings.CutPrefix(ref, "#/components/schemas/")
		target, found := c.schemas[name].(map[string]any)
		if !ok || !found {
			c.fail("reference %s resolves to no component schema", ref)
			return map[string]any{}
		}
		schema = target
	}
}

func jsonType(k reflect.Kind) string {
	switch k {
	case reflect.String:
		return "string"
	case reflect.Bool:
		return "boolean"
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return "integer"
	case reflect.Float32, reflect.Float64:
		return "number"
	}
	return k.String()
}
