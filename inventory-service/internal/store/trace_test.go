package store_test

import (
	"context"
	"errors"
	"testing"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	"github.com/eventshop/inventory-service/internal/stock"
)

// TestKVOperationsAreChildSpans: inside a handler's recorded span, each
// read and compare-and-set write of the inventory bucket is a CLIENT child
// of it, with the key and the revision, a lost compare-and-set marked as
// such (an answer, not a failure). (A cached item read is an event on the
// handler's span instead: reservation's TestCacheHitIsASpanEvent.)
func TestKVOperationsAreChildSpans(t *testing.T) {
	t.Parallel()
	s, _ := open(t)
	seed(t, s, "MUG", 5)
	rec := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec))
	ctx, handler := tp.Tracer("test").Start(context.Background(), "process orders.*.created", trace.WithSpanKind(trace.SpanKindConsumer))

	it, rev, err := s.Item(ctx, "MUG")
	if err != nil {
		t.Fatal(err)
	}
	it.Available--
	if _, err := s.UpdateItem(ctx, it, rev); err != nil {
		t.Fatal(err)
	}
	if _, err := s.UpdateItem(ctx, it, rev); !errors.Is(err, stock.ErrConflict) { // the revision it was read at: lost
		t.Fatalf("update at a stale revision = %v, want ErrConflict", err)
	}
	if _, _, err := s.Reservation(ctx, "o-1"); !errors.Is(err, stock.ErrNoReservation) {
		t.Fatal(err)
	}
	if err := s.CreateReservation(ctx, stock.Reservation{OrderID: "o-1", Status: stock.StatusReserved}); err != nil {
		t.Fatal(err)
	}
	if _, _, err := s.Reservation(ctx, "o-1"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Items(ctx); err != nil {
		t.Fatal(err)
	}
	handler.End()

	wants := []struct {
		name  string
		attrs map[attribute.Key]string
	}{
		{"kv get inventory", map[attribute.Key]string{"db.system.name": "nats-kv", "db.namespace": "inventory",
			"db.operation.name": "get", "nats.kv.key": "stock.MUG", "nats.kv.revision": "1"}},
		{"kv update inventory", map[attribute.Key]string{"nats.kv.key": "stock.MUG", "nats.kv.revision": "2"}},
		{"kv update inventory", map[attribute.Key]string{"nats.kv.key": "stock.MUG", "nats.kv.conflict": "true"}},
		{"kv leader_get inventory", map[attribute.Key]string{"nats.kv.key": "reservation.o-1", "nats.kv.not_found": "true"}},
		{"kv create inventory", map[attribute.Key]string{"nats.kv.key": "reservation.o-1", "nats.kv.revision": "3"}},
		{"kv leader_get inventory", map[attribute.Key]string{"nats.kv.key": "reservation.o-1", "nats.kv.revision": "3"}},
		{"kv watch inventory", map[attribute.Key]string{"nats.kv.key": "stock.>", "nats.kv.entries": "1"}},
	}
	spans := rec.Ended()
	if len(spans) != len(wants)+1 {
		var names []string
		for _, sp := range spans {
			names = append(names, sp.Name())
		}
		t.Fatalf("spans %v, want %d children of the handler's span and the span", names, len(wants))
	}
	for i, w := range wants {
		sp := spans[i]
		if sp.Name() != w.name || sp.SpanKind() != trace.SpanKindClient || sp.Parent().SpanID() != handler.SpanContext().SpanID() {
			t.Errorf("span %d: %q kind %s parent %s, want %q, a CLIENT child of the handler's span", i, sp.Name(), sp.SpanKind(), sp.Parent().SpanID(), w.name)
			continue
		}
		got := map[attribute.Key]string{}
		for _, kv := range sp.Attributes() {
			got[kv.Key] = kv.Value.Emit()
		}
		for k, v := range w.attrs {
			if got[k] != v {
				t.Errorf("span %d %s: %s = %q, want %q", i, sp.Name(), k, got[k], v)
			}
		}
		if sp.Status().Code == codes.Error {
			t.Errorf("span %d %s failed (%s): nothing failed", i, sp.Name(), sp.Status().Description)
		}
	}
}
