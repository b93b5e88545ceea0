package app

import (
	"context"
	"fmt"

	"go.uber.org/zap"

	"github.com/eventshop/audit-service/internal/chain"
	"github.com/eventshop/shared/events"
	"github.com/eventshop/shared/platform/logging"
)

// Delivery is how an event reached the audit: the domain stream and
// sequence it was stored at, the subject it was published on, and the
// event as published (the bytes the chain holds, once redacted).
type Delivery struct {
	Stream    string
	StreamSeq uint64
	Subject   string
	Raw       []byte
}

// Record appends the event env, delivered as d, to the audit chain, once:
// an event already audited is a duplicate, and not an error. It returns
// only once the block holding the entry is stored.
//
// An event whose source is not the owner of its stream (ErrWrongSource) or
// that cannot be redacted is refused (*RefusedError): the trail holds only
// events whose origin it can vouch for, and never a secret. Any other
// error is the chain's storage failing.
func (a *App) Record(ctx context.Context, env events.Envelope, d Delivery) error {
	if err := checkSource(d.Stream, env.Source); err != nil {
		return &RefusedError{Err: fmt.Errorf("event %s on %s: %w", env.ID, d.Subject, err)}
	}
	// The trail holds only events the system could have acted on: one
	// whose payload breaks its type is not audited (the error wraps
	// events.ErrInvalidEvent).
	payload, err := events.NewPayload(env.Type)
	if err == nil {
		err = env.DecodeData(payload)
	}
	if err != nil {
		return fmt.Errorf("parse %s: %w", d.Subject, err)
	}
	// Secrets (the payment token) never enter the trail: it is served to
	// whoever may read timelines.
	raw, err := a.red.Redact(d.Raw)
	if err != nil {
		return &RefusedError{Err: fmt.Errorf("audit %s: %w", env.ID, err)}
	}
	rec := chain.Record{
		EventID:   env.ID,
		Type:      string(env.Type),
		Source:    env.Source,
		OrderID:   env.Subject,
		TraceID:   env.TraceID(),
		Time:      env.Time,
		Stream:    d.Stream,
		StreamSeq: d.StreamSeq,
		Subject:   d.Subject,
		Raw:       raw,
	}
	e, dup, err := a.chain.Append(ctx, rec)
	if err != nil {
		return fmt.Errorf("audit %s: %w", env.ID, err)
	}
	a.log.Debug("event audited", append(logging.Order(rec.OrderID, rec.TraceID),
		zap.String("event_id", rec.EventID), zap.String("type", rec.Type),
		zap.Uint64("index", e.Index), zap.Bool("duplicate", dup))...)
	return nil
}

// RefusedError is an event the audit trail will not hold however often it
// is delivered. Its message is its cause's.
type RefusedError struct{ Err error }

func (e *RefusedError) Error() string { return e.Err.Error() }

// Unwrap returns the cause.
func (e *RefusedError) Unwrap() error { return e.Err }
