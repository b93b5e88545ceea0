package e2e

import (
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"

	"github.com/eventshop/shared/api"
	"github.com/eventshop/shared/platform/trace"
	"github.com/eventshop/tools/stack"
)

// TestOneOrderIsOneTrace is issue 10's check: every process exports its
// spans to a real OTLP endpoint (the receiver the harness starts); one
// order is posted; the trace named by the 202's traceparent holds spans
// of the five services and the gateway simulator, with one root (the
// order service's server span), no span whose parent is missing, and every
// published event consumed inside the trace. Every log line about the
// order carries the same trace id.
func TestOneOrderIsOneTrace(t *testing.T) {
	sku := uniq("TRACE")
	putSKU(t, sku, 500, 10)
	var resp api.OrderAccepted
	code, hdr := call(t, http.MethodPost, sys.urls["order-service"]+"/orders",
		api.CreateOrderRequest{CustomerID: uniq("c"), Items: []api.Item{{SKU: sku, Quantity: 1}}, PaymentToken: "tok_visa"}, nil, &resp)
	if code != http.StatusAccepted || resp.OrderID == "" {
		t.Fatalf("POST /orders = %d %+v", code, resp)
	}
	tp, err := trace.Parse(hdr.Get("traceparent"))
	if err != nil {
		t.Fatalf("202 traceparent: %v", err)
	}
	o := waitFinal(t, resp.OrderID, 20*time.Second)
	checkSaga(t, o, "CONFIRMED", confirmedTypes...)

	services := make([]string, 0, len(stack.Specs))
	for _, s := range stack.Specs {
		services = append(services, s.Name)
	}
	var (
		spans                    []receivedSpan
		missing                  []string
		roots, orphans, unheard  []receivedSpan
		auditAppends, deliveries int
	)
	// Spans arrive as each process flushes (every 100 ms here): wait until
	// the trace is whole.
	deadline := time.Now().Add(30 * time.Second)
	for {
		spans = sys.otlp.Trace(tp.TraceID)
		missing, roots, orphans = traceShape(spans, services)
		unheard, auditAppends, deliveries = unconsumed(spans)
		if len(missing) == 0 && len(roots) == 1 && len(orphans) == 0 && len(unheard) == 0 && auditAppends >= len(confirmedTypes) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("trace %s after 30s: missing services %v, roots %v, orphans %v, events nobody consumed %v, %d audit appends of %d events (receiver errors %v); spans:\n%s",
				tp.TraceID, missing, roots, orphans, unheard, auditAppends, len(confirmedTypes), sys.otlp.Errors(), describeTrace(spans))
		}
		time.Sleep(100 * time.Millisecond)
	}
	root := roots[0]
	if root.Service != "order-service" || root.Kind != tracepb.Span_SPAN_KIND_SERVER || root.SpanID != tp.SpanID {
		t.Errorf("root %v, want order-service's server span %s (the 202's traceparent)", root, tp.SpanID)
	}
	kinds := map[string]map[tracepb.Span_SpanKind]bool{}
	for _, s := range spans {
		if kinds[s.Service] == nil {
			kinds[s.Service] = map[tracepb.Span_SpanKind]bool{}
		}
		kinds[s.Service][s.Kind] = true
	}
	if !kinds["payment-service"][tracepb.Span_SPAN_KIND_CLIENT] || !kinds["payment-gateway"][tracepb.Span_SPAN_KIND_SERVER] {
		t.Errorf("no gateway call span (payment-service client, gateway server): %v", kinds)
	}
	t.Logf("trace %s: %d spans, %d deliveries, %d audit appends", tp.TraceID, len(spans), deliveries, auditAppends)

	checkLogTraceIDs(t, resp.OrderID, tp.TraceID)
}

// unconsumed returns the PRODUCER spans with no CONSUMER child (an event
// that left the trace), and counts the CONSUMER spans, the audit
// service's apart: audit consumes every event.
func unconsumed(spans []receivedSpan) (unheard []receivedSpan, auditAppends, deliveries int) {
	consumed := map[string]bool{}
	for _, s := range spans {
		if s.Kind == tracepb.Span_SPAN_KIND_CONSUMER {
			consumed[s.Parent] = true
			deliveries++
			if s.Service == "audit-service" {
				auditAppends++
			}
		}
	}
	for _, s := range spans {
		if s.Kind == tracepb.Span_SPAN_KIND_PRODUCER && !consumed[s.SpanID] {
			unheard = append(unheard, s)
		}
	}
	return unheard, auditAppends, deliveries
}

// checkLogTraceIDs reads every service's log: each line about the order
// that names a trace must name this one. The access lines of the test's
// own reads (GET) are other requests, each its own trace, and are left out.
func checkLogTraceIDs(t *testing.T, orderID, traceID string) {
	t.Helper()
	lines := 0
	for _, spec := range stack.Specs {
		b, err := os.ReadFile(filepath.Join(sys.dir, spec.Name+".log"))
		if err != nil {
			t.Fatal(err)
		}
		for line := range strings.Lines(string(b)) {
			if !strings.Contains(line, orderID) {
				continue
			}
			var entry struct {
				Msg     string `json:"msg"`
				Method  string `json:"method"`
				OrderID string `json:"order_id"`
				TraceID string `json:"trace_id"`
			}
			if json.Unmarshal([]byte(line), &entry) != nil || entry.OrderID != orderID || entry.TraceID == "" ||
				(entry.Msg == "http request" && entry.Method == http.MethodGet) {
				continue
			}
			lines++
			if entry.TraceID != traceID {
				t.Errorf("%s logs trace_id %s for order %s, want %s: %s", spec.Name, entry.TraceID, orderID, traceID, line)
			}
		}
	}
	if lines == 0 {
		t.Errorf("no log line names order %s with a trace id", orderID)
	}
}
