package events_test

import (
	"bytes"
	"encoding/json"
	"testing"

	"github.com/santhosh-tekuri/jsonschema/v6"
	"github.com/xeipuuv/gojsonschema"

	"github.com/eventshop/shared/events"
)

// The validator choice: santhosh-tekuri/jsonschema/v6 against the first
// choice, xeipuuv/gojsonschema, on the hottest schema (order.created data).
// Results are in docs/benchmarks.md; nothing here asserts a speed.

var benchData = []byte(`{"order_id":"0193a1c2-7b5e-7c3d-9f00-1a2b3c4d5e6f","customer_id":"c-42",
"items":[{"sku":"SKU-1","quantity":2},{"sku":"SKU-2","quantity":1}],"payment_token":"tok_visa",
"created_at":"2026-11-23T10:00:00Z"}`)

func loadSchema(b *testing.B) []byte {
	b.Helper()
	raw, err := events.SchemaFS().(interface{ ReadFile(string) ([]byte, error) }).ReadFile("schemas/order.created.v1.json")
	if err != nil {
		b.Fatal(err)
	}
	return raw
}

func BenchmarkValidateSanthosh(b *testing.B) {
	raw := loadSchema(b)
	doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(raw))
	if err != nil {
		b.Fatal(err)
	}
	c := jsonschema.NewCompiler()
	c.AssertFormat()
	if err := c.AddResource("s.json", doc); err != nil {
		b.Fatal(err)
	}
	sch, err := c.Compile("s.json")
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		inst, err := jsonschema.UnmarshalJSON(bytes.NewReader(benchData))
		if err != nil {
			b.Fatal(err)
		}
		if err := sch.Validate(inst); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkValidateGojsonschema(b *testing.B) {
	raw := loadSchema(b)
	// gojsonschema speaks draft-07 at most; the schema keywords used here are
	// the same in both drafts.
	var m map[string]any
	if err := json.Unmarshal(raw, &m); err != nil {
		b.Fatal(err)
	}
	delete(m, "$schema")
	sch, err := gojsonschema.NewSchema(gojsonschema.NewGoLoader(m))
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		res, err := sch.Validate(gojsonschema.NewBytesLoader(benchData))
		if err != nil {
			b.Fatal(err)
		}
		if !res.Valid() {
			b.Fatal(res.Errors())
		}
	}
}

func BenchmarkRegistryParseEnvelope(b *testing.B) {
	reg := events.DefaultRegistry()
	raw, _ := json.Marshal(map[string]any{
		"specversion": "1.0", "id": "e-1", "source": "order-service", "type": "shop.order.created",
		"subject": "o-1", "time": "2026-11-23T10:00:00Z", "datacontenttype": "application/json",
		"dataschema":  "https://schemas.eventshop.dev/events/order.created/v1.json",
		"traceparent": "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
		"data":        json.RawMessage(benchData),
	})
	b.ReportAllocs()
	for b.Loop() {
		if _, err := reg.Parse(raw); err != nil {
			b.Fatal(err)
		}
	}
}
