package events

import (
	"bytes"
	"embed"
	"encoding/json"
	"fmt"
	"io/fs"
	"path"
	"regexp"
	"strconv"
	"strings"
	"sync"

	"github.com/santhosh-tekuri/jsonschema/v6"
	"golang.org/x/text/language"
	"golang.org/x/text/message"
)

//go:embed schemas/*.json
var schemaFS embed.FS

// SchemaFS exposes the embedded schema files (for docs and tooling).
func SchemaFS() fs.FS { return schemaFS }

var printer = message.NewPrinter(language.English)

var schemaFile = regexp.MustCompile(`^([a-z]+(?:\.[a-z-]+)?)\.v([0-9]+)\.json$`)

// Registry holds every compiled schema: the envelope, each version of each
// event type, and the HTTP request bodies. It is safe for concurrent use.
type Registry struct {
	envelope *jsonschema.Schema
	byURI    map[string]*jsonschema.Schema // dataschema URI -> schema
	current  map[Type]string               // event type -> the dataschema URI producers emit (contract.json)
	known    map[string]Type               // dataschema URI -> event type
	requests map[string]*jsonschema.Schema // "order.create-request" -> newest schema
}

// NewRegistry compiles the embedded schemas.
func NewRegistry() (*Registry, error) {
	r := &Registry{
		byURI:    map[string]*jsonschema.Schema{},
		current:  map[Type]string{},
		known:    map[string]Type{},
		requests: map[string]*jsonschema.Schema{},
	}
	entries, err := fs.ReadDir(schemaFS, "schemas")
	if err != nil {
		return nil, fmt.Errorf("read schemas: %w", err)
	}
	c := jsonschema.NewCompiler()
	c.AssertFormat()
	type doc struct {
		name    string
		version int
		id      string
	}
	var docs []doc
	for _, e := range entries {
		m := schemaFile.FindStringSubmatch(e.Name())
		if m == nil {
			return nil, fmt.Errorf("schema file %q: name must be <name>.v<N>.json", e.Name())
		}
		raw, err := schemaFS.ReadFile(path.Join("schemas", e.Name()))
		if err != nil {
			return nil, fmt.Errorf("read schema %s: %w", e.Name(), err)
		}
		v, err := jsonschema.UnmarshalJSON(bytes.NewReader(raw))
		if err != nil {
			return nil, fmt.Errorf("parse schema %s: %w", e.Name(), err)
		}
		obj, _ := v.(map[string]any)
		id, _ := obj["$id"].(string)
		if id == "" {
			return nil, fmt.Errorf("schema %s has no $id", e.Name())
		}
		if err := c.AddResource(id, v); err != nil {
			return nil, fmt.Errorf("add schema %s: %w", e.Name(), err)
		}
		ver, _ := strconv.Atoi(m[2])
		docs = append(docs, doc{name: m[1], version: ver, id: id})
	}
	newest := map[string]int{}
	for _, d := range docs {
		sch, err := c.Compile(d.id)
		if err != nil {
			return nil, fmt.Errorf("compile schema %s: %w", d.id, err)
		}
		switch {
		case d.name == "envelope":
			r.envelope = sch
		case strings.HasSuffix(d.name, "-request"):
			if d.version > newest[d.name] {
				newest[d.name] = d.version
				r.requests[d.name] = sch
			}
		default:
			t := Type("shop." + d.name)
			r.byURI[d.id] = sch
			r.known[d.id] = t
			if contract.Produce[t] == d.version {
				r.current[t] = d.id
			}
		}
	}
	if r.envelope == nil {
		return nil, fmt.Errorf("no envelope schema embedded")
	}
	return r, nil
}

var (
	defaultOnce sync.Once
	defaultReg  *Registry
)

// DefaultRegistry returns the registry of the embedded schemas, compiled once.
// It panics if the embedded schemas do not compile, which a unit test rules out.
func DefaultRegistry() *Registry {
	defaultOnce.Do(func() {
		r, err := NewRegistry()
		if err != nil {
			panic(err)
		}
		defaultReg = r
	})
	return defaultReg
}

// SchemaFor returns the dataschema URI producers use for type t.
func (r *Registry) SchemaFor(t Type) (string, error) {
	uri, ok := r.current[t]
	if !ok {
		return "", fmt.Errorf("schema for %q: %w", t, ErrUnknownType)
	}
	return uri, nil
}

// Types returns every event type the registry knows.
func (r *Registry) Types() []Type {
	out := make([]Type, 0, len(r.current))
	for t := range r.current {
		out = append(out, t)
	}
	return out
}

// Parse validates raw as an envelope, then validates its data against the
// schema named by its dataschema, and returns the envelope. Every failure
// wraps ErrInvalidEvent (or ErrUnknownType) and says what is wrong.
func (r *Registry) Parse(raw []byte) (Envelope, error) {
	var env Envelope
	inst, err := jsonschema.UnmarshalJSON(bytes.NewReader(raw))
	if err != nil {
		return env, fmt.Errorf("%w: not JSON: %w", ErrInvalidEvent, err)
	}
	if err := r.envelope.Validate(inst); err != nil {
		return env, fmt.Errorf("%w: envelope: %s", ErrInvalidEvent, flatten(err))
	}
	if err := json.Unmarshal(raw, &env); err != nil {
		return env, fmt.Errorf("%w: envelope: %w", ErrInvalidEvent, err)
	}
	sch, ok := r.byURI[env.DataSchema]
	if !ok {
		return env, fmt.Errorf("%w: %w: dataschema %q", ErrInvalidEvent, ErrUnknownType, env.DataSchema)
	}
	if t := r.known[env.DataSchema]; t != env.Type {
		return env, fmt.Errorf("%w: dataschema %q is for %s, not %s", ErrInvalidEvent, env.DataSchema, t, env.Type)
	}
	data := inst.(map[string]any)["data"]
	if err := sch.Validate(data); err != nil {
		return env, fmt.Errorf("%w: %s data: %s", ErrInvalidEvent, env.Type, flatten(err))
	}
	return env, nil
}

// ValidateRequest validates an HTTP request body against the newest version
// of the named request schema (for example "order.create-request").
func (r *Registry) ValidateRequest(name string, raw []byte) error {
	sch, ok := r.requests[name]
	if !ok {
		return fmt.Errorf("request schema %q: %w", name, ErrUnknownType)
	}
	inst, err := jsonschema.UnmarshalJSON(bytes.NewReader(raw))
	if err != nil {
		return fmt.Errorf("%w: body is not JSON: %w", ErrInvalidEvent, err)
	}
	if err := sch.Validate(inst); err != nil {
		return &ValidationError{Problems: problems(err)}
	}
	return nil
}

// ValidationError lists why a document failed its schema, one problem per
// failing location ("/items/0/quantity: minimum: got 0, want 1"). It wraps
// ErrInvalidEvent.
type ValidationError struct {
	Problems []string
}

func (e *ValidationError) Error() string {
	return ErrInvalidEvent.Error() + ": " + strings.Join(e.Problems, "; ")
}

// Unwrap makes errors.Is(err, ErrInvalidEvent) hold.
func (e *ValidationError) Unwrap() error { return ErrInvalidEvent }

// flatten turns a multi-line validation error into one readable line that
// names each failing location.
func flatten(err error) string { return strings.Join(problems(err), "; ") }

// problems lists each failing location of a validation error.
func problems(err error) []string {
	ve, ok := err.(*jsonschema.ValidationError)
	if !ok {
		return []string{err.Error()}
	}
	var msgs []string
	var walk func(e *jsonschema.ValidationError)
	walk = func(e *jsonschema.ValidationError) {
		if len(e.Causes) == 0 {
			loc := "/" + strings.Join(e.InstanceLocation, "/")
			msgs = append(msgs, fmt.Sprintf("%s: %s", loc, e.ErrorKind.LocalizedString(printer)))
			return
		}
		for _, c := range e.Causes {
			walk(c)
		}
	}
	walk(ve)
	return msgs
}
