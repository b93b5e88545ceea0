package tracecheck

import (
	"strings"
	"testing"
)

// A response of Jaeger's query API, cut down: a root in order-service, a
// child in inventory-service, and a span whose parent never arrived.
const sample = `{"data":[{"traceID":"t1","spans":[
 {"spanID":"a","operationName":"POST /orders","references":[],"startTime":1000,"duration":500,"processID":"p1"},
 {"spanID":"b","operationName":"process orders.*.created","references":[{"refType":"CHILD_OF","traceID":"t1","spanID":"a"},{"refType":"FOLLOWS_FROM","traceID":"t0","spanID":"z"}],"startTime":1200,"duration":100,"processID":"p2"},
 {"spanID":"c","operationName":"process payments.*.succeeded","references":[{"refType":"CHILD_OF","traceID":"t1","spanID":"gone"}],"startTime":1400,"duration":50,"processID":"p1"}],
 "processes":{"p1":{"serviceName":"order-service"},"p2":{"serviceName":"inventory-service"}}}]}`

func TestShapeFindsMissingServicesRootsAndOrphans(t *testing.T) {
	tr, err := decode("t1", []byte(sample))
	if err != nil {
		t.Fatal(err)
	}
	sh := ShapeOf(tr, []string{"order-service", "inventory-service", "audit-service"})
	if sh.Whole() {
		t.Fatal("a trace missing a service and holding an orphan is called whole")
	}
	if len(sh.MissingServices) != 1 || sh.MissingServices[0] != "audit-service" {
		t.Errorf("missing services %v, want [audit-service]", sh.MissingServices)
	}
	if len(sh.Roots) != 1 || sh.Roots[0].SpanID != "a" {
		t.Errorf("roots %v, want span a", sh.Roots)
	}
	if len(sh.Orphans) != 1 || sh.Orphans[0].SpanID != "c" {
		t.Errorf("orphans %v, want span c", sh.Orphans)
	}
	whole := ShapeOf(Trace{ID: "t1", Spans: tr.Spans[:2]}, []string{"order-service", "inventory-service"})
	if !whole.Whole() {
		t.Errorf("a root and its child: %s, want whole", whole)
	}
	s := Summary(tr)
	if !strings.Contains(s, "3 spans") || !strings.Contains(s, "  inventory-service: process orders.*.created") {
		t.Errorf("summary:\n%s", s)
	}
}

func TestAnEmptyAnswerIsNotFound(t *testing.T) {
	if _, err := decode("t1", []byte(`{"data":[]}`)); err == nil || !strings.Contains(err.Error(), "not found") {
		t.Errorf("empty answer: %v, want not found", err)
	}
}

// A consumer span whose parent is also its link: Jaeger's OTLP translator
// gives that one reference the link's type, FOLLOWS_FROM (as served by
// Jaeger v1.75.0). It is still the span's parent, not a second root.
func TestAParentThatIsAlsoALinkIsTheParent(t *testing.T) {
	const body = `{"data":[{"traceID":"t1","spans":[
 {"spanID":"a","operationName":"send orders.*.created","references":[],"startTime":1000,"duration":500,"processID":"p1"},
 {"spanID":"b","operationName":"process orders.*.created","references":[{"refType":"FOLLOWS_FROM","traceID":"t1","spanID":"a"}],"startTime":1200,"duration":100,"processID":"p2"},
 {"spanID":"c","operationName":"process orders.*.created","references":[{"refType":"FOLLOWS_FROM","traceID":"t0","spanID":"z"}],"startTime":1300,"duration":100,"processID":"p2"}],
 "processes":{"p1":{"serviceName":"order-service"},"p2":{"serviceName":"inventory-service"}}}]}`
	tr, err := decode("t1", []byte(body))
	if err != nil {
		t.Fatal(err)
	}
	sh := ShapeOf(tr, []string{"order-service", "inventory-service"})
	if len(sh.Roots) != 2 || sh.Roots[0].SpanID != "a" || sh.Roots[1].SpanID != "c" {
		t.Errorf("roots %v, want a and c (c only links to another trace)", sh.Roots)
	}
}
