package service_test

import (
	"net/http"
	"strings"
	"testing"

	"github.com/eventshop/inventory-service/internal/httpapi"
	"github.com/eventshop/shared/api/apitest"
	"github.com/eventshop/shared/api/openapi"
	"github.com/eventshop/shared/platform/problem"
)

func TestCatalogueHTTP(t *testing.T) {
	t.Parallel()
	h := start(t)
	const mug = `{"name":"Mug","price_cents":1299,"currency":"USD","available":10}`

	steps := []struct {
		name        string
		method      string
		path        string
		token       string
		body        string
		wantStatus  int
		wantProblem string // problem type slug, for errors
		want        *httpapi.Item
	}{
		{name: "put without token", method: http.MethodPut, path: "/inventory/MUG", body: mug, wantStatus: 401, wantProblem: "unauthorized"},
		{name: "put with wrong token", method: http.MethodPut, path: "/inventory/MUG", token: "guess", body: mug, wantStatus: 401, wantProblem: "unauthorized"},
		{name: "put not json", method: http.MethodPut, path: "/inventory/MUG", token: adminToken, body: `{nope`, wantStatus: 400, wantProblem: "invalid-request"},
		{name: "put missing field", method: http.MethodPut, path: "/inventory/MUG", token: adminToken, body: `{"name":"Mug","price_cents":1,"currency":"USD"}`, wantStatus: 400, wantProblem: "invalid-request"},
		{name: "put float money", method: http.MethodPut, path: "/inventory/MUG", token: adminToken, body: `{"name":"Mug","price_cents":12.5,"currency":"USD","available":1}`, wantStatus: 400, wantProblem: "invalid-request"},
		{name: "put negative stock", method: http.MethodPut, path: "/inventory/MUG", token: adminToken, body: `{"name":"Mug","price_cents":1,"currency":"USD","available":-1}`, wantStatus: 400, wantProblem: "invalid-request"},
		{name: "put lower-case currency", method: http.MethodPut, path: "/inventory/MUG", token: adminToken, body: `{"name":"Mug","price_cents":1,"currency":"usd","available":1}`, wantStatus: 400, wantProblem: "invalid-request"},
		{name: "put unknown field", method: http.MethodPut, path: "/inventory/MUG", token: adminToken, body: `{"name":"Mug","price_cents":1,"currency":"USD","available":1,"reserved":5}`, wantStatus: 400, wantProblem: "invalid-request"},
		{name: "put dotted sku", method: http.MethodPut, path: "/inventory/MUG.1", token: adminToken, body: mug, wantStatus: 400, wantProblem: "invalid-sku"},
		{name: "get before put", method: http.MethodGet, path: "/inventory/MUG", wantStatus: 404, wantProblem: "unknown-sku"},
		{name: "put creates", method: http.MethodPut, path: "/inventory/MUG", token: adminToken, body: mug, wantStatus: 201,
			want: &httpapi.Item{SKU: "MUG", Name: "Mug", PriceCents: 1299, Currency: "USD", Available: 10}},
		{name: "put updates", method: http.MethodPut, path: "/inventory/MUG", token: adminToken, body: `{"name":"Big mug","price_cents":1499,"currency":"USD","available":3}`, wantStatus: 200,
			want: &httpapi.Item{SKU: "MUG", Name: "Big mug", PriceCents: 1499, Currency: "USD", Available: 3}},
		{name: "get", method: http.MethodGet, path: "/inventory/MUG", wantStatus: 200,
			want: &httpapi.Item{SKU: "MUG", Name: "Big mug", PriceCents: 1499, Currency: "USD", Available: 3}},
		{name: "get invalid sku", method: http.MethodGet, path: "/inventory/a%20b", wantStatus: 400, wantProblem: "invalid-sku"},
		{name: "delete is not allowed", method: http.MethodDelete, path: "/inventory/MUG", token: adminToken, wantStatus: 405, wantProblem: "method-not-allowed"},
	}
	for _, st := range steps { // sequential: each step sees the state the previous ones left
		code, body := h.do(st.method, st.path, st.token, st.body)
		if code != st.wantStatus {
			t.Fatalf("%s: status %d, want %d (%s)", st.name, code, st.wantStatus, body)
		}
		if st.wantProblem != "" {
			p := jsonBody[problem.Problem](t, body)
			if p.Type != "urn:eventshop:problem:"+st.wantProblem || p.Status != code {
				t.Fatalf("%s: problem %+v, want type %s", st.name, p, st.wantProblem)
			}
			continue
		}
		if got := jsonBody[httpapi.Item](t, body); st.want != nil && got != *st.want {
			t.Fatalf("%s: item %+v, want %+v", st.name, got, *st.want)
		}
	}

	h.setStock("CAP", "Cap", 900, "USD", 4)
	h.setStock("AAA", "First", 100, "USD", 1)
	code, body := h.do(http.MethodGet, "/inventory", "", "")
	if code != 200 {
		t.Fatalf("list = %d %s", code, body)
	}
	list := jsonBody[httpapi.List](t, body)
	var skus []string
	for _, it := range list.Items {
		skus = append(skus, it.SKU)
	}
	if got := strings.Join(skus, ","); got != "AAA,CAP,MUG" {
		t.Fatalf("list order = %s, want AAA,CAP,MUG", got)
	}
}

func TestEmptyCatalogueListsNoItems(t *testing.T) {
	t.Parallel()
	h := start(t)
	code, body := h.do(http.MethodGet, "/inventory", "", "")
	if code != 200 || strings.TrimSpace(body) != `{"items":[]}` {
		t.Fatalf("list = %d %s, want an empty items array", code, body)
	}
}

func TestServesItsOpenAPIDocument(t *testing.T) {
	t.Parallel()
	apitest.ServesDocument(t, start(t).in.URL, openapi.Inventory)
}
