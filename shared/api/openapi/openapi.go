// Package openapi holds the OpenAPI 3.1 document of each service's HTTP API,
// the HTTP side of the contract that shared/events is for the events.
//
// The files are written to be read by people and by any OpenAPI tool as a
// set: platform.json describes what every service serves (health,
// readiness, metrics, this document, the dead-letter admin, the problem
// details), once; <service>.json describes the service's own routes and
// refers to platform.json for the rest; request bodies refer to the request
// schemas of shared/events (../../events/schemas/...), which the services
// validate bodies against, instead of copying them. Document bundles a
// service's file with what it refers to into the one self-contained
// document the service serves at GET /openapi.json.
package openapi

import (
	"embed"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"net/http"
	"path"
	"slices"
	"strconv"
	"strings"
	"sync"

	"github.com/eventshop/shared/events"
)

//go:embed *.json
var files embed.FS

// Service names a service's document.
type Service string

// The services with an HTTP API.
const (
	Order        Service = "order"
	Inventory    Service = "inventory"
	Payment      Service = "payment"
	Notification Service = "notification"
	Audit        Service = "audit"
)

// Services lists every service's document.
var Services = []Service{Order, Inventory, Payment, Notification, Audit}

// ErrInvalidDocument marks a document that does not bundle: an unknown
// service, a reference that does not resolve, a route or component defined
// twice.
var ErrInvalidDocument = errors.New("invalid OpenAPI document")

// The references the bundle resolves: to the shared document, and to the
// request schemas of shared/events (relative to this folder).
const (
	platformFile  = "platform.json"
	platformRef   = platformFile + "#"
	schemasPrefix = "../../events/schemas/"
)

// bundled holds each service's bundle, built on first use.
var bundled sync.Map // Service -> *bundle

type bundle struct {
	once sync.Once
	doc  []byte
	err  error
}

// Document returns the service's bundled document: its own routes and
// components, the shared ones of platform.json, and the request schemas of
// shared/events inlined, every reference local. It is computed once.
func Document(s Service) ([]byte, error) {
	v, _ := bundled.LoadOrStore(s, &bundle{})
	b := v.(*bundle)
	b.once.Do(func() { b.doc, b.err = build(s) })
	return b.doc, b.err
}

// Handler serves the service's document as application/json. It panics if
// the document does not bundle, which the package's tests rule out for
// every service.
func Handler(s Service) http.Handler {
	doc, err := Document(s)
	if err != nil {
		panic(err)
	}
	return http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Write(doc) // an error here is the client gone: nothing to answer
	})
}

func build(s Service) ([]byte, error) {
	own, err := load(string(s) + ".json")
	if err != nil {
		return nil, err
	}
	shared, err := load(platformFile)
	if err != nil {
		return nil, err
	}
	if err := merge(own, shared); err != nil {
		return nil, fmt.Errorf("%s: %w", s, err)
	}
	resolved, err := resolve(own, "")
	if err != nil {
		return nil, fmt.Errorf("%s: %w", s, err)
	}
	return json.Marshal(resolved)
}

func load(name string) (map[string]any, error) {
	raw, err := files.ReadFile(name)
	if err != nil {
		return nil, fmt.Errorf("%s: %w: %w", name, ErrInvalidDocument, err)
	}
	var doc map[string]any
	if err := json.Unmarshal(raw, &doc); err != nil {
		return nil, fmt.Errorf("%s: %w: %w", name, ErrInvalidDocument, err)
	}
	return doc, nil
}

// merge adds the shared document's paths and components to doc; a name
// both define is an error, not an override.
func merge(doc, shared map[string]any) error {
	if err := mergeInto(doc, shared, "paths"); err != nil {
		return err
	}
	comps, _ := doc["components"].(map[string]any)
	if comps == nil {
		comps = map[string]any{}
		doc["components"] = comps
	}
	sharedComps, _ := shared["components"].(map[string]any)
	for _, kind := range slices.Sorted(maps.Keys(sharedComps)) {
		if err := mergeInto(comps, sharedComps, kind); err != nil {
			return fmt.Errorf("components: %w", err)
		}
	}
	return nil
}

func mergeInto(dst, src map[string]any, key string) error {
	from, _ := src[key].(map[string]any)
	to, _ := dst[key].(map[string]any)
	if to == nil {
		to = map[string]any{}
		dst[key] = to
	}
	for _, name := range slices.Sorted(maps.Keys(from)) {
		if _, dup := to[name]; dup {
			return fmt.Errorf("%w: %s %q is defined by %s too", ErrInvalidDocument, key, name, platformFile)
		}
		to[name] = from[name]
	}
	return nil
}

// resolve returns node with every reference to platform.json made local
// and every reference to a request schema replaced by the schema (the part
// its fragment points at). where names the node in errors.
func resolve(node any, where string) (any, error) {
	switch n := node.(type) {
	case map[string]any:
		if ref, ok := n["$ref"].(string); ok {
			switch {
			case strings.HasPrefix(ref, platformRef):
				n["$ref"] = strings.TrimPrefix(ref, platformFile)
			case strings.HasPrefix(ref, schemasPrefix):
				if len(n) != 1 {
					return nil, fmt.Errorf("%w: %s: a reference to %s has siblings", ErrInvalidDocument, where, ref)
				}
				return requestSchema(strings.TrimPrefix(ref, schemasPrefix))
			case !strings.HasPrefix(ref, "#"):
				return nil, fmt.Errorf("%w: %s: reference %q resolves to nothing the bundle holds", ErrInvalidDocument, where, ref)
			}
		}
		for _, k := range slices.Sorted(maps.Keys(n)) {
			v, err := resolve(n[k], where+"/"+k)
			if err != nil {
				return nil, err
			}
			n[k] = v
		}
		return n, nil
	case []any:
		for i, v := range n {
			r, err := resolve(v, where+"/"+strconv.Itoa(i))
			if err != nil {
				return nil, err
			}
			n[i] = r
		}
		return n, nil
	}
	return node, nil
}

// requestSchema returns file#fragment of the event schemas. A whole file
// keeps its $id (where the schema is published) but not its $schema: in an
// OpenAPI 3.1 document, the document's dialect applies.
func requestSchema(ref string) (any, error) {
	file, fragment, _ := strings.Cut(ref, "#")
	raw, err := fs.ReadFile(events.SchemaFS(), path.Join("schemas", file))
	if err != nil {
		return nil, fmt.Errorf("%w: %s: %w", ErrInvalidDocument, ref, err)
	}
	var schema any
	if err := json.Unmarshal(raw, &schema); err != nil {
		return nil, fmt.Errorf("%w: %s: %w", ErrInvalidDocument, ref, err)
	}
	if fragment == "" {
		delete(schema.(map[string]any), "$schema")
		return schema, nil
	}
	return pointer(schema, fragment, ref)
}

// pointer follows a JSON pointer (RFC 6901) from root.
func pointer(root any, ptr, ref string) (any, error) {
	node := root
	for _, tok := range strings.Split(strings.TrimPrefix(ptr, "/"), "/") {
		tok = strings.NewReplacer("~1", "/", "~0", "~").Replace(tok)
		m, ok := node.(map[string]any)
		if !ok {
			return nil, fmt.Errorf("%w: %s: %q is not an object", ErrInvalidDocument, ref, tok)
		}
		if node, ok = m[tok]; !ok {
			return nil, fmt.Errorf("%w: %s: no %q", ErrInvalidDocument, ref, tok)
		}
	}
	return node, nil
}
