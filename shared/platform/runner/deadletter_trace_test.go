package runner_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"go.opentelemetry.io/otel/attribute"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"
	"go.uber.org/zap"

	"github.com/eventshop/shared/platform/deadletter"
	"github.com/eventshop/shared/platform/natstest"
	"github.com/eventshop/shared/platform/runner"
	"github.com/eventshop/shared/platform/tracing"
)

func spanAttrs(s sdktrace.ReadOnlySpan) map[attribute.Key]string {
	out := map[attribute.Key]string{}
	for _, kv := range s.Attributes() {
		out[kv.Key] = kv.Value.Emit()
	}
	return out
}

// TestDeadLetterIsASpanOfTheDelivery: a message the handler refuses is
// dead-lettered under a PRODUCER span "dead-letter <subject template>",
// child of the delivery's CONSUMER span (so in the message's trace), that
// names the letter, the consumer, the original and the reason. A second
// write of the same letter (an advisory about it, in another trace) says
// it was there already, and links to the message's trace.
func TestDeadLetterIsASpanOfTheDelivery(t *testing.T) {
	t.Parallel()
	js, ctx := setup(t)
	rec := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec))
	m := runner.NewMetrics(prometheus.NewRegistry())
	r, err := runner.New(js, runner.Config{Stream: "T", Durable: "poison"},
		func(context.Context, jetstream.Msg) error { return runner.Permanent(errors.New("schema says no")) },
		zap.NewNop(), runner.WithMetrics(m), runner.WithTracerProvider(tp))
	if err != nil {
		t.Fatal(err)
	}
	if err := r.Start(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = r.Drain(ctx)
	})

	// The message, sent from a span of the order's trace.
	_, producer := tp.Tracer("test").Start(ctx, "send t.*.x", trace.WithSpanKind(trace.SpanKindProducer))
	producer.End()
	msg := nats.NewMsg("t.o-1.x")
	msg.Data = []byte("bad")
	msg.Header.Set("traceparent", tracing.Traceparent(producer.SpanContext()))
	if _, err := js.PublishMsg(ctx, msg); err != nil {
		t.Fatal(err)
	}
	var process, dead sdktrace.ReadOnlySpan
	natstest.Eventually(t, "the delivery's spans", func() bool {
		for _, s := range rec.Ended() {
			switch s.Name() {
			case "process t.*.x":
				process = s
			case "dead-letter t.*.x":
				dead = s
			}
		}
		return process != nil && dead != nil
	})
	if dead.SpanKind() != trace.SpanKindProducer || dead.Parent().SpanID() != process.SpanContext().SpanID() ||
		dead.SpanContext().TraceID() != producer.SpanContext().TraceID() {
		t.Errorf("dead-letter span kind %s parent %s trace %s, want a PRODUCER child of the delivery's span %s in trace %s",
			dead.SpanKind(), dead.Parent().SpanID(), dead.SpanContext().TraceID(), process.SpanContext().SpanID(), producer.SpanContext().TraceID())
	}
	if len(dead.Links()) != 0 {
		t.Errorf("links %v, want none: the parent is in the message's trace already", dead.Links())
	}
	got := spanAttrs(dead)
	for k, v := range map[attribute.Key]string{
		"messaging.destination.name":              "dlq.poison.T.1",
		"messaging.destination.template":          "dlq.poison.T.*",
		"messaging.operation.type":                "send",
		"eventshop.dead_letter.consumer":          "poison",
		"eventshop.dead_letter.original_subject":  "t.o-1.x",
		"eventshop.dead_letter.original_sequence": "1",
		"eventshop.dead_letter.deliveries":        "1",
		"eventshop.dead_letter.created":           "true",
	} {
		if got[k] != v {
			t.Errorf("dead-letter span: %s = %q, want %q", k, got[k], v)
		}
	}
	if !strings.Contains(got["eventshop.dead_letter.reason"], "schema says no") {
		t.Errorf("dead-letter span: reason %q, want the handler's error", got["eventshop.dead_letter.reason"])
	}
	if o := spanAttrs(process)["eventshop.consumer.outcome"]; o != runner.OutcomeDeadLetter {
		t.Errorf("delivery outcome %q, want %s", o, runner.OutcomeDeadLetter)
	}

	// The same letter again, from the span of an advisory (another trace).
	actx, advisory := tp.Tracer("test").Start(ctx, "process $JS.EVENT.ADVISORY")
	created, err := deadletter.Write(actx, js, deadletter.Letter{
		Consumer: "poison", OriginalStream: "T", OriginalSequence: 1, OriginalSubject: "t.o-1.x", Data: []byte("bad"), Header: msg.Header,
		Deliveries: 1, Reason: "terminated", Time: time.Now(),
	})
	advisory.End()
	if err != nil || created {
		t.Fatalf("second write = %v, %v; want not created, no error", created, err)
	}
	var again sdktrace.ReadOnlySpan
	for _, s := range rec.Ended() {
		if s.Name() == "dead-letter t.*.x" && s.Parent().SpanID() == advisory.SpanContext().SpanID() {
			again = s
		}
	}
	if again == nil {
		t.Fatal("no dead-letter span under the advisory's")
	}
	if v := spanAttrs(again)["eventshop.dead_letter.created"]; v != "false" {
		t.Errorf("second write: created = %q, want false", v)
	}
	if l := again.Links(); len(l) != 1 || l[0].SpanContext.SpanID() != producer.SpanContext().SpanID() {
		t.Errorf("second write: links %v, want one to the message's producer %s", l, producer.SpanContext().SpanID())
	}
}
