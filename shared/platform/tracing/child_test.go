package tracing_test

import (
	"context"
	"errors"
	"testing"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	"github.com/eventshop/shared/platform/tracing"
)

// Inside a recorded span, StartKV and StartStream make CLIENT children of
// it on the same provider, with the database attributes; Fail records the
// error on the child only.
func TestStartChildInsideARecordedSpan(t *testing.T) {
	t.Parallel()
	rec := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec))
	ctx, parent := tp.Tracer("test").Start(context.Background(), "process orders.*.created")

	kctx, kv := tracing.StartKV(ctx, "test/store", "orders", "get", "order.o-1")
	if !trace.SpanFromContext(kctx).SpanContext().Equal(kv.SpanContext()) {
		t.Error("the returned context does not hold the child span")
	}
	kv.End()
	_, st := tracing.StartStream(ctx, "test/store", "ORDERS", "get_last", "orders.o-1.*")
	tracing.Fail(st, errors.New("nats: timeout"))
	st.End()
	parent.End()

	spans := rec.Ended()
	if len(spans) != 3 {
		t.Fatalf("%d spans ended, want the two children and the parent", len(spans))
	}
	for _, c := range []struct {
		span   sdktrace.ReadOnlySpan
		name   string
		want   map[attribute.Key]string
		failed bool
	}{
		{spans[0], "kv get orders", map[attribute.Key]string{
			tracing.AttrDBSystem: "nats-kv", tracing.AttrDBNamespace: "orders", tracing.AttrDBOperation: "get", tracing.AttrKVKey: "order.o-1",
		}, false},
		{spans[1], "stream get_last ORDERS", map[attribute.Key]string{
			tracing.AttrDBSystem: "nats-jetstream", tracing.AttrDBNamespace: "ORDERS", tracing.AttrDBOperation: "get_last",
			tracing.AttrStreamSubject: "orders.o-1.*",
		}, true},
	} {
		s := c.span
		if s.Name() != c.name || s.SpanKind() != trace.SpanKindClient || s.Parent().SpanID() != parent.SpanContext().SpanID() ||
			s.SpanContext().TraceID() != parent.SpanContext().TraceID() || s.InstrumentationScope().Name != "test/store" {
			t.Errorf("span %q kind %s parent %s scope %q, want %q, a CLIENT child of %s in scope test/store",
				s.Name(), s.SpanKind(), s.Parent().SpanID(), s.InstrumentationScope().Name, c.name, parent.SpanContext().SpanID())
		}
		got := map[attribute.Key]string{}
		for _, kv := range s.Attributes() {
			got[kv.Key] = kv.Value.Emit()
		}
		for k, v := range c.want {
			if got[k] != v {
				t.Errorf("%s: %s = %q, want %q", s.Name(), k, got[k], v)
			}
		}
		if failed := s.Status().Code == codes.Error && len(s.Events()) == 1; failed != c.failed {
			t.Errorf("%s: status %v, events %v, want failed %v", s.Name(), s.Status(), s.Events(), c.failed)
		}
	}
	if spans[2].Status().Code == codes.Error {
		t.Error("Fail on the child marked the parent failed")
	}
}

// Outside a recorded span (tracing off: the provider never samples; or no
// span at all) nothing is started: the context comes back as it was, the
// span does nothing, and it costs no allocation. (Not parallel:
// testing.AllocsPerRun refuses to run beside other tests.)
func TestStartChildOutsideARecordedSpanIsFree(t *testing.T) {
	off, err := tracing.NewProvider(tracing.Config{}, "order-service")
	if err != nil {
		t.Fatal(err)
	}
	unsampled, parent := off.TracerProvider().Tracer("test").Start(context.Background(), "process orders.*.created")
	defer parent.End()
	if parent.IsRecording() || !parent.SpanContext().IsValid() {
		t.Fatal("a provider without an endpoint should give spans with ids that are not recorded")
	}
	for name, ctx := range map[string]context.Context{"unsampled span": unsampled, "no span": context.Background()} {
		got, span := tracing.StartKV(ctx, "test/store", "orders", "get", "order.o-1")
		if got != ctx || span.IsRecording() || span.SpanContext().IsValid() {
			t.Errorf("%s: StartKV gave a new context or a span with ids (%v)", name, span.SpanContext())
		}
		span.End()
		if allocs := testing.AllocsPerRun(100, func() {
			_, s := tracing.StartKV(ctx, "test/store", "orders", "get", "order.o-1")
			tracing.Fail(s, errBoom)
			s.End()
			_, s = tracing.StartStream(ctx, "test/store", "ORDERS", "get_last", "orders.o-1.*")
			s.End()
		}); allocs != 0 {
			t.Errorf("%s: %v allocations per KV and stream span, want 0", name, allocs)
		}
	}
}

var errBoom = errors.New("boom")
