package schemacompat

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"testing/fstest"
)

const v1 = `{
  "$schema": "https://json-schema.org/draft/2020-12/schema",
  "type": "object",
  "required": ["order_id", "total_cents", "currency"],
  "properties": {
    "order_id": {"type": "string", "pattern": "^[A-Za-z0-9_-]{1,64}$"},
    "total_cents": {"type": "integer", "minimum": 0},
    "currency": {"type": "string", "enum": ["EUR", "USD"]},
    "note": {"type": ["string", "null"], "maxLength": 200}
  },
  "additionalProperties": false
}`

// edit returns v1 changed by f.
func edit(t *testing.T, f func(s map[string]any)) map[string]any {
	t.Helper()
	s, err := decode([]byte(v1))
	if err != nil {
		t.Fatal(err)
	}
	f(s)
	return s
}

func props(s map[string]any) map[string]any { return s["properties"].(map[string]any) }
func prop(s map[string]any, name string) map[string]any {
	return props(s)[name].(map[string]any)
}

// TestCompareRefusesEveryBreakingChange: each pair that must fail names
// its problem; the compatible changes pass.
func TestCompareRefusesEveryBreakingChange(t *testing.T) {
	tests := []struct {
		name string
		f    func(s map[string]any)
		want string // "" : compatible
	}{
		{"same schema", func(map[string]any) {}, ""},
		{"new optional field", func(s map[string]any) { props(s)["discount_cents"] = map[string]any{"type": "integer"} }, ""},
		{"new required field with a default", func(s map[string]any) {
			props(s)["channel"] = map[string]any{"type": "string", "default": "web"}
			s["required"] = append(s["required"].([]any), "channel")
		}, ""},
		{"integer widened to number", func(s map[string]any) { prop(s, "total_cents")["type"] = "number" }, ""},
		{"bound relaxed", func(s map[string]any) { prop(s, "note")["maxLength"] = 400.0 }, ""},
		{"enum value added", func(s map[string]any) { prop(s, "currency")["enum"] = []any{"EUR", "USD", "GBP"} }, ""},

		{"required field removed", func(s map[string]any) { s["required"] = []any{"order_id", "total_cents"} }, `required field "currency" is no longer required`},
		{"new required field without a default", func(s map[string]any) {
			props(s)["channel"] = map[string]any{"type": "string"}
			s["required"] = append(s["required"].([]any), "channel")
		}, `new required field "channel" has no default`},
		{"type narrowed", func(s map[string]any) { prop(s, "note")["type"] = "string" }, "/note: type narrowed"},
		{"enum value removed", func(s map[string]any) { prop(s, "currency")["enum"] = []any{"EUR"} }, `enum value USD removed`},
		{"minimum raised", func(s map[string]any) { prop(s, "total_cents")["minimum"] = 1.0 }, "minimum raised from 0 to 1"},
		{"maxLength lowered", func(s map[string]any) { prop(s, "note")["maxLength"] = 100.0 }, "maxLength lowered"},
		{"pattern changed", func(s map[string]any) { prop(s, "order_id")["pattern"] = "^[a-z]+$" }, "pattern changed"},
		{"field removed while closed", func(s map[string]any) { delete(props(s), "note") }, `field "note" removed`},
	}
	prev, err := decode([]byte(v1))
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := Compare(prev, edit(t, tc.f))
			switch {
			case tc.want == "" && len(got) > 0:
				t.Fatalf("compatible change refused: %v", got)
			case tc.want != "" && !hasProblem(got, tc.want):
				t.Fatalf("breaking change passed or misnamed: %v, want %q", got, tc.want)
			}
		})
	}
	// And the reverse of a widening is a narrowing.
	if got := Compare(edit(t, func(s map[string]any) { prop(s, "total_cents")["type"] = "number" }), prev); !hasProblem(got, "type narrowed") {
		t.Fatalf("number -> integer passed: %v", got)
	}
}

func hasProblem(ps []Problem, want string) bool {
	for _, p := range ps {
		if strings.Contains(p.String(), want) {
			return true
		}
	}
	return false
}

func encode(t *testing.T, s map[string]any) []byte {
	t.Helper()
	b, err := json.Marshal(s)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestGateValidatesEarlierSamplesWithARealValidator: a v2 that looks
// compatible field by field but refuses the v1 golden sample (a new
// "not" keyword the structural comparison does not read) is caught by the
// JSON Schema validator; a compatible v2 passes; the table names both.
func TestGateValidatesEarlierSamplesWithARealValidator(t *testing.T) {
	sample := []byte(`{"type":"shop.order.confirmed","data":{"order_id":"o-1","total_cents":100,"currency":"USD"}}`)
	good := edit(t, func(s map[string]any) { props(s)["discount_cents"] = map[string]any{"type": "integer"} })
	bad := edit(t, func(s map[string]any) {
		s["not"] = map[string]any{"properties": map[string]any{"currency": map[string]any{"const": "USD"}}}
	})
	for _, tc := range []struct {
		name string
		v2   map[string]any
		ok   bool
	}{{"compatible v2", good, true}, {"v2 refusing v1 events", bad, false}} {
		t.Run(tc.name, func(t *testing.T) {
			schemas := fstest.MapFS{
				"order.confirmed.v1.json": {Data: []byte(v1)},
				"order.confirmed.v2.json": {Data: encode(t, tc.v2)},
				"order.created.v1.json":   {Data: []byte(v1)},
				"envelope.v1.json":        {Data: []byte(`{}`)},
			}
			golden := fstest.MapFS{"order.confirmed.v1.json": {Data: sample}}
			rep, err := Check(schemas, golden)
			if err != nil {
				t.Fatal(err)
			}
			var out bytes.Buffer
			rep.Write(&out)
			if rep.OK() != tc.ok {
				t.Fatalf("OK = %v, want %v:\n%s", rep.OK(), tc.ok, out.String())
			}
			want := "v2 accepts v1"
			if !tc.ok {
				want = "v2 BREAKS v1"
				if !strings.Contains(out.String(), "the v1 sample is refused by v2") {
					t.Errorf("the validator's refusal is not reported:\n%s", out.String())
				}
			}
			if !strings.Contains(out.String(), want) || !strings.Contains(out.String(), "order.created") {
				t.Errorf("table lacks %q or the single-version type:\n%s", want, out.String())
			}
		})
	}
}

// TestTheRepositorysSchemasPass: the gate over shared/events' own schemas
// and golden samples.
func TestTheRepositorysSchemasPass(t *testing.T) {
	root := filepath.Join("..", "..", "shared", "events")
	rep, err := Check(os.DirFS(filepath.Join(root, "schemas")), os.DirFS(filepath.Join(root, "testdata", "golden")))
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	rep.Write(&out)
	if !rep.OK() || len(rep.Versions) < 11 {
		t.Fatalf("gate over the repository's schemas (%d types):\n%s", len(rep.Versions), out.String())
	}
}
