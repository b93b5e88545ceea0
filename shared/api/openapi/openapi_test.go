package openapi_test

import (
	"encoding/json"
	"errors"
	"io/fs"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/pb33f/libopenapi"
	validator "github.com/pb33f/libopenapi-validator"

	"github.com/eventshop/shared/api/apitest"
	"github.com/eventshop/shared/api/openapi"
	"github.com/eventshop/shared/events"
)

// TestDocumentsAreValidOpenAPI bundles every service's document and
// validates it against the OpenAPI 3.1 specification.
func TestDocumentsAreValidOpenAPI(t *testing.T) {
	t.Parallel()
	for _, s := range openapi.Services {
		t.Run(string(s), func(t *testing.T) {
			t.Parallel()
			raw, err := openapi.Document(s)
			if err != nil {
				t.Fatal(err)
			}
			if strings.Contains(string(raw), `"$ref":"platform.json`) || strings.Contains(string(raw), `"$ref":"../`) {
				t.Fatal("the bundle refers outside itself")
			}
			doc, err := libopenapi.NewDocument(raw)
			if err != nil {
				t.Fatal(err)
			}
			if doc.GetVersion() != "3.1.0" {
				t.Fatalf("version %s, want 3.1.0", doc.GetVersion())
			}
			v, errs := validator.NewValidator(doc)
			if len(errs) > 0 {
				t.Fatal(errors.Join(errs...))
			}
			if ok, verrs := v.ValidateDocument(); !ok {
				for _, e := range verrs {
					t.Errorf("%s: %s", e.Message, e.Reason)
				}
			}
		})
	}
}

// TestRequestBodiesAreTheEventSchemas checks that each request body is the
// schema the service validates bodies against, not a copy of it.
func TestRequestBodiesAreTheEventSchemas(t *testing.T) {
	t.Parallel()
	tests := []struct {
		service   openapi.Service
		component string
		file      string
	}{
		{openapi.Order, "CreateOrderRequest", "order.create-request.v2.json"},
		{openapi.Inventory, "PutStockRequest", "inventory.put-request.v1.json"},
	}
	for _, tt := range tests {
		t.Run(tt.component, func(t *testing.T) {
			t.Parallel()
			raw, err := openapi.Document(tt.service)
			if err != nil {
				t.Fatal(err)
			}
			var doc struct {
				Components struct {
					Schemas map[string]map[string]any `json:"schemas"`
				} `json:"components"`
			}
			if err := json.Unmarshal(raw, &doc); err != nil {
				t.Fatal(err)
			}
			schemaRaw, err := fs.ReadFile(events.SchemaFS(), "schemas/"+tt.file)
			if err != nil {
				t.Fatal(err)
			}
			var want map[string]any
			if err := json.Unmarshal(schemaRaw, &want); err != nil {
				t.Fatal(err)
			}
			got := doc.Components.Schemas[tt.component]
			if got["$id"] != want["$id"] || len(got) != len(want)-1 { // all but $schema
				t.Fatalf("component %s = %v, want the schema %s", tt.component, got["$id"], want["$id"])
			}
		})
	}
}

func TestHandlerServesTheDocument(t *testing.T) {
	t.Parallel()
	srv := httptest.NewServer(openapi.Handler(openapi.Payment))
	t.Cleanup(srv.Close)
	apitest.ServesDocument(t, srv.URL, openapi.Payment)
}

func TestUnknownServiceHasNoDocument(t *testing.T) {
	t.Parallel()
	if _, err := openapi.Document("shipping"); !errors.Is(err, openapi.ErrInvalidDocument) {
		t.Fatalf("err = %v, want ErrInvalidDocument", err)
	}
}
