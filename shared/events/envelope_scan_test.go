package events

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"reflect"
	"testing"
)

// scanEnvelope must read every envelope as encoding/json does, or refuse
// it: it may be stricter (encoding/json matches keys case-insensitively,
// the schema does not), never laxer.
func agree(t *testing.T, raw []byte) {
	t.Helper()
	var fast, slow Envelope
	ok, fastErr := scanEnvelope(raw, &fast)
	if !ok {
		return // left to encoding/json
	}
	if fastErr == nil && !json.Valid(fast.Data) {
		fastErr = errors.New("data is not JSON") // as Decode does
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	slowErr := dec.Decode(&slow)
	if _, err := dec.Token(); slowErr == nil && err != io.EOF {
		slowErr = errors.New("data after the value")
	}
	switch {
	case fastErr == nil && slowErr != nil:
		t.Fatalf("the scanner takes %q, encoding/json refuses it: %v", raw, slowErr)
	case fastErr == nil && !reflect.DeepEqual(fast, slow):
		t.Fatalf("%q: the scanner reads %+v, encoding/json %+v", raw, fast, slow)
	}
}

func TestScannerAgreesWithEncodingJSON(t *testing.T) {
	t.Parallel()
	n := 0
	for _, raw := range goldens(t) {
		agree(t, raw)
		var doc map[string]any
		if err := json.Unmarshal(raw, &doc); err != nil {
			t.Fatal(err)
		}
		for _, m := range mutations(doc) {
			b, _ := json.Marshal(m)
			agree(t, b)
			n++
		}
		// Layout the scanner must take: spaces, newlines, indentation.
		var pretty bytes.Buffer
		if err := json.Indent(&pretty, raw, " ", "\t"); err != nil {
			t.Fatal(err)
		}
		agree(t, pretty.Bytes())
		if _, err := Decode("", pretty.Bytes()); err != nil {
			t.Fatalf("indented envelope: %v", err)
		}
	}
	// An escape is left to encoding/json, and decodes the same.
	raw := goldens(t)[SchemaURI(OrderConfirmed, 1)]
	escaped := bytes.Replace(raw, []byte(`"source":"order-service"`), []byte(`"source":"order\u002dservice"`), 1)
	env, err := Decode("", escaped)
	if err != nil || env.Source != "order-service" {
		t.Fatalf("escaped source: %+v, %v", env, err)
	}
	for _, bad := range []string{`{"data":{"a":"}"}`, `{"id":"x"`, `{"id":"x",}`, `{"id":"x"} x`, `{"id":1}`, `[]`, `{"id":"a` + "\x01" + `"}`} {
		if _, err := Decode("", []byte(bad)); err == nil {
			t.Errorf("Decode(%q) took it", bad)
		}
	}
	t.Logf("%d envelopes compared", n)
}

// FuzzDecode: whatever the bytes, Decode neither panics nor takes an
// envelope encoding/json would refuse or read differently.
func FuzzDecode(f *testing.F) {
	files, _ := goldensForFuzz()
	for _, raw := range files {
		f.Add(raw)
	}
	f.Add([]byte(`{"data":{}}`))
	f.Fuzz(func(t *testing.T, raw []byte) {
		agree(t, raw)
		if env, err := Decode("", raw); err == nil && !json.Valid(env.Data) {
			t.Fatalf("Decode took invalid data %q", env.Data)
		}
	})
}

func TestHasKeyLooksAtTopLevelKeysOnly(t *testing.T) {
	t.Parallel()
	doc := []byte(` { "a" : 1 , "lines":[{"amount_cents":2}], "detail":"\"amount_cents\":", "b": {"amount_cents":3}, "n": null, "z":true }`)
	for k, want := range map[string]bool{"a": true, "lines": true, "detail": true, "b": true, "n": true, "z": true, "amount_cents": false, "c": false} {
		if got := hasKey(doc, k); got != want {
			t.Errorf("hasKey(%q) = %v, want %v", k, got, want)
		}
	}
}
