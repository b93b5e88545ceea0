package runner_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	oteltrace "go.opentelemetry.io/otel/trace"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"

	"github.com/eventshop/shared/platform/runner"
)

// TestTracingOffStartsNoSpanAndKeepsTheTraceID: with the global tracer
// provider and no exporter (tracing.Setup never called), a delivery starts
// no span (the handler's context carries none: nothing is parsed or
// allocated for a span nobody exports), and the delivery's log line still
// (a retry) names the trace id of the message's traceparent.
func TestTracingOffStartsNoSpanAndKeepsTheTraceID(t *testing.T) {
	js, ctx := setup(t)
	core, logs := observer.New(zapcore.DebugLevel)
	m := runner.NewMetrics(prometheus.NewRegistry())
	seen := make(chan oteltrace.SpanContext, 2)
	r, err := runner.New(js, runner.Config{Stream: "T", Durable: "off", Concurrency: 1, MaxDeliver: 3,
		Retry: runner.Backoff{Initial: time.Millisecond, Max: time.Millisecond, Multiplier: 1}},
		func(ctx context.Context, msg jetstream.Msg) error {
			seen <- oteltrace.SpanContextFromContext(ctx)
			if meta, err := msg.Metadata(); err == nil && meta.NumDelivered == 1 {
				return errors.New("not yet") // logged, with the trace id, and retried
			}
			return nil
		}, zap.New(core), runner.WithMetrics(m))
	if err != nil {
		t.Fatal(err)
	}
	if err := r.Start(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		dctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = r.Drain(dctx)
	})

	const traceID = "4bf92f3577b34da6a3ce929d0e0e4736"
	msg := nats.NewMsg("t.o-1.x")
	msg.Data = []byte("{}")
	msg.Header.Set("traceparent", "00-"+traceID+"-00f067aa0ba902b7-01")
	if _, err := js.PublishMsg(ctx, msg); err != nil {
		t.Fatal(err)
	}
	for range 2 {
		select {
		case sc := <-seen:
			if sc.IsValid() {
				t.Fatalf("handler context carries span %s with tracing off, want none", sc.SpanID())
			}
		case <-time.After(10 * time.Second):
			t.Fatal("message not handled twice")
		}
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		for _, e := range logs.All() {
			if e.ContextMap()["trace_id"] == traceID {
				return
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("no log line with trace_id %s: %v", traceID, logs.All())
		}
		time.Sleep(10 * time.Millisecond)
	}
}
