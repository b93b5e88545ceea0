package events_test

import (
	"context"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"go.opentelemetry.io/otel/attribute"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"
	"go.uber.org/zap"

	"github.com/eventshop/shared/events"
	"github.com/eventshop/shared/platform/natstest"
	"github.com/eventshop/shared/platform/runner"
	"github.com/eventshop/shared/platform/tracing"
)

// TestPublishAndConsumeMakeOneTrace publishes an event inside a request's
// span, consumes it with the runner, and publishes the next event from the
// handler, on a real NATS server: the spans must chain request -> send ->
// process -> send, the CONSUMER span linked to its PRODUCER too, with the
// messaging attributes, and the event and header must carry the PRODUCER
// span's context.
func TestPublishAndConsumeMakeOneTrace(t *testing.T) {
	t.Parallel()
	rec := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec))
	srv := natstest.Start(t)
	_, js := natstest.Connect(t, srv)
	ctx := context.Background()
	for _, s := range []string{events.StreamOrders, events.StreamNotifications} {
		if _, err := events.EnsureStream(ctx, js, s, events.StreamOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	orders, err := events.NewPublisher(js, "order-service", events.WithTracerProvider(tp))
	if err != nil {
		t.Fatal(err)
	}
	notifier, err := events.NewPublisher(js, "notification-service", events.WithTracerProvider(tp))
	if err != nil {
		t.Fatal(err)
	}
	handled := make(chan events.Published, 1)
	handle := func(ctx context.Context, msg jetstream.Msg) error {
		env, err := events.Decode(msg.Subject(), msg.Data())
		if err != nil {
			return runner.Permanent(err)
		}
		// The handler passes no traceparent: the span in ctx is the parent.
		res, err := notifier.Publish(ctx, events.NotificationSent, env.Subject, "",
			events.NotificationSentData{OrderID: env.Subject, NotificationID: "n-1", Kind: "order_confirmed", Channel: "log"})
		if err != nil {
			return err
		}
		handled <- res
		return nil
	}
	m := runner.NewMetrics(prometheus.NewRegistry())
	r, err := runner.New(js, runner.Config{
		Stream: events.StreamOrders, Durable: "notifier", FilterSubjects: []string{events.FilterSubject(events.OrderConfirmed)},
	}, handle, zap.NewNop(), runner.WithMetrics(m), runner.WithTracerProvider(tp))
	if err != nil {
		t.Fatal(err)
	}
	if err := r.Start(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := r.Drain(ctx); err != nil {
			t.Error(err)
		}
	})

	reqCtx, request := tp.Tracer("test").Start(ctx, "POST /orders", trace.WithSpanKind(trace.SpanKindServer))
	sent, err := orders.Publish(reqCtx, events.OrderConfirmed, "o-1", "",
		events.OrderConfirmedData{OrderID: "o-1", CustomerID: "c-1", TotalCents: 100, Currency: "USD"})
	request.End()
	if err != nil {
		t.Fatal(err)
	}
	var next events.Published
	select {
	case next = <-handled:
	case <-time.After(10 * time.Second):
		t.Fatal("the event was not handled")
	}
	// The runner ends its span after the ack.
	var spans []sdktrace.ReadOnlySpan
	deadline := time.Now().Add(5 * time.Second)
	for len(spans) < 4 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
		spans = rec.Ended()
	}
	byName := map[string]sdktrace.ReadOnlySpan{}
	for _, s := range spans {
		byName[s.Name()] = s
	}
	send, process, sendNext := byName["send orders.*.confirmed"], byName["process orders.*.confirmed"], byName["send notifications.*.sent"]
	if send == nil || process == nil || sendNext == nil || len(spans) != 4 {
		names := []string{}
		for _, s := range spans {
			names = append(names, s.Name())
		}
		t.Fatalf("spans %v, want the request, send orders.*.confirmed, process orders.*.confirmed and send notifications.*.sent", names)
	}

	// Parenthood: request -> send -> process -> send, one trace.
	traceID := request.SpanContext().TraceID()
	for _, c := range []struct {
		span   sdktrace.ReadOnlySpan
		parent trace.SpanContext
		kind   trace.SpanKind
	}{
		{send, request.SpanContext(), trace.SpanKindProducer},
		{process, send.SpanContext(), trace.SpanKindConsumer},
		{sendNext, process.SpanContext(), trace.SpanKindProducer},
	} {
		if c.span.SpanContext().TraceID() != traceID || c.span.Parent().SpanID() != c.parent.SpanID() || c.span.SpanKind() != c.kind {
			t.Errorf("%s: trace %s parent %s kind %s, want trace %s parent %s kind %s", c.span.Name(),
				c.span.SpanContext().TraceID(), c.span.Parent().SpanID(), c.span.SpanKind(), traceID, c.parent.SpanID(), c.kind)
		}
	}
	if l := process.Links(); len(l) != 1 || l[0].SpanContext.SpanID() != send.SpanContext().SpanID() {
		t.Errorf("process links %v, want one to the send span %s", l, send.SpanContext().SpanID())
	}

	// The event carries the PRODUCER span's context, in the envelope and
	// in the header.
	if want := tracing.Traceparent(send.SpanContext()); sent.Envelope.TraceParent != want {
		t.Errorf("envelope traceparent %s, want the send span's %s", sent.Envelope.TraceParent, want)
	}
	if want := tracing.Traceparent(sendNext.SpanContext()); next.Envelope.TraceParent != want {
		t.Errorf("next envelope traceparent %s, want its send span's %s", next.Envelope.TraceParent, want)
	}
	s, err := js.Stream(ctx, events.StreamOrders)
	if err != nil {
		t.Fatal(err)
	}
	stored, err := s.GetLastMsgForSubject(ctx, "orders.o-1.confirmed")
	if err != nil {
		t.Fatal(err)
	}
	if got := stored.Header.Get("traceparent"); got != sent.Envelope.TraceParent {
		t.Errorf("header traceparent %q, want %q", got, sent.Envelope.TraceParent)
	}

	// The messaging attributes.
	for _, c := range []struct {
		span sdktrace.ReadOnlySpan
		want map[attribute.Key]string
	}{
		{send, map[attribute.Key]string{
			tracing.AttrMessagingSystem: "nats", tracing.AttrOperationType: "send",
			tracing.AttrDestinationName: "orders.o-1.confirmed", tracing.AttrDestinationTemplate: "orders.*.confirmed",
			tracing.AttrMessageID: sent.Envelope.ID,
		}},
		{process, map[attribute.Key]string{
			tracing.AttrMessagingSystem: "nats", tracing.AttrOperationType: "process",
			tracing.AttrDestinationName: "orders.o-1.confirmed", tracing.AttrDestinationTemplate: "orders.*.confirmed",
			tracing.AttrMessageID: sent.Envelope.ID, tracing.AttrConsumerGroupName: "notifier",
			"eventshop.consumer.outcome": runner.OutcomeAck,
		}},
	} {
		got := map[attribute.Key]string{}
		for _, kv := range c.span.Attributes() {
			got[kv.Key] = kv.Value.Emit()
		}
		for k, v := range c.want {
			if got[k] != v {
				t.Errorf("%s: %s = %q, want %q", c.span.Name(), k, got[k], v)
			}
		}
	}
}

// TestPublishWithoutTracingKeepsTheTrace: with spans neither recorded nor
// exported (no endpoint), the event still joins the caller's trace.
func TestPublishWithoutTracingKeepsTheTrace(t *testing.T) {
	t.Parallel()
	p, err := tracing.NewProvider(tracing.Config{}, "order-service")
	if err != nil {
		t.Fatal(err)
	}
	srv := natstest.Start(t)
	_, js := natstest.Connect(t, srv)
	ctx := context.Background()
	if _, err := events.EnsureStream(ctx, js, events.StreamOrders, events.StreamOptions{}); err != nil {
		t.Fatal(err)
	}
	pub, err := events.NewPublisher(js, "order-service", events.WithTracerProvider(p.TracerProvider()))
	if err != nil {
		t.Fatal(err)
	}
	parent := "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
	res, err := pub.Publish(ctx, events.OrderConfirmed, "o-1", parent,
		events.OrderConfirmedData{OrderID: "o-1", CustomerID: "c-1", TotalCents: 100, Currency: "USD"})
	if err != nil {
		t.Fatal(err)
	}
	if res.Envelope.TraceID() != "4bf92f3577b34da6a3ce929d0e0e4736" || res.Envelope.TraceParent == parent {
		t.Fatalf("traceparent %s, want a new span in trace 4bf92f3577b34da6a3ce929d0e0e4736", res.Envelope.TraceParent)
	}
}
