package events

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"unicode/utf8"
)

// Inside the system an event is decoded once, into its Go types, with
// checks written in Go: the JSON Schemas guard what comes from outside
// (HTTP bodies, admin calls) and are the contract the tests hold every
// producer and every golden sample to (contract_test.go). The checks here
// are at least as strict as the schemas; TestDecoderIsAtLeastAsStrictAsSchemas
// mutates valid events and holds the two side by side.

// Validator is implemented by every event payload: it checks what the
// payload's schema checks, and the facts the payload states about itself
// (a line total is its quantity times its unit price, a total is the sum
// of its lines).
type Validator interface {
	Validate() error
}

// Decode reads one event as it arrived on subject: strict JSON (no unknown
// attributes, no trailing data), every envelope attribute checked, the type
// known to this build, the dataschema one of that type's versions, and the
// event about the order its subject names. The payload stays raw until the
// handler decodes it with DecodeData. subject "" skips the subject check
// (an event read by other means than its subject). Every failure wraps
// ErrInvalidEvent (and ErrUnknownType for a type or version this build
// does not know) and says what is wrong.
func Decode(subject string, raw []byte) (Envelope, error) {
	var env Envelope
	ok, err := scanEnvelope(raw, &env)
	if !ok {
		env = Envelope{}
		err = strictUnmarshal(raw, &env)
	}
	if err != nil {
		return env, fmt.Errorf("%w: envelope: %w", ErrInvalidEvent, err)
	}
	if err := env.check(); err != nil {
		return env, err
	}
	if !json.Valid(env.Data) {
		return env, fmt.Errorf("%w: envelope: /data: not JSON", ErrInvalidEvent)
	}
	if subject != "" {
		if want, _ := Subject(env.Type, env.Subject); want != subject {
			return env, fmt.Errorf("%w: a %s event about order %q arrived on %s", ErrInvalidEvent, env.Type, env.Subject, subject)
		}
	}
	return env, nil
}

// check holds the envelope to envelope.v1.json.
func (e Envelope) check() error {
	bad := func(attr, why string) error {
		return fmt.Errorf("%w: envelope: /%s: %s", ErrInvalidEvent, attr, why)
	}
	switch {
	case e.SpecVersion != SpecVersion:
		return bad("specversion", fmt.Sprintf("%q, want %q", e.SpecVersion, SpecVersion))
	case !validToken(e.ID, 128):
		return bad("id", "missing, or not 1-128 letters, digits, '-' or '_'")
	case e.Source == "" || utf8.RuneCountInString(e.Source) > 128:
		return bad("source", "missing or longer than 128 characters")
	case e.Type == "":
		return bad("type", "missing")
	case !ValidID(e.Subject):
		return bad("subject", "missing, or not an order id (1-64 letters, digits, '-' or '_')")
	case e.Time.IsZero():
		return bad("time", "missing")
	case e.DataContentType != ContentType:
		return bad("datacontenttype", fmt.Sprintf("%q, want %q", e.DataContentType, ContentType))
	case !validTraceparent(e.TraceParent):
		return bad("traceparent", "not a W3C traceparent (00-<32 hex>-<16 hex>-<2 hex>)")
	case len(e.Data) == 0 || e.Data[0] != '{':
		return bad("data", "missing or not an object")
	}
	if _, ok := routes[e.Type]; !ok {
		return fmt.Errorf("%w: %w: %q", ErrInvalidEvent, ErrUnknownType, e.Type)
	}
	known, ok := dataSchemas[e.DataSchema]
	if !ok {
		return fmt.Errorf("%w: %w: dataschema %q", ErrInvalidEvent, ErrUnknownType, e.DataSchema)
	}
	if known.typ != e.Type {
		return fmt.Errorf("%w: dataschema %q is for %s, not %s", ErrInvalidEvent, e.DataSchema, known.typ, e.Type)
	}
	return nil
}

// DecodeData decodes the payload strictly into v (no unknown fields, no
// trailing data) and, where v is a Validator, checks it; a payload that
// names an order checks that it is the envelope's. Each type has one Go
// payload, its newest version: an older version decodes into it with the
// newer fields left empty (the upcast), and a field its version does not
// have is refused (see versioned). Every failure wraps ErrInvalidEvent.
func (e Envelope) DecodeData(v any) error {
	if err := strictUnmarshal(e.Data, v); err != nil {
		return fmt.Errorf("%w: %s data: %w", ErrInvalidEvent, e.Type, err)
	}
	if c, ok := v.(Validator); ok {
		if err := c.Validate(); err != nil {
			return fmt.Errorf("%w: %s data: %w", ErrInvalidEvent, e.Type, err)
		}
	}
	if c, ok := v.(versioned); ok {
		if err := c.fitsVersion(e.Version()); err != nil {
			return fmt.Errorf("%w: %s data: %w", ErrInvalidEvent, e.Type, err)
		}
	}
	if o, ok := v.(interface{ Order() string }); ok && o.Order() != e.Subject {
		return fmt.Errorf("%w: a %s event about order %q carries order %q", ErrInvalidEvent, e.Type, e.Subject, o.Order())
	}
	return nil
}

// versioned is implemented by a payload whose type has more than one
// version: fitsVersion says whether it holds only fields version v has.
type versioned interface {
	fitsVersion(v int) error
}

// strictUnmarshal decodes one JSON value into v, refusing fields v does not
// have, null values (no schema allows one, and Go would read it as "field
// left as it was") and anything after the value.
func strictUnmarshal(raw []byte, v any) error {
	if bytes.Contains(raw, []byte("null")) { // rare: look closer
		if at, ok := findNull(raw); ok {
			return fmt.Errorf("%s: null is not allowed", at)
		}
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return readable(err)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return errors.New("data after the JSON value")
	}
	return nil
}

// findNull returns where raw holds a JSON null, if it does.
func findNull(raw []byte) (string, bool) {
	var doc any
	if err := json.Unmarshal(raw, &doc); err != nil {
		return "", false // the decoder says what is wrong
	}
	var walk func(at string, v any) (string, bool)
	walk = func(at string, v any) (string, bool) {
		switch v := v.(type) {
		case nil:
			return at, true
		case map[string]any:
			for k, e := range v {
				if p, ok := walk(at+"/"+k, e); ok {
					return p, true
				}
			}
		case []any:
			for i, e := range v {
				if p, ok := walk(fmt.Sprintf("%s/%d", at, i), e); ok {
					return p, true
				}
			}
		}
		return "", false
	}
	p, ok := walk("", doc)
	if ok && p == "" {
		p = "/"
	}
	return p, ok
}

// readable rewords the decoder's errors for a person: which field, what
// was wrong, without Go type names.
func readable(err error) error {
	var se *json.SyntaxError
	if errors.As(err, &se) || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF) {
		return fmt.Errorf("not JSON: %w", err)
	}
	var te *json.UnmarshalTypeError
	if errors.As(err, &te) {
		want := te.Type.Kind().String()
		switch {
		case strings.HasPrefix(want, "int"):
			want = "a whole number"
		case want == "slice":
			want = "an array"
		case want == "struct" || want == "map":
			want = "an object"
		}
		return fmt.Errorf("/%s: %s is not %s", strings.ReplaceAll(te.Field, ".", "/"), te.Value, want)
	}
	if msg, ok := strings.CutPrefix(err.Error(), "json: unknown field "); ok {
		return fmt.Errorf("unknown field %s", msg)
	}
	return err
}

// validToken reports whether s is 1 to max letters, digits, '-' or '_' (an
// id that may become a subject token).
func validToken(s string, max int) bool {
	if len(s) == 0 || len(s) > max {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-' || c == '_') {
			return false
		}
	}
	return true
}

func validTraceparent(s string) bool {
	if len(s) != 55 || s[0] != '0' || s[1] != '0' || s[2] != '-' || s[35] != '-' || s[52] != '-' {
		return false
	}
	return isLowerHex(s[3:35]) && isLowerHex(s[36:52]) && isLowerHex(s[53:55])
}

func isLowerHex(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f') {
			return false
		}
	}
	return true
}
