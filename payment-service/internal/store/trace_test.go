package store_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"go.opentelemetry.io/otel/attribute"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	"github.com/eventshop/payment-service/internal/payment"
	"github.com/eventshop/payment-service/internal/store"
)

// TestKVOperationsAreChildSpansOnlyWhenRecorded: inside a handler's
// recorded span, each payments-bucket operation is a CLIENT child naming
// its key and what it found; outside one (tracing off, or a trace left
// out by the sampler) it starts no span at all.
func TestKVOperationsAreChildSpansOnlyWhenRecorded(t *testing.T) {
	t.Parallel()
	p, err := store.EnsurePayments(context.Background(), connect(t), 1)
	if err != nil {
		t.Fatal(err)
	}
	rec := tracetest.NewSpanRecorder()
	provider := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec))
	now := time.Date(2026, 12, 6, 10, 0, 0, 0, time.UTC)
	intent := payment.Record{OrderID: "o-1", Status: payment.StatusCharging, AmountCents: 2598, Currency: "USD", CreatedAt: now, UpdatedAt: now}

	// Not recording: the same operations, no span.
	off, offSpan := sdktrace.NewTracerProvider(sdktrace.WithSampler(sdktrace.NeverSample()), sdktrace.WithSpanProcessor(rec)).
		Tracer("test").Start(context.Background(), "process inventory.*.reserved")
	if _, err := p.Create(off, payment.Record{OrderID: "o-0", Status: payment.StatusCharging, AmountCents: 1, Currency: "USD", CreatedAt: now, UpdatedAt: now}); err != nil {
		t.Fatal(err)
	}
	offSpan.End()
	if n := len(rec.Ended()); n != 0 {
		t.Fatalf("%d spans recorded outside a recording span, want 0", n)
	}

	ctx, handler := provider.Tracer("test").Start(context.Background(), "process inventory.*.reserved",
		trace.WithSpanKind(trace.SpanKindConsumer))
	if _, err := p.Get(ctx, "o-1"); !errors.Is(err, payment.ErrNotFound) {
		t.Fatalf("Get = %v, want ErrNotFound", err)
	}
	if _, err := p.Create(ctx, intent); err != nil {
		t.Fatal(err)
	}
	if _, err := p.Create(ctx, intent); !errors.Is(err, payment.ErrConflict) {
		t.Fatalf("second Create = %v, want ErrConflict", err)
	}
	handler.End()

	wants := []struct {
		name  string
		attrs map[attribute.Key]string
	}{
		{"kv get payments", map[attribute.Key]string{"db.system.name": "nats-kv", "db.namespace": "payments", "nats.kv.key": "o-1", "nats.kv.not_found": "true"}},
		{"kv create payments", map[attribute.Key]string{"db.operation.name": "create", "nats.kv.key": "o-1", "nats.kv.revision": "2"}},
		{"kv create payments", map[attribute.Key]string{"nats.kv.conflict": "true"}},
	}
	spans := rec.Ended()
	if len(spans) != len(wants)+1 {
		t.Fatalf("%d spans, want %d children and the handler's span", len(spans), len(wants))
	}
	for i, w := range wants {
		s := spans[i]
		if s.Name() != w.name || s.SpanKind() != trace.SpanKindClient || s.Parent().SpanID() != handler.SpanContext().SpanID() {
			t.Errorf("span %d: %q kind %s, want %q, a CLIENT child of the handler's span", i, s.Name(), s.SpanKind(), w.name)
			continue
		}
		got := map[attribute.Key]string{}
		for _, kv := range s.Attributes() {
			got[kv.Key] = kv.Value.Emit()
		}
		for k, v := range w.attrs {
			if got[k] != v {
				t.Errorf("span %d %s: %s = %q, want %q", i, s.Name(), k, got[k], v)
			}
		}
		if s.Status().Code != 0 {
			t.Errorf("span %d %s: status %v, want unset: a conflict or a missing key is an answer", i, s.Name(), s.Status())
		}
	}
}
