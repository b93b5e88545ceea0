package deadletter

import (
	"context"
	"fmt"

	"github.com/nats-io/nats.go/jetstream"
	"go.opentelemetry.io/otel/attribute"
	oteltrace "go.opentelemetry.io/otel/trace"

	"github.com/eventshop/shared/platform/natsconn"
	"github.com/eventshop/shared/platform/subjects"
	"github.com/eventshop/shared/platform/tracing"
)

// Write copies l into the dead-letter stream, once: the publish
// expects the letter's subject to be empty, so a second attempt for the
// same message and consumer, from the runner or from the server's
// advisory, stores nothing and reports created false. A subject that
// holds the tombstone of a resolved letter refuses it too, so a replayed
// or discarded message is never dead-lettered again from an old report.
//
// Inside a recorded span (the CONSUMER span of the delivery given up on,
// or of the advisory that reported it) the write is a PRODUCER span
// "dead-letter <subject template>", child of it and linked to the
// original message's producer when that is another trace's: the order's
// trace shows where it stopped, and why.
func Write(ctx context.Context, js jetstream.JetStream, l Letter) (created bool, err error) {
	ctx, span := startDeadLetter(ctx, l)
	defer func() { endDeadLetter(span, created, err) }()
	dl := Encode(l)
	if _, err := js.PublishMsg(ctx, dl, jetstream.WithExpectLastSequencePerSubject(0)); err != nil {
		if natsconn.IsWrongLastSequence(err) {
			return false, nil // already dead-lettered (or resolved) for this consumer
		}
		return false, fmt.Errorf("dead-letter %s: %w", l.OriginalSubject, err)
	}
	return true, nil
}

// tracerName is the instrumentation scope of the dead-letter spans.
const tracerName = "github.com/eventshop/shared/platform/deadletter"

// Attributes of a dead-letter span, beside the messaging ones.
const (
	attrDLQConsumer   = attribute.Key("eventshop.dead_letter.consumer")
	attrDLQSubject    = attribute.Key("eventshop.dead_letter.original_subject")
	attrDLQSequence   = attribute.Key("eventshop.dead_letter.original_sequence")
	attrDLQDeliveries = attribute.Key("eventshop.dead_letter.deliveries")
	attrDLQReason     = attribute.Key("eventshop.dead_letter.reason")
	attrDLQMissing    = attribute.Key("eventshop.dead_letter.original_missing")
	attrDLQCreated    = attribute.Key("eventshop.dead_letter.created")
)

// noSpan does nothing: the span of a letter written outside a recorded
// span.
var noSpan = oteltrace.SpanFromContext(context.Background())

// startDeadLetter starts the span of writing l, if the span in ctx is
// recorded (tracing.StartChild): nothing otherwise.
func startDeadLetter(ctx context.Context, l Letter) (context.Context, oteltrace.Span) {
	if !oteltrace.SpanFromContext(ctx).IsRecording() {
		return ctx, noSpan
	}
	opts := []oteltrace.SpanStartOption{oteltrace.WithSpanKind(oteltrace.SpanKindProducer)}
	parent := oteltrace.SpanContextFromContext(ctx)
	orig := oteltrace.SpanContextFromContext(tracing.Propagator.Extract(context.Background(), tracing.HeaderCarrier(l.Header)))
	if orig.IsValid() && orig.TraceID() != parent.TraceID() {
		opts = append(opts, oteltrace.WithLinks(oteltrace.Link{SpanContext: orig}))
	}
	tmpl := subjects.Template(l.OriginalSubject)
	if l.OriginalSubject == "" {
		tmpl = l.OriginalStream
	}
	ctx, span := tracing.StartChild(ctx, tracerName, "dead-letter "+tmpl, opts...)
	span.SetAttributes(
		tracing.AttrMessagingSystem.String(tracing.MessagingSystemNATS),
		tracing.AttrOperationType.String(tracing.OperationSend),
		tracing.AttrDestinationName.String(Subject(l.Consumer, l.OriginalStream, l.OriginalSequence)),
		tracing.AttrDestinationTemplate.String("dlq."+l.Consumer+"."+l.OriginalStream+".*"),
		attrDLQConsumer.String(l.Consumer),
		attrDLQSubject.String(l.OriginalSubject),
		attrDLQSequence.Int64(int64(l.OriginalSequence)),
		attrDLQDeliveries.Int64(int64(l.Deliveries)),
		attrDLQReason.String(reason(l.Reason)),
		attrDLQMissing.Bool(l.Missing),
	)
	return ctx, span
}

// endDeadLetter ends span with whether the letter was written (false: it
// was there already), or the failure.
func endDeadLetter(span oteltrace.Span, created bool, err error) {
	if span.IsRecording() {
		if err != nil {
			tracing.Fail(span, err)
		} else {
			span.SetAttributes(attrDLQCreated.Bool(created))
		}
	}
	span.End()
}
