package httpapi

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/eventshop/order-service/internal/app"
	"github.com/eventshop/order-service/internal/order"
	"github.com/eventshop/shared/events"
)

// FuzzCreateOrderBody holds POST /orders's body decoding to its promise:
// a body it accepts becomes an order and a created event that the rest of
// the system accepts (else a client could turn its request into a 500, or
// into an event every consumer dead-letters), and the same body re-encoded
// is accepted again; a body it refuses is a 400 that says what is wrong.
func FuzzCreateOrderBody(f *testing.F) {
	for _, s := range []string{
		`{"customer_id":"c-1","items":[{"sku":"SKU-1","quantity":2}],"payment_token":"tok_visa"}`,
		`{"customer_id":"c-1","items":[{"sku":"SKU-1","quantity":1},{"sku":"SKU-2","quantity":10000}],"payment_token":"tok_visa"}`,
		`{"customer_id":"c-1","items":[],"payment_token":"tok_visa"}`,
		`{"customer_id":"c-1","items":[{"sku":"a.b","quantity":1}],"payment_token":"tok_visa"}`,
		`{"customer_id":"c-1","items":[{"sku":"S","quantity":1.5}],"payment_token":"tok_visa"}`,
		`{"customer_id":"c-1","items":[{"sku":"S","quantity":1}],"payment_token":"tok_visa","admin":true}`,
		`{"customer_id":"c\u0000","items":[{"sku":"S","quantity":1}],"payment_token":"\ud800"}`,
		`{"customer_id":"c-1","customer_id":"","items":[{"sku":"S","quantity":1}],"payment_token":"t"}`,
		`{"customer_id":null,"items":null,"payment_token":null}`,
		`[]`, ``, `{`, `"x"`,
	} {
		f.Add([]byte(s))
	}
	gin.SetMode(gin.TestMode)
	a := &API{registry: events.DefaultRegistry()}
	created := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	f.Fuzz(func(t *testing.T, body []byte) {
		req, err := a.decodeBody(body)
		if err != nil {
			p := MapError(err)
			if p.Status != http.StatusBadRequest || len(p.Errors) == 0 {
				t.Fatalf("refused body %q: problem %+v, want a 400 listing what is wrong", body, p)
			}
			for _, e := range p.Errors {
				if strings.TrimSpace(e) == "" {
					t.Fatalf("refused body %q: an empty reason in %q", body, p.Errors)
				}
			}
			return
		}
		if _, err := order.New(order.Draft{ID: "o-fuzz", CustomerID: req.CustomerID, Items: app.Items(req.Items),
			CreatedAt: created, TraceParent: "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"}); err != nil {
			t.Fatalf("accepted body %q makes no order: %v", body, err)
		}
		data := events.OrderCreatedData{OrderID: "o-fuzz", CustomerID: req.CustomerID, Items: req.Items,
			PaymentToken: req.PaymentToken, CreatedAt: created}
		if err := data.Validate(); err != nil {
			t.Fatalf("accepted body %q makes a created event the system refuses: %v", body, err)
		}
		again, err := json.Marshal(req)
		if err != nil {
			t.Fatal(err)
		}
		back, err := a.decodeBody(again)
		if err != nil {
			t.Fatalf("accepted body %q, re-encoded as %s, is refused: %v", body, again, err)
		}
		if back.CustomerID != req.CustomerID || back.PaymentToken != req.PaymentToken || len(back.Items) != len(req.Items) {
			t.Fatalf("round trip of %q: %+v, then %+v", body, req, back)
		}
	})
}

// decodeBody runs the handler's decode over body as a POST /orders would.
func (a *API) decodeBody(body []byte) (createRequest, error) {
	c, _ := gin.CreateTestContext(httptest.NewRecorder())
	c.Request = httptest.NewRequest(http.MethodPost, "/orders", bytes.NewReader(body))
	return a.decode(c)
}
