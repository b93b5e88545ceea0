// Package consumer is the inventory's JetStream adapter: it reads the order
// saga's events from ORDERS, decodes each once and hands it to the app,
// whose errors it turns into the runner's verdicts.
package consumer

import (
	"errors"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/eventshop/inventory-service/internal/app"
	"github.com/eventshop/inventory-service/internal/stock"
	"github.com/eventshop/shared/events"
	"github.com/eventshop/shared/platform/kit"
	"github.com/eventshop/shared/platform/runner"
)

// Durable is the name of the inventory's consumer on ORDERS.
const Durable = "inventory-orders"

// retry is the redelivery schedule of a failed orders event. Its transient
// failures are NATS writes and compare-and-set conflicts that outlasted
// the in-process CAS retries: NakWithDelay after 0.1-0.2s, doubling up to
// 15-30s (full jitter), until maxDeliver deliveries (CONSUMER_MAX_DELIVER,
// 10 by default: one to one and a half minutes) dead-letter it. Invalid
// events are dead-lettered at once.
var retry = runner.Backoff{Initial: 200 * time.Millisecond, Max: 30 * time.Second, Multiplier: 2}

// Consumers returns the inventory's consumers: the orders handler, with
// concurrency handlers at once and maxDeliver deliveries of an event.
func Consumers(a *app.App, concurrency, maxDeliver int) []kit.Consumer {
	return []kit.Consumer{{
		Config: runner.Config{
			Stream:  events.StreamOrders,
			Durable: Durable,
			FilterSubjects: []string{
				events.FilterSubject(events.OrderCreated),
				events.FilterSubject(events.OrderConfirmed),
				events.FilterSubject(events.OrderCancelled),
			},
			Concurrency: concurrency,
			MaxDeliver:  maxDeliver,
			Retry:       retry,
		},
		Handle: events.Consume(verdict,
			events.On(events.OrderCreated, a.OrderCreated),
			events.On(events.OrderCancelled, a.OrderCancelled),
			events.On(events.OrderConfirmed, a.OrderConfirmed)),
	}}
}

// verdict turns the app's error into the runner's verdict: what redelivery
// cannot change is refused or dead-lettered, the rest is retried.
func verdict(_ jetstream.Msg, err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, stock.ErrAmountMismatch):
		// A confirmation for another total than the reservation's: not
		// from the saga.
		return runner.Refused(events.ReasonAmountMismatch, err)
	case errors.Is(err, stock.ErrInvalidTransition):
		// The event contradicts what the inventory decided for the order
		// (a confirmation of an order it rejected, a cancellation of one
		// it sold): not from the saga. Dead-letter it, never apply it.
		return runner.Refused(events.ReasonIllegalTransition, err)
	case errors.Is(err, stock.ErrInvariant), errors.Is(err, app.ErrUnpublishable):
		// Redelivery cannot repair the state, nor an event the contract
		// refuses: dead-letter it with the reason for an operator.
		return runner.Permanent(err)
	}
	return err
}
