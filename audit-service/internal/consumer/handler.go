// Package consumer feeds the audit chain: one consumer per domain stream
// hands every valid event, with where it was read from, to the appender.
package consumer

import (
	"context"
	"fmt"
	"strings"

	"github.com/nats-io/nats.go/jetstream"
	"go.uber.org/zap"

	"github.com/eventshop/audit-service/internal/chain"
	"github.com/eventshop/shared/events"
	"github.com/eventshop/shared/platform/logging"
	"github.com/eventshop/shared/platform/runner"
)

// Appender appends a record to the audit chain (idempotent per event).
type Appender interface {
	Append(ctx context.Context, rec chain.Record) (chain.Entry, bool, error)
}

// Durable returns the audit consumer's name on a domain stream, for
// example audit-orders on ORDERS.
func Durable(stream string) string { return "audit-" + strings.ToLower(stream) }

// Redactor replaces an event's secrets by fingerprints.
type Redactor interface {
	Redact(raw []byte) ([]byte, error)
}

// Handler audits events.
type Handler struct {
	app Appender
	red Redactor
	log *zap.Logger
}

// NewHandler returns a handler appending to app the events as red redacts
// them.
func NewHandler(app Appender, red Redactor, log *zap.Logger) *Handler {
	return &Handler{app: app, red: red, log: log}
}

// Handle is the runner.Handler of every audit consumer. An event that
// fails its schema is dead-lettered, not audited: the log holds only events
// the system could have acted on. It returns, and the runner acks, only
// once the block holding the entry is stored; a failed append is retried.
func (h *Handler) Handle(ctx context.Context, msg jetstream.Msg) error {
	// Decode refuses an event whose type does not belong on the subject it
	// arrived on (a payment type on orders.<id>.created): each stream's
	// subjects are its own, so the type also matches the stream.
	env, err := events.Decode(msg.Subject(), msg.Data())
	if err != nil {
		return runner.Permanent(fmt.Errorf("parse %s: %w", msg.Subject(), err))
	}
	meta, err := msg.Metadata()
	if err != nil {
		return runner.Permanent(fmt.Errorf("metadata of %s: %w", msg.Subject(), err))
	}
	if err := checkSource(meta.Stream, env.Source); err != nil {
		return runner.Permanent(fmt.Errorf("event %s on %s: %w", env.ID, msg.Subject(), err))
	}
	payload, err := events.NewPayload(env.Type)
	if err == nil {
		err = env.DecodeData(payload)
	}
	if err != nil {
		return runner.Permanent(fmt.Errorf("parse %s: %w", msg.Subject(), err))
	}
	// Secrets (the payment token) never enter the trail: it is served to
	// whoever may read timelines.
	raw, err := h.red.Redact(msg.Data())
	if err != nil {
		return runner.Permanent(fmt.Errorf("audit %s: %w", env.ID, err))
	}
	rec := chain.Record{
		EventID:   env.ID,
		Type:      string(env.Type),
		Source:    env.Source,
		OrderID:   env.Subject,
		TraceID:   env.TraceID(),
		Time:      env.Time,
		Stream:    meta.Stream,
		StreamSeq: meta.Sequence.Stream,
		Subject:   msg.Subject(),
		Raw:       raw,
	}
	e, dup, err := h.app.Append(ctx, rec)
	if err != nil {
		return fmt.Errorf("audit %s: %w", env.ID, err)
	}
	h.log.Debug("event audited", append(logging.Order(rec.OrderID, rec.TraceID),
		zap.String("event_id", rec.EventID), zap.String("type", rec.Type),
		zap.Uint64("index", e.Index), zap.Bool("duplicate", dup))...)
	return nil
}
