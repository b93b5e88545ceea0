// Package consumer feeds the audit chain: one consumer per domain stream
// hands every valid event, with where it was read from, to the app.
package consumer

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/eventshop/audit-service/internal/app"
	"github.com/eventshop/shared/events"
	"github.com/eventshop/shared/platform/kit"
	"github.com/eventshop/shared/platform/runner"
)

// Durable returns the audit consumer's name on a domain stream, for
// example audit-orders on ORDERS.
func Durable(stream string) string { return "audit-" + strings.ToLower(stream) }

// appendConcurrency is the handlers of each consumer (four consumers).
const appendConcurrency = 64

// Consumers returns the audit's consumer of every domain stream, each
// recording its events in a.
func Consumers(a *app.App) []kit.Consumer {
	h := handler{app: a}
	// A failed append is redelivered after 0.25-0.5s, then doubling up to
	// 15-30s, with full jitter.
	retry := runner.Backoff{Initial: 500 * time.Millisecond, Max: 30 * time.Second, Multiplier: 2}
	consumers := make([]kit.Consumer, 0, len(events.DomainStreams))
	for _, stream := range events.DomainStreams {
		consumers = append(consumers, kit.Consumer{
			Config: runner.Config{
				Stream:  stream,
				Durable: Durable(stream),
				// The chain has one writer, but appends in flight together
				// are stored as one block (store.Appender): the more
				// handlers wait on it, the fewer round trips per entry.
				Concurrency: appendConcurrency,
				// An append fails only when NATS is unwell; giving up would
				// leave a hole in the audit log, so retry for ever. Invalid
				// events are permanent and dead-lettered at once.
				MaxDeliver: -1,
				Retry:      retry,
			},
			Handle: h.handle,
		})
	}
	return consumers
}

type handler struct {
	app *app.App
}

// handle is the runner.Handler of every audit consumer. An event that
// fails its schema is dead-lettered, not audited: the log holds only events
// the system could have acted on. It returns, and the runner acks, only
// once the block holding the entry is stored; a failed append is retried.
func (h handler) handle(ctx context.Context, msg jetstream.Msg) error {
	// Decode refuses an event whose type does not belong on the subject it
	// arrived on (a payment type on orders.<id>.created): each stream's
	// subjects are its own, so the type also matches the stream.
	env, err := events.Decode(msg.Subject(), msg.Data())
	if err != nil {
		return runner.Refused(events.ReasonInvalidEvent, fmt.Errorf("parse %s: %w", msg.Subject(), err))
	}
	meta, err := msg.Metadata()
	if err != nil {
		return runner.Permanent(fmt.Errorf("metadata of %s: %w", msg.Subject(), err))
	}
	return verdict(h.app.Record(ctx, env, app.Delivery{
		Stream: meta.Stream, StreamSeq: meta.Sequence.Stream, Subject: msg.Subject(), Raw: msg.Data(),
	}))
}

// verdict turns the app's errors into the runner's: a refused event (a
// forged source, a payload that cannot be redacted) is dead-lettered at
// once, as is one whose payload breaks its type (refused as
// invalid_event); anything else (the chain's storage) is retried.
func verdict(err error) error {
	if _, ok := errors.AsType[*app.RefusedError](err); ok {
		return runner.Permanent(err)
	}
	if errors.Is(err, events.ErrInvalidEvent) {
		return runner.Refused(events.ReasonInvalidEvent, err)
	}
	return err
}
