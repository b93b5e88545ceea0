package httpserver_test

import (
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/gin-gonic/gin"
	"go.uber.org/zap"

	"github.com/eventshop/shared/platform/tracing"
)

// With tracing off (no endpoint), a request still runs in a span context:
// the caller's trace when it sends a traceparent, a new trace otherwise.
// The logs, the 202's traceparent and the events carry these ids.
func TestRequestsCarryTraceIDsWithTracingOff(t *testing.T) {
	tp, err := tracing.Setup(tracing.Config{}, "test", zap.NewNop())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = tp.Shutdown(t.Context()) })
	if tracing.Recording() {
		t.Fatal("a provider without an endpoint says it records")
	}
	s := newServer(t)
	var seen string
	s.Engine.GET("/trace", func(c *gin.Context) {
		seen = tracing.TraceID(c.Request.Context())
		c.Status(http.StatusNoContent)
	})
	get := func(traceparent string) string {
		t.Helper()
		seen = ""
		req := httptest.NewRequest(http.MethodGet, "/trace", nil)
		if traceparent != "" {
			req.Header.Set("traceparent", traceparent)
		}
		w := httptest.NewRecorder()
		s.Engine.ServeHTTP(w, req)
		if w.Code != http.StatusNoContent {
			t.Fatalf("status %d", w.Code)
		}
		return seen
	}
	const caller = "4bf92f3577b34da6a3ce929d0e0e4736"
	if got := get("00-" + caller + "-00f067aa0ba902b7-01"); got != caller {
		t.Errorf("trace id with the caller's traceparent = %q, want %q", got, caller)
	}
	first, second := get(""), get("")
	if first == "" || second == "" || first == second {
		t.Errorf("requests without a traceparent got trace ids %q and %q, want two new ones", first, second)
	}
}
