package events

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/codes"
	oteltrace "go.opentelemetry.io/otel/trace"

	"github.com/eventshop/shared/platform/natsconn"
	"github.com/eventshop/shared/platform/tracing"
)

// ErrInvalidOption is returned by an option given a value it cannot use.
var ErrInvalidOption = errors.New("invalid option")

// ErrConflictingDuplicate means the subject of an event already holds an
// event that says something else (another amount, other lines, another
// source, or no valid event at all): not a repeat of this one. The stored
// event stands and this one is not published; someone must look, because
// one of the two was not written by the saga.
var ErrConflictingDuplicate = errors.New("a different event is already stored for this order")

// ErrOvertaken is wrapped by an OvertakenError: PublishAfter found another
// event about the order in the stream after the one it expected last.
var ErrOvertaken = errors.New("another event about the order came first")

// OvertakenError says which event came first. It wraps ErrOvertaken.
type OvertakenError struct {
	Stored   Envelope // the order's last event in the stream
	Sequence uint64   // its stream sequence
}

func (e *OvertakenError) Error() string {
	return fmt.Sprintf("%v: %s (stream sequence %d)", ErrOvertaken, e.Stored.Type, e.Sequence)
}

func (e *OvertakenError) Unwrap() error { return ErrOvertaken }

// Republished reports whether a stored message holding env is a copy of
// the event rather than the event itself: the Publisher stores every event
// with its id as Nats-Msg-Id, and a copy (a replayed dead letter, an event
// republished by an operator or by chaos) carries another. A reader that
// takes an order's last event as its state looks further when it is a copy.
func Republished(h nats.Header, env Envelope) bool {
	return h.Get(jetstream.MsgIDHeader) != env.ID
}

// Published describes the outcome of Publisher.Publish.
type Published struct {
	Envelope Envelope
	// Duplicate is true when the same event had already been published
	// for this order (the stream refused a second one, and the stored one
	// says the same): the earlier one stands, and Envelope is the stored
	// one. A stored event that says something else is not a duplicate:
	// Publish returns ErrConflictingDuplicate.
	Duplicate bool
	// Sequence is the stream sequence of the stored event (0 if Duplicate
	// was decided by the server's duplicate window).
	Sequence uint64
}

// Publisher checks events (Validator, the same checks every consumer makes)
// and publishes them create-once: each (type, order) subject holds at most one event, for ever,
// because every publish expects the subject's last sequence to be 0. The
// event id is also the Nats-Msg-Id, so quick retries are dropped by the
// stream's duplicate window as well.
type Publisher struct {
	js      jetstream.JetStream
	streams *natsconn.Streams
	source  string
	now     func() time.Time
	newID   func() string
	tracer  oteltrace.Tracer
}

// PublisherOption configures a Publisher.
type PublisherOption func(*Publisher) error

// WithClock sets the clock used for the envelope's time attribute.
func WithClock(now func() time.Time) PublisherOption {
	return func(p *Publisher) error {
		if now == nil {
			return fmt.Errorf("clock: %w", ErrInvalidOption)
		}
		p.now = now
		return nil
	}
}

// WithIDSource sets the event id generator.
func WithIDSource(newID func() string) PublisherOption {
	return func(p *Publisher) error {
		if newID == nil {
			return fmt.Errorf("id source: %w", ErrInvalidOption)
		}
		p.newID = newID
		return nil
	}
}

// WithTracerProvider sets where the PRODUCER spans go (default:
// OpenTelemetry's global provider, which tracing.Setup installs).
func WithTracerProvider(tp oteltrace.TracerProvider) PublisherOption {
	return func(p *Publisher) error {
		if tp == nil {
			return fmt.Errorf("tracer provider: %w", ErrInvalidOption)
		}
		p.tracer = tp.Tracer(tracerName)
		return nil
	}
}

// tracerName is the instrumentation scope of the publisher's spans.
const tracerName = "github.com/eventshop/shared/events"

// NewPublisher returns a publisher whose events name source as their origin.
func NewPublisher(js jetstream.JetStream, source string, opts ...PublisherOption) (*Publisher, error) {
	if js == nil || source == "" {
		return nil, fmt.Errorf("publisher needs a JetStream context and a source: %w", ErrInvalidOption)
	}
	p := &Publisher{
		js:      js,
		streams: natsconn.NewStreams(js),
		source:  source,
		now:     time.Now,
		newID:   func() string { return uuid.Must(uuid.NewV7()).String() },
		tracer:  otel.Tracer(tracerName),
	}
	for _, opt := range opts {
		if err := opt(p); err != nil {
			return nil, err
		}
	}
	return p, nil
}

// Build makes and checks the envelope of an event without publishing it.
// The payload is checked by its Validate method, the check every consumer
// makes on it: whether the encoding matches the schema is for the contract
// tests, not for every publish.
func (p *Publisher) Build(t Type, orderID, traceparent string, data any) (Envelope, []byte, error) {
	uri, ok := producedSchema[t]
	if !ok {
		return Envelope{}, nil, fmt.Errorf("schema for %q: %w", t, ErrUnknownType)
	}
	if v, ok := data.(Validator); ok {
		if err := v.Validate(); err != nil {
			return Envelope{}, nil, fmt.Errorf("producer-side check of %s: %w: %w", t, ErrInvalidEvent, err)
		}
	}
	if v, ok := data.(versioned); ok {
		if err := v.fitsVersion(dataSchemas[uri].version); err != nil {
			return Envelope{}, nil, fmt.Errorf("producer-side check of %s: %w: %w", t, ErrInvalidEvent, err)
		}
	}
	payload, err := json.Marshal(data)
	if err != nil {
		return Envelope{}, nil, fmt.Errorf("encode %s data: %w", t, err)
	}
	env := Envelope{
		SpecVersion:     SpecVersion,
		ID:              p.newID(),
		Source:          p.source,
		Type:            t,
		Subject:         orderID,
		Time:            p.now().UTC(),
		DataContentType: ContentType,
		DataSchema:      uri,
		TraceParent:     traceparent,
		Data:            payload,
	}
	if err := env.check(); err != nil {
		return Envelope{}, nil, fmt.Errorf("producer-side check of %s: %w", t, err)
	}
	raw, err := json.Marshal(env)
	if err != nil {
		return Envelope{}, nil, fmt.Errorf("encode %s envelope: %w", t, err)
	}
	return env, raw, nil
}

// Publish checks and publishes an event of type t about orderID. The same
// event already stored for the order is not an error: the result says
// Duplicate and the stored one stands. "The same" is read back and
// compared: the stored event must decode, come from the same source and
// carry the same data (a field each attempt sets anew, such as
// order.created's created_at, aside); otherwise the error wraps
// ErrConflictingDuplicate and says what differs.
//
// The publish is a PRODUCER span "send <subject template>", a child of the
// span in ctx (or, without one, of traceparent); its context is the
// event's traceparent, in the envelope and the NATS header alike, so the
// consumer's span is its child. traceparent is only the fallback parent.
func (p *Publisher) Publish(ctx context.Context, t Type, orderID, traceparent string, data any) (Published, error) {
	subject, err := Subject(t, orderID)
	if err != nil {
		return Published{}, err
	}
	ctx, span := p.tracer.Start(tracing.WithParent(ctx, traceparent), "send "+FilterSubject(t),
		oteltrace.WithSpanKind(oteltrace.SpanKindProducer))
	defer span.End()
	if tp := tracing.Traceparent(span.SpanContext()); tp != "" {
		traceparent = tp
	}
	res, err := p.publish(ctx, t, subject, orderID, traceparent, data, span)
	if err != nil {
		span.RecordError(err)
		span.SetStatus(codes.Error, err.Error())
	}
	return res, err
}

// PublishAfter publishes an event of type t about orderID only if the
// order's last event in t's stream is the one at stream sequence after (0:
// the order has none there yet). The order's events in a stream are one
// sequence, so the events that decide an order exclude each other without
// a record beside them: of two deciders publishing after the same event,
// the first wins. A repeat of an event already published (same type and
// data) is a duplicate, as with Publish; another event stored after
// `after` gives an *OvertakenError naming it.
func (p *Publisher) PublishAfter(ctx context.Context, t Type, orderID, traceparent string, data any, after uint64) (Published, error) {
	subject, err := Subject(t, orderID)
	if err != nil {
		return Published{}, err
	}
	ctx, span := p.tracer.Start(tracing.WithParent(ctx, traceparent), "send "+FilterSubject(t),
		oteltrace.WithSpanKind(oteltrace.SpanKindProducer))
	defer span.End()
	if tp := tracing.Traceparent(span.SpanContext()); tp != "" {
		traceparent = tp
	}
	res, err := p.publishAfter(ctx, t, subject, orderID, traceparent, data, span, after)
	if err != nil {
		span.RecordError(err)
		span.SetStatus(codes.Error, err.Error())
	}
	return res, err
}

// OrderSubjects is the subject filter of every event about orderID in the
// stream of type t, for example orders.<id>.*.
func OrderSubjects(t Type, orderID string) string {
	return routes[t].prefix + "." + orderID + ".*"
}

func (p *Publisher) publishAfter(ctx context.Context, t Type, subject, orderID, traceparent string, data any, span oteltrace.Span, after uint64) (Published, error) {
	env, msg, err := p.message(ctx, t, subject, orderID, traceparent, data, span)
	if err != nil {
		return Published{}, err
	}
	order := OrderSubjects(t, orderID)
	ack, err := p.js.PublishMsg(ctx, msg,
		jetstream.WithMsgID(env.ID),
		jetstream.WithExpectLastSequenceForSubject(after, order),
	)
	if err == nil {
		return Published{Envelope: env, Sequence: ack.Sequence, Duplicate: ack.Duplicate}, nil
	}
	if !natsconn.IsWrongLastSequence(err) {
		return Published{}, fmt.Errorf("publish %s for order %s: %w", t, orderID, err)
	}
	last, rerr := p.streams.Last(ctx, streamOf(t), order)
	if rerr != nil {
		return Published{}, fmt.Errorf("publish %s for order %s: read the event stored after sequence %d: %w", t, orderID, after, rerr)
	}
	stored, derr := Decode(last.Subject, last.Data)
	if derr == nil && stored.Type == t && differs(env, stored) == "" {
		span.AddEvent("duplicate: the order's last event is this one")
		return Published{Envelope: stored, Duplicate: true, Sequence: last.Sequence}, nil
	}
	if derr != nil {
		return Published{}, fmt.Errorf("publish %s for order %s: %w: the event stored after sequence %d (stream sequence %d) is not valid: %w",
			t, orderID, ErrConflictingDuplicate, after, last.Sequence, derr)
	}
	return Published{}, fmt.Errorf("publish %s for order %s after sequence %d: %w", t, orderID, after, &OvertakenError{Stored: stored, Sequence: last.Sequence})
}

// message builds the NATS message of an event, its traceparent header set.
func (p *Publisher) message(ctx context.Context, t Type, subject, orderID, traceparent string, data any, span oteltrace.Span) (Envelope, *nats.Msg, error) {
	env, raw, err := p.Build(t, orderID, traceparent, data)
	if err != nil {
		return Envelope{}, nil, err
	}
	if span.IsRecording() {
		span.SetAttributes(
			tracing.AttrMessagingSystem.String(tracing.MessagingSystemNATS),
			tracing.AttrOperationType.String(tracing.OperationSend),
			tracing.AttrDestinationName.String(subject),
			tracing.AttrDestinationTemplate.String(FilterSubject(t)),
			tracing.AttrMessageID.String(env.ID),
		)
	}
	msg := nats.NewMsg(subject)
	msg.Data = raw
	if oteltrace.SpanContextFromContext(ctx).IsValid() {
		tracing.Propagator.Inject(ctx, tracing.HeaderCarrier(msg.Header))
	} else {
		msg.Header.Set(HeaderTraceparent, traceparent)
	}
	return env, msg, nil
}

func (p *Publisher) publish(ctx context.Context, t Type, subject, orderID, traceparent string, data any, span oteltrace.Span) (Published, error) {
	env, msg, err := p.message(ctx, t, subject, orderID, traceparent, data, span)
	if err != nil {
		return Published{}, err
	}
	ack, err := p.js.PublishMsg(ctx, msg,
		jetstream.WithMsgID(env.ID),
		jetstream.WithExpectLastSequencePerSubject(0),
	)
	if err != nil {
		if natsconn.IsWrongLastSequence(err) {
			span.AddEvent("duplicate: the subject already holds an event")
			return p.duplicate(ctx, t, subject, env)
		}
		return Published{}, fmt.Errorf("publish %s for order %s: %w", t, orderID, err)
	}
	return Published{Envelope: env, Sequence: ack.Sequence, Duplicate: ack.Duplicate}, nil
}

// duplicate reads the event that made the stream refuse env and tells a
// repeat of env from a conflicting event.
func (p *Publisher) duplicate(ctx context.Context, t Type, subject string, env Envelope) (Published, error) {
	msg, err := p.streams.Last(ctx, streamOf(t), subject)
	if err != nil {
		// The stream said the subject holds an event: not finding it is a
		// read that failed, worth trying again.
		return Published{}, fmt.Errorf("publish %s for order %s: read the event already stored: %w", t, env.Subject, err)
	}
	stored, err := Decode(subject, msg.Data)
	if err == nil {
		_, err = comparable(stored)
	}
	if err != nil && !errors.Is(err, ErrUnknownType) {
		return Published{}, fmt.Errorf("publish %s for order %s: %w: the stored event (stream sequence %d) is not valid: %w",
			t, env.Subject, ErrConflictingDuplicate, msg.Sequence, err)
	}
	if why := differs(env, stored); why != "" {
		return Published{}, fmt.Errorf("publish %s for order %s: %w: the stored event (stream sequence %d, id %s) %s",
			t, env.Subject, ErrConflictingDuplicate, msg.Sequence, stored.ID, why)
	}
	return Published{Envelope: stored, Duplicate: true, Sequence: msg.Sequence}, nil
}

// attemptFields is implemented by a payload with fields that each attempt
// to publish it sets anew: withoutAttempt returns it with them cleared, so
// two attempts at the same event compare equal.
type attemptFields interface {
	withoutAttempt() any
}

// withoutAttempt clears when the order was placed: a retried POST (same
// Idempotency-Key) stamps its own time on the same request.
func (d *OrderCreatedData) withoutAttempt() any {
	c := *d
	c.CreatedAt = time.Time{}
	return c
}

// differs says how stored differs from env, the event being published, in
// what must match for stored to be a repeat of it; "" if it does not.
func differs(env, stored Envelope) string {
	if stored.Source != env.Source {
		return fmt.Sprintf("comes from %q, not %q", stored.Source, env.Source)
	}
	a, errA := comparable(env)
	b, errB := comparable(stored)
	if errA != nil || errB != nil {
		if !bytes.Equal(compact(env.Data), compact(stored.Data)) {
			return "carries other data"
		}
		return ""
	}
	if !reflect.DeepEqual(a, b) {
		return fmt.Sprintf("carries other data: %s, not %s", truncateText(string(stored.Data), 300), truncateText(string(env.Data), 300))
	}
	return ""
}

// comparable decodes and checks env's data (as a consumer would) into its
// Go type, without the fields each attempt sets anew.
func comparable(env Envelope) (any, error) {
	v, err := NewPayload(env.Type)
	if err != nil {
		return nil, err
	}
	if err := env.DecodeData(v); err != nil {
		return nil, err
	}
	if a, ok := v.(attemptFields); ok {
		return a.withoutAttempt(), nil
	}
	return v, nil
}

func compact(raw []byte) []byte {
	var b bytes.Buffer
	if err := json.Compact(&b, raw); err != nil {
		return raw
	}
	return b.Bytes()
}

func truncateText(s string, n int) string {
	if len(s) > n {
		return s[:n] + "..."
	}
	return s
}

// streamOf returns the stream that holds events of type t.
func streamOf(t Type) string {
	prefix := routes[t].prefix + "."
	for name, subjects := range StreamSubjects {
		if strings.HasPrefix(subjects, prefix) {
			return name
		}
	}
	return ""
}
