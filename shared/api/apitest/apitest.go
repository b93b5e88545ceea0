// Package apitest holds a service's live HTTP traffic to its OpenAPI
// document in tests. A component test runs its calls through Proxy (or a
// client with Transport), and every request and response is validated
// against the document with libopenapi-validator: an undocumented route,
// status, header or field, or a body its schema refuses, fails the test.
//
// A request the document refuses (a test of the service's own checks) must
// be answered with a documented 4xx problem; one to a route the document
// does not have, with the server's 404 or 405 problem.
package apitest

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strings"
	"sync"
	"testing"

	"github.com/pb33f/libopenapi"
	validator "github.com/pb33f/libopenapi-validator"
	"github.com/pb33f/libopenapi-validator/config"
	verrors "github.com/pb33f/libopenapi-validator/errors"
	"github.com/pb33f/libopenapi-validator/helpers"

	"github.com/eventshop/shared/api"
	"github.com/eventshop/shared/api/openapi"
)

// ErrUndocumented marks an exchange the document does not describe.
var ErrUndocumented = errors.New("not what the OpenAPI document describes")

// Checker validates exchanges with one service against its document. It is
// safe for concurrent use.
type Checker struct {
	mu sync.Mutex // the validator's caches are not documented as safe to share
	v  validator.Validator
}

var (
	checkersMu sync.Mutex
	checkers   = map[openapi.Service]*Checker{}
)

// For returns the checker of the service's document, built once per test
// binary.
func For(s openapi.Service) (*Checker, error) {
	checkersMu.Lock()
	defer checkersMu.Unlock()
	if c, ok := checkers[s]; ok {
		return c, nil
	}
	raw, err := openapi.Document(s)
	if err != nil {
		return nil, err
	}
	c, err := New(raw)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", s, err)
	}
	checkers[s] = c
	return c, nil
}

// New returns a checker of the document raw. A query parameter or header
// the document does not declare is an error (W3C trace context may come
// with any request), and so is a body property: the documents close every
// object they describe (additionalProperties: false), so the schemas
// themselves refuse an undocumented field, while a map or a free-form
// payload stays open. Formats (date-time, uuid) are asserted.
func New(raw []byte) (*Checker, error) {
	doc, err := libopenapi.NewDocument(raw)
	if err != nil {
		return nil, fmt.Errorf("parse document: %w", err)
	}
	v, errs := validator.NewValidator(doc, config.WithStrictMode(), config.WithStrictIgnorePaths("$.body.**"),
		config.WithFormatAssertions(), config.WithStrictIgnoredHeadersExtra("traceparent", "tracestate"))
	if len(errs) > 0 {
		return nil, fmt.Errorf("build validator: %w", errors.Join(errs...))
	}
	return &Checker{v: v}, nil
}

// Check returns why the exchange is not one the document describes, or
// nil. req's body is reqBody; resp's is respBody (both already read).
func (c *Checker) Check(req *http.Request, reqBody []byte, resp *http.Response, respBody []byte) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	req = withBody(req, reqBody)
	reqOK, reqErrs := c.v.ValidateHttpRequestSync(req)
	if unrouted(reqErrs) {
		// The server's own answer to a route it does not have.
		if err := routeProblem(resp, respBody); err != nil {
			return fmt.Errorf("%w: %s %s has no operation in the document, and %w", ErrUndocumented, req.Method, req.URL.Path, err)
		}
		return nil
	}
	if !reqOK && (resp.StatusCode < 400 || resp.StatusCode >= 500) {
		return fmt.Errorf("%w: the request is not one the document accepts (%s), yet the answer is %d",
			ErrUndocumented, describe(reqErrs), resp.StatusCode)
	}
	r := *resp
	r.Body = io.NopCloser(bytes.NewReader(respBody))
	if ok, errs := c.v.ValidateHttpResponse(withBody(req, reqBody), &r); !ok {
		return fmt.Errorf("%w: %s %s answered %d: %s", ErrUndocumented, req.Method, req.URL.Path, resp.StatusCode, describe(errs))
	}
	return nil
}

func withBody(req *http.Request, body []byte) *http.Request {
	r := req.Clone(req.Context())
	r.Body = io.NopCloser(bytes.NewReader(body))
	r.ContentLength = int64(len(body))
	return r
}

// unrouted reports whether the document has no operation for the request.
func unrouted(errs []*verrors.ValidationError) bool {
	for _, e := range errs {
		if e.ValidationType == helpers.PathValidation &&
			(e.ValidationSubType == helpers.ValidationMissing || e.ValidationSubType == helpers.ValidationMissingOperation) {
			return true
		}
	}
	return false
}

// routeProblem checks the server's answer to a route it does not serve:
// 404 not-found or 405 method-not-allowed, as a problem.
func routeProblem(resp *http.Response, body []byte) error {
	want := map[int]string{http.StatusNotFound: "not-found", http.StatusMethodNotAllowed: "method-not-allowed"}[resp.StatusCode]
	if want == "" {
		return fmt.Errorf("the answer is %d, not the server's 404 or 405", resp.StatusCode)
	}
	if mt, _, _ := mime.ParseMediaType(resp.Header.Get("Content-Type")); mt != "application/problem+json" {
		return fmt.Errorf("the %d is %q, not a problem", resp.StatusCode, mt)
	}
	var p api.Problem
	if err := json.Unmarshal(body, &p); err != nil || p.Type != api.ProblemType(want) || p.Status != resp.StatusCode {
		return fmt.Errorf("the %d problem is %s, want type %s", resp.StatusCode, body, api.ProblemType(want))
	}
	return nil
}

func describe(errs []*verrors.ValidationError) string {
	var b strings.Builder
	for i, e := range errs {
		if i > 0 {
			b.WriteString("; ")
		}
		b.WriteString(e.Message)
		if e.Reason != "" && e.Reason != e.Message {
			b.WriteString(" (" + e.Reason + ")")
		}
		for _, f := range e.SchemaValidationErrors {
			fmt.Fprintf(&b, " [%s %s]", f.FieldPath, f.Reason)
		}
	}
	return b.String()
}

// Transport returns a RoundTripper that sends each request through next
// (http.DefaultTransport if nil) and fails t on every exchange the
// service's document does not describe.
func Transport(t testing.TB, s openapi.Service, next http.RoundTripper) http.RoundTripper {
	t.Helper()
	c, err := For(s)
	if err != nil {
		t.Fatal(err)
	}
	if next == nil {
		next = http.DefaultTransport
	}
	return &transport{t: t, c: c, next: next}
}

type transport struct {
	t    testing.TB
	c    *Checker
	next http.RoundTripper
}

func (tr *transport) RoundTrip(req *http.Request) (*http.Response, error) {
	var reqBody []byte
	if req.Body != nil {
		var err error
		if reqBody, err = io.ReadAll(req.Body); err != nil {
			return nil, err
		}
		req.Body.Close()
		req = withBody(req, reqBody)
	}
	resp, err := tr.next.RoundTrip(req)
	if err != nil {
		return nil, err
	}
	respBody, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		return nil, err
	}
	resp.Body = io.NopCloser(bytes.NewReader(respBody))
	if err := tr.c.Check(req, reqBody, resp, respBody); err != nil {
		tr.t.Errorf("%s %s: %v\nresponse body: %.2000s", req.Method, req.URL.RequestURI(), err, respBody)
	}
	return resp, nil
}

// Proxy starts a reverse proxy to the service listening on addr and
// returns its base URL ("http://127.0.0.1:port"). Every exchange through
// it is checked like Transport's; it stops when the test ends. A harness
// that hands its tests this URL instead of the service's own has every call
// of every test validated, whatever client the test uses.
func Proxy(t testing.TB, s openapi.Service, addr string) string {
	t.Helper()
	target := &url.URL{Scheme: "http", Host: addr}
	rp := &httputil.ReverseProxy{
		Rewrite:   func(r *httputil.ProxyRequest) { r.SetURL(target) },
		Transport: Transport(t, s, http.DefaultTransport.(*http.Transport).Clone()),
	}
	srv := httptest.NewServer(rp)
	t.Cleanup(srv.Close)
	return srv.URL
}

// ServesDocument fails t unless the service at base answers GET
// /openapi.json with its document.
func ServesDocument(t testing.TB, base string, s openapi.Service) {
	t.Helper()
	want, err := openapi.Document(s)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.Get(base + "/openapi.json")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	got, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusOK || !bytes.Equal(got, want) {
		t.Fatalf("GET /openapi.json = %d, %d bytes; want 200 and the %s document (%d bytes)", resp.StatusCode, len(got), s, len(want))
	}
}
