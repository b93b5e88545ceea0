package httpserver_test

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/gin-gonic/gin"
	"go.uber.org/zap"

	"github.com/eventshop/shared/platform/httpserver"
	"github.com/eventshop/shared/platform/metrics"
	"github.com/eventshop/shared/platform/problem"
)

var errMissing = errors.New("missing")

func newServer(t *testing.T) *httpserver.Server {
	t.Helper()
	s, err := httpserver.New(httpserver.Config{Addr: "127.0.0.1:0", Service: "test"}, zap.NewNop(), metrics.NewRegistry("test"),
		func(err error) problem.Problem {
			if errors.Is(err, errMissing) {
				return problem.New(http.StatusNotFound, "missing", err.Error())
			}
			return problem.Internal()
		})
	if err != nil {
		t.Fatal(err)
	}
	s.Engine.GET("/thing", func(c *gin.Context) { _ = c.Error(errMissing) })
	s.Engine.GET("/boom", func(c *gin.Context) { panic("boom") })
	s.Engine.GET("/admin", httpserver.BearerAuth("tok"), func(c *gin.Context) { c.Status(http.StatusNoContent) })
	return s
}

func TestResponses(t *testing.T) {
	t.Parallel()
	s := newServer(t)
	ready := true
	s.AddReadyCheck("dep", func(context.Context) error {
		if !ready {
			return errors.New("dep down")
		}
		return nil
	})
	tests := []struct {
		name, method, path, auth string
		wantStatus               int
		wantProblem              string
	}{
		{name: "health", method: "GET", path: "/health", wantStatus: 200},
		{name: "ready", method: "GET", path: "/ready", wantStatus: 200},
		{name: "metrics", method: "GET", path: "/metrics", wantStatus: 200},
		{name: "mapped error", method: "GET", path: "/thing", wantStatus: 404, wantProblem: "urn:eventshop:problem:missing"},
		{name: "panic", method: "GET", path: "/boom", wantStatus: 500, wantProblem: "urn:eventshop:problem:internal"},
		{name: "no route", method: "GET", path: "/nope", wantStatus: 404, wantProblem: "urn:eventshop:problem:not-found"},
		{name: "wrong method", method: "POST", path: "/thing", wantStatus: 405, wantProblem: "urn:eventshop:problem:method-not-allowed"},
		{name: "admin without token", method: "GET", path: "/admin", wantStatus: 401, wantProblem: "urn:eventshop:problem:unauthorized"},
		{name: "admin wrong token", method: "GET", path: "/admin", auth: "Bearer nope", wantStatus: 401, wantProblem: "urn:eventshop:problem:unauthorized"},
		{name: "admin", method: "GET", path: "/admin", auth: "Bearer tok", wantStatus: 204},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req := httptest.NewRequest(tt.method, tt.path, nil)
			if tt.auth != "" {
				req.Header.Set("Authorization", tt.auth)
			}
			w := httptest.NewRecorder()
			s.Engine.ServeHTTP(w, req)
			if w.Code != tt.wantStatus {
				t.Fatalf("status = %d, want %d (%s)", w.Code, tt.wantStatus, w.Body)
			}
			if tt.wantProblem == "" {
				return
			}
			if ct := w.Header().Get("Content-Type"); !strings.HasPrefix(ct, problem.ContentType) {
				t.Fatalf("Content-Type = %q", ct)
			}
			var p problem.Problem
			if err := json.Unmarshal(w.Body.Bytes(), &p); err != nil {
				t.Fatal(err)
			}
			if p.Type != tt.wantProblem || p.Status != tt.wantStatus || p.Instance != tt.path {
				t.Fatalf("problem = %+v", p)
			}
		})
	}
	s.AddReadyInfo("breaker", func() string { return "open" })
	w0 := httptest.NewRecorder()
	s.Engine.ServeHTTP(w0, httptest.NewRequest("GET", "/ready", nil))
	if w0.Code != http.StatusOK || !strings.Contains(w0.Body.String(), `"info":{"breaker":"open"}`) {
		t.Fatalf("ready with info = %d %s", w0.Code, w0.Body)
	}
	ready = false
	w := httptest.NewRecorder()
	s.Engine.ServeHTTP(w, httptest.NewRequest("GET", "/ready", nil))
	if w.Code != http.StatusServiceUnavailable || !strings.Contains(w.Body.String(), "dep down") {
		t.Fatalf("ready while dep down = %d %s", w.Code, w.Body)
	}
}

// TestProfiler: the profiler is served only when configured, and only with
// the token.
func TestProfiler(t *testing.T) {
	t.Parallel()
	mapErr := func(error) problem.Problem { return problem.Internal() }
	on, err := httpserver.New(httpserver.Config{Addr: "127.0.0.1:0", Service: "test", ProfileToken: "tok"}, zap.NewNop(), metrics.NewRegistry("test"), mapErr)
	if err != nil {
		t.Fatal(err)
	}
	off := newServer(t)
	for _, tt := range []struct {
		name string
		srv  *httpserver.Server
		auth string
		want int
	}{
		{"on, with token", on, "Bearer tok", 200},
		{"on, no token", on, "", 401},
		{"off", off, "Bearer tok", 404},
	} {
		req := httptest.NewRequest("GET", "/debug/pprof/goroutine?debug=1", nil)
		if tt.auth != "" {
			req.Header.Set("Authorization", tt.auth)
		}
		w := httptest.NewRecorder()
		tt.srv.Engine.ServeHTTP(w, req)
		if w.Code != tt.want {
			t.Errorf("%s: GET /debug/pprof/goroutine = %d, want %d", tt.name, w.Code, tt.want)
		}
		if tt.want == 200 && !strings.Contains(w.Body.String(), "goroutine profile") {
			t.Errorf("%s: body is not a goroutine profile: %.100s", tt.name, w.Body.String())
		}
	}
}

// TestInFlightLimit: with n requests in progress the next one is shed with
// 503 problem+json and Retry-After; once one finishes, requests pass again.
func TestInFlightLimit(t *testing.T) {
	t.Parallel()
	s := newServer(t)
	release := make(chan struct{})
	entered := make(chan struct{}, 2)
	s.Engine.GET("/slow", httpserver.InFlightLimit(2), func(c *gin.Context) {
		entered <- struct{}{}
		<-release
		c.Status(http.StatusNoContent)
	})
	srv := httptest.NewServer(s.Engine)
	defer srv.Close()
	results := make(chan int, 2)
	for range 2 {
		go func() {
			resp, err := http.Get(srv.URL + "/slow")
			if err != nil {
				results <- 0
				return
			}
			resp.Body.Close()
			results <- resp.StatusCode
		}()
	}
	<-entered
	<-entered
	resp, err := http.Get(srv.URL + "/slow")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusServiceUnavailable || resp.Header.Get("Retry-After") != "1" ||
		!strings.HasPrefix(resp.Header.Get("Content-Type"), problem.ContentType) {
		t.Fatalf("third request = %d, Retry-After %q, %s; want 503 problem with Retry-After 1",
			resp.StatusCode, resp.Header.Get("Retry-After"), resp.Header.Get("Content-Type"))
	}
	close(release)
	for range 2 {
		if code := <-results; code != http.StatusNoContent {
			t.Fatalf("admitted request = %d, want 204", code)
		}
	}
	resp, err = http.Get(srv.URL + "/slow") // release is closed: passes at once
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNoContent {
		t.Fatalf("request after the others finished = %d, want 204", resp.StatusCode)
	}
}
