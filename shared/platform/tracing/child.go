package tracing

import (
	"context"
	"errors"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"
)

// Attributes of the spans around a read or write of a KV bucket or a
// stream (the database conventions: the system, the bucket or stream as
// the namespace, the operation), and the key or subject it touched.
const (
	AttrDBSystem       = attribute.Key("db.system.name")
	AttrDBNamespace    = attribute.Key("db.namespace")
	AttrDBOperation    = attribute.Key("db.operation.name")
	AttrKVKey          = attribute.Key("nats.kv.key")
	AttrKVRevision     = attribute.Key("nats.kv.revision")
	AttrKVConflict     = attribute.Key("nats.kv.conflict")
	AttrKVNotFound     = attribute.Key("nats.kv.not_found")
	AttrKVEntries      = attribute.Key("nats.kv.entries") // entries a watch or listing read
	AttrStreamSubject  = attribute.Key("nats.subject")
	AttrStreamSeq      = attribute.Key("nats.stream.sequence")
	AttrStreamNotFound = attribute.Key("nats.stream.not_found")
	DBSystemKV         = "nats-kv"
	DBSystemStream     = "nats-jetstream"
)

// noSpan is what StartChild returns when it starts nothing: its methods
// do nothing, and End cannot end the caller's span by mistake.
var noSpan = trace.SpanFromContext(context.Background())

// StartChild starts a span named name, of the instrumentation scope
// scope, as a child of the span in ctx, from the same tracer provider, but
// only if that span is recording: a child of a span that is not recorded
// (tracing off, or a trace the sampler left out) would never be exported
// either, so then nothing is started, ctx comes back as it is, and the
// span returned does nothing. That keeps the KV and stream spans inside a
// handler free when tracing is off: no ids, no allocation, one interface
// call. Use it for work inside a handler, whose context no message or
// request carries on (a publish or a call to another process needs its
// own span and ids either way).
func StartChild(ctx context.Context, scope, name string, opts ...trace.SpanStartOption) (context.Context, trace.Span) {
	parent := trace.SpanFromContext(ctx)
	if !parent.IsRecording() {
		return ctx, noSpan
	}
	return parent.TracerProvider().Tracer(scope).Start(ctx, name, opts...)
}

// StartKV starts the CLIENT span "kv <op> <bucket>" of one operation on
// key of a KV bucket, as StartChild does: only inside a recording span.
func StartKV(ctx context.Context, scope, bucket, op, key string) (context.Context, trace.Span) {
	if !trace.SpanFromContext(ctx).IsRecording() {
		return ctx, noSpan // before the name and options are built: they allocate
	}
	ctx, span := StartChild(ctx, scope, "kv "+op+" "+bucket, trace.WithSpanKind(trace.SpanKindClient))
	if span.IsRecording() {
		span.SetAttributes(AttrDBSystem.String(DBSystemKV), AttrDBNamespace.String(bucket),
			AttrDBOperation.String(op), AttrKVKey.String(key))
	}
	return ctx, span
}

// EndKV ends a span StartKV started, with the revision read or written
// (0: none to record), or why there was none: an error matching conflict
// (a lost compare-and-set or create) or notFound (nothing stored) is an
// answer, not a failure; any other error fails the span. A nil conflict or
// notFound matches nothing.
func EndKV(span trace.Span, rev uint64, err, conflict, notFound error) {
	if span.IsRecording() {
		switch {
		case err == nil:
			if rev != 0 {
				span.SetAttributes(AttrKVRevision.Int64(int64(rev)))
			}
		case conflict != nil && errors.Is(err, conflict):
			span.SetAttributes(AttrKVConflict.Bool(true))
		case notFound != nil && errors.Is(err, notFound):
			span.SetAttributes(AttrKVNotFound.Bool(true))
		default:
			Fail(span, err)
		}
	}
	span.End()
}

// StartStream starts the CLIENT span "stream <op> <stream>" of one read of
// a stream by subject (or subject filter), as StartChild does: only
// inside a recording span.
func StartStream(ctx context.Context, scope, stream, op, subject string) (context.Context, trace.Span) {
	if !trace.SpanFromContext(ctx).IsRecording() {
		return ctx, noSpan
	}
	ctx, span := StartChild(ctx, scope, "stream "+op+" "+stream, trace.WithSpanKind(trace.SpanKindClient))
	if span.IsRecording() {
		span.SetAttributes(AttrDBSystem.String(DBSystemStream), AttrDBNamespace.String(stream),
			AttrDBOperation.String(op), AttrStreamSubject.String(subject))
	}
	return ctx, span
}

// Fail marks span failed with err (its error event and status); a span
// that is not recording is left alone.
func Fail(span trace.Span, err error) {
	if err != nil && span.IsRecording() {
		span.RecordError(err)
		span.SetStatus(codes.Error, err.Error())
	}
}
