package events

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/google/uuid"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// ErrInvalidOption is returned by an option given a value it cannot use.
var ErrInvalidOption = errors.New("invalid option")

// Published describes the outcome of Publisher.Publish.
type Published struct {
	Envelope Envelope
	// Duplicate is true when the event had already been published for this
	// order (the stream refused a second one): the earlier one stands.
	Duplicate bool
	// Sequence is the stream sequence of the stored event (0 if Duplicate).
	Sequence uint64
}

// Publisher checks events (Validator, the same checks every consumer makes)
// and publishes them create-once: each (type, order) subject holds at most one event, for ever,
// because every publish expects the subject's last sequence to be 0. The
// event id is also the Nats-Msg-Id, so quick retries are dropped by the
// stream's duplicate window as well.
type Publisher struct {
	js     jetstream.JetStream
	source string
	now    func() time.Time
	newID  func() string
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

// NewPublisher returns a publisher whose events name source as their origin.
func NewPublisher(js jetstream.JetStream, source string, opts ...PublisherOption) (*Publisher, error) {
	if js == nil || source == "" {
		return nil, fmt.Errorf("publisher needs a JetStream context and a source: %w", ErrInvalidOption)
	}
	p := &Publisher{
		js:     js,
		source: source,
		now:    time.Now,
		newID:  func() string { return uuid.Must(uuid.NewV7()).String() },
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
	uri, ok := currentSchema[t]
	if !ok {
		return Envelope{}, nil, fmt.Errorf("schema for %q: %w", t, ErrUnknownType)
	}
	if v, ok := data.(Validator); ok {
		if err := v.Validate(); err != nil {
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

// Publish checks and publishes an event of type t about orderID. An event
// of the same type already stored for the order is not an error: the result
// says Duplicate and the stored one stands.
func (p *Publisher) Publish(ctx context.Context, t Type, orderID, traceparent string, data any) (Published, error) {
	subject, err := Subject(t, orderID)
	if err != nil {
		return Published{}, err
	}
	env, raw, err := p.Build(t, orderID, traceparent, data)
	if err != nil {
		return Published{}, err
	}
	msg := nats.NewMsg(subject)
	msg.Data = raw
	msg.Header.Set(HeaderTraceparent, traceparent)
	ack, err := p.js.PublishMsg(ctx, msg,
		jetstream.WithMsgID(env.ID),
		jetstream.WithExpectLastSequencePerSubject(0),
	)
	if err != nil {
		if IsWrongLastSequence(err) {
			return Published{Envelope: env, Duplicate: true}, nil
		}
		return Published{}, fmt.Errorf("publish %s for order %s: %w", t, orderID, err)
	}
	return Published{Envelope: env, Sequence: ack.Sequence, Duplicate: ack.Duplicate}, nil
}

// IsWrongLastSequence reports whether err is JetStream refusing a publish
// whose expected last (subject) sequence did not match: a create-once
// duplicate or a compare-and-set conflict.
func IsWrongLastSequence(err error) bool {
	var apiErr *jetstream.APIError
	if errors.As(err, &apiErr) {
		return apiErr.ErrorCode == jetstream.JSErrCodeStreamWrongLastSequence ||
			apiErr.ErrorCode == jetstream.JSErrCodeStreamWrongLastSequenceConstant
	}
	return false
}
