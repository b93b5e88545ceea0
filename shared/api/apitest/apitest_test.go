package apitest_test

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/eventshop/shared/api/apitest"
	"github.com/eventshop/shared/api/openapi"
)

const (
	order = `{"order_id":"o-1","customer_id":"c-1","status":"PENDING","items":[{"sku":"MUG","quantity":1}],` +
		`"created_at":"2026-11-23T10:00:00Z","updated_at":"2026-11-23T10:00:00Z"}`
	orderJSON = "application/json; charset=utf-8"
	problem   = "application/problem+json"
	body      = `{"customer_id":"c-1","items":[{"sku":"MUG","quantity":1}],"payment_token":"tok_visa"}`
)

func notFound(slug string) string {
	return `{"type":"urn:eventshop:problem:` + slug + `","title":"Not Found","status":404,"detail":"no","instance":"/x"}`
}

// TestCheck holds exchanges with the order service to its document: the
// ones it describes pass, and each kind of drift fails.
func TestCheck(t *testing.T) {
	t.Parallel()
	c, err := apitest.For(openapi.Order)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name         string
		method, path string
		reqBody      string
		reqHeader    map[string]string
		status       int
		contentType  string
		respBody     string
		respHeader   map[string]string
		wantErr      string // in the error; "" for none
	}{
		{name: "an order", method: "GET", path: "/orders/o-1", status: 200, contentType: orderJSON, respBody: order},
		{name: "a field renamed", method: "GET", path: "/orders/o-1", status: 200, contentType: orderJSON,
			respBody: strings.Replace(order, `"customer_id"`, `"customer"`, 1), wantErr: "missing property 'customer_id'"},
		{name: "an undocumented field", method: "GET", path: "/orders/o-1", status: 200, contentType: orderJSON,
			respBody: strings.Replace(order, `"status"`, `"charge_key":"k","status"`, 1), wantErr: "'charge_key'"},
		{name: "a field of the wrong type", method: "GET", path: "/orders/o-1", status: 200, contentType: orderJSON,
			respBody: strings.Replace(order, `"quantity":1`, `"quantity":"1"`, 1), wantErr: "answered 200"},
		{name: "an undocumented status", method: "GET", path: "/orders/o-1", status: http.StatusTeapot, contentType: problem,
			respBody: `{"type":"urn:eventshop:problem:teapot","title":"I'm a teapot","status":418}`, wantErr: "'418'"},
		{name: "a documented problem", method: "GET", path: "/orders/o-1", status: 404, contentType: problem, respBody: notFound("order-not-found")},
		{name: "a problem of another type", method: "GET", path: "/orders/o-1", status: 404, contentType: problem,
			respBody: notFound("not-found"), wantErr: "urn:eventshop:problem:order-not-found"},
		{name: "a problem that is not problem+json", method: "GET", path: "/orders/o-1", status: 404, contentType: orderJSON,
			respBody: notFound("order-not-found"), wantErr: "answered 404"},
		{name: "an accepted order", method: "POST", path: "/orders", reqBody: body,
			reqHeader: map[string]string{"Content-Type": "application/json", "Idempotency-Key": "k-1"},
			status:    202, contentType: orderJSON, respBody: `{"order_id":"o-1","status":"PENDING"}`,
			respHeader: map[string]string{"Location": "/orders/o-1", "traceparent": "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"}},
		{name: "an undocumented header", method: "POST", path: "/orders", reqBody: body,
			reqHeader: map[string]string{"Content-Type": "application/json"},
			status:    202, contentType: orderJSON, respBody: `{"order_id":"o-1","status":"PENDING"}`,
			respHeader: map[string]string{"Location": "/orders/o-1", "X-Order": "o-1"}, wantErr: "'X-Order'"},
		{name: "a refused body answered with its problem", method: "POST", path: "/orders", reqBody: `{"items":[]}`,
			reqHeader: map[string]string{"Content-Type": "application/json"}, status: 400, contentType: problem,
			respBody: `{"type":"urn:eventshop:problem:invalid-request","title":"Bad Request","status":400,"errors":["/items"]}`},
		{name: "a refused body accepted", method: "POST", path: "/orders", reqBody: `{"items":[]}`,
			reqHeader: map[string]string{"Content-Type": "application/json"}, status: 202, contentType: orderJSON,
			respBody: `{"order_id":"o-1","status":"PENDING"}`, respHeader: map[string]string{"Location": "/orders/o-1"},
			wantErr: "yet the answer is 202"},
		{name: "an admin route without the token", method: "GET", path: "/admin/dlq", status: 401, contentType: problem,
			respBody:   `{"type":"urn:eventshop:problem:unauthorized","title":"Unauthorized","status":401}`,
			respHeader: map[string]string{"WWW-Authenticate": `Bearer realm="eventshop-admin"`}},
		{name: "an unknown route answered 404", method: "GET", path: "/shipments", status: 404, contentType: problem, respBody: notFound("not-found")},
		{name: "an unknown route answered 200", method: "GET", path: "/shipments", status: 200, contentType: orderJSON,
			respBody: `{}`, wantErr: "has no operation in the document"},
		{name: "an unknown method answered 405", method: "DELETE", path: "/orders/o-1", status: 405, contentType: problem,
			respBody: `{"type":"urn:eventshop:problem:method-not-allowed","title":"Method Not Allowed","status":405}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			req := httptest.NewRequest(tt.method, "http://127.0.0.1:8080"+tt.path, strings.NewReader(tt.reqBody))
			for k, v := range tt.reqHeader {
				req.Header.Set(k, v)
			}
			resp := &http.Response{StatusCode: tt.status, Header: http.Header{"Content-Type": {tt.contentType}}, Request: req}
			for k, v := range tt.respHeader {
				resp.Header.Set(k, v)
			}
			err := c.Check(req, []byte(tt.reqBody), resp, []byte(tt.respBody))
			switch {
			case tt.wantErr == "" && err != nil:
				t.Fatalf("Check = %v, want nil", err)
			case tt.wantErr != "" && (!errors.Is(err, apitest.ErrUndocumented) || !strings.Contains(err.Error(), tt.wantErr)):
				t.Fatalf("Check = %v, want ErrUndocumented naming %q", err, tt.wantErr)
			}
		})
	}
}

// recorder is a test that keeps what it is told to report.
type recorder struct {
	testing.TB
	mu   sync.Mutex
	errs []string
}

func (r *recorder) Errorf(format string, args ...any) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.errs = append(r.errs, fmt.Sprintf(format, args...))
}

// TestProxyFailsTheTest runs calls through the proxy to a server that
// answers the order routes, once as documented, once with a field renamed.
func TestProxyFailsTheTest(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		respBody string
		wantErrs int
	}{
		{"as documented", order, 0},
		{"a field renamed", strings.Replace(order, `"updated_at"`, `"modified_at"`, 1), 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			svc := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
				w.Header().Set("Content-Type", orderJSON)
				io.WriteString(w, tt.respBody)
			}))
			t.Cleanup(svc.Close)
			rec := &recorder{TB: t}
			base := apitest.Proxy(rec, openapi.Order, strings.TrimPrefix(svc.URL, "http://"))
			resp, err := http.Get(base + "/orders/o-1")
			if err != nil {
				t.Fatal(err)
			}
			got, err := io.ReadAll(resp.Body)
			resp.Body.Close()
			if err != nil || string(got) != tt.respBody {
				t.Fatalf("body through the proxy = %s, %v; want the service's", got, err)
			}
			rec.mu.Lock()
			defer rec.mu.Unlock()
			if len(rec.errs) != tt.wantErrs {
				t.Fatalf("reported %q, want %d errors", rec.errs, tt.wantErrs)
			}
		})
	}
}
