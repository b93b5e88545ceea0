package channel_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"go.opentelemetry.io/otel/codes"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"
	"go.uber.org/zap"

	"github.com/eventshop/notification-service/internal/channel"
	"github.com/eventshop/shared/platform/tracing"
)

// TestWebhookCallsAreClientSpans: inside the consumer's recorded span,
// each attempt to deliver is a CLIENT span, child of it, a failed answer
// marked failed, and the receiver gets that attempt's span as the parent
// of its own (traceparent).
func TestWebhookCallsAreClientSpans(t *testing.T) {
	t.Parallel()
	rcv := &receiver{statuses: []int{http.StatusServiceUnavailable, http.StatusOK}}
	srv := httptest.NewServer(rcv)
	t.Cleanup(srv.Close)
	wh, err := channel.NewWebhook(srv.URL, "s3cret", zap.NewNop(), channel.WithRetry(5*time.Millisecond, time.Second))
	if err != nil {
		t.Fatal(err)
	}
	rec := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec))
	ctx, consumerSpan := tp.Tracer("test").Start(context.Background(), "process orders.*.confirmed", trace.WithSpanKind(trace.SpanKindConsumer))
	if err := wh.Send(ctx, testNotification()); err != nil {
		t.Fatal(err)
	}
	consumerSpan.End()

	spans := rec.Ended()
	if len(spans) != 3 {
		t.Fatalf("%d spans, want one per attempt (2) and the consumer's", len(spans))
	}
	rcv.mu.Lock()
	defer rcv.mu.Unlock()
	for i, s := range spans[:2] {
		if s.SpanKind() != trace.SpanKindClient || s.Parent().SpanID() != consumerSpan.SpanContext().SpanID() ||
			s.SpanContext().TraceID() != consumerSpan.SpanContext().TraceID() {
			t.Errorf("attempt %d: span %q kind %s parent %s, want a CLIENT child of the consumer's span", i+1, s.Name(), s.SpanKind(), s.Parent().SpanID())
		}
		if got, want := rcv.headers[i].Get("traceparent"), tracing.Traceparent(s.SpanContext()); got != want {
			t.Errorf("attempt %d: the receiver got traceparent %q, want its span's %q", i+1, got, want)
		}
	}
	if spans[0].Status().Code != codes.Error || spans[1].Status().Code == codes.Error {
		t.Errorf("statuses %v, %v: want the 503 failed and the 200 not", spans[0].Status(), spans[1].Status())
	}
}

// TestWebhookWithoutRecordedSpanKeepsTheOrdersTrace: with tracing off (or
// the order not sampled) no span is made; the receiver still gets the
// order's trace id, under one span id for every attempt.
func TestWebhookWithoutRecordedSpanKeepsTheOrdersTrace(t *testing.T) {
	t.Parallel()
	rcv := &receiver{statuses: []int{http.StatusServiceUnavailable, http.StatusOK}}
	srv := httptest.NewServer(rcv)
	t.Cleanup(srv.Close)
	wh, err := channel.NewWebhook(srv.URL, "s3cret", zap.NewNop(), channel.WithRetry(5*time.Millisecond, time.Second))
	if err != nil {
		t.Fatal(err)
	}
	off, err := tracing.NewProvider(tracing.Config{}, "notification-service")
	if err != nil {
		t.Fatal(err)
	}
	ctx, consumerSpan := off.TracerProvider().Tracer("test").Start(context.Background(), "process orders.*.confirmed")
	defer consumerSpan.End()
	n := testNotification()
	if err := wh.Send(ctx, n); err != nil {
		t.Fatal(err)
	}
	rcv.mu.Lock()
	defer rcv.mu.Unlock()
	if len(rcv.headers) != 2 {
		t.Fatalf("%d calls, want 2", len(rcv.headers))
	}
	first := rcv.headers[0].Get("traceparent")
	if len(first) != 55 || first[3:35] != n.TraceID || rcv.headers[1].Get("traceparent") != first {
		t.Fatalf("traceparents %q and %q, want the same one in trace %s", first, rcv.headers[1].Get("traceparent"), n.TraceID)
	}
}
