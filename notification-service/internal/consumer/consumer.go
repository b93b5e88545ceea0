// Package consumer is the notification service's JetStream adapter: the
// runner configuration of its durable consumer on ORDERS, and the handler
// that decodes each final order event once, hands it to the use cases
// (internal/app), and turns their errors into the runner's verdicts in one
// place, verdict.
package consumer

import (
	"errors"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/eventshop/notification-service/internal/app"
	"github.com/eventshop/notification-service/internal/notification"
	"github.com/eventshop/shared/events"
	"github.com/eventshop/shared/platform/kit"
	"github.com/eventshop/shared/platform/runner"
)

// Durable is the name of the notification consumer on ORDERS.
const Durable = "notification-orders"

// The retry schedule of the orders consumer (the webhook channel retries
// within one delivery first): NakWithDelay after 0.5-1s, doubling up to
// 30-60s (full jitter); after 10 deliveries (several minutes) the message
// is dead-lettered. Invalid events are dead-lettered at once.
const maxDeliver = 10

var retry = runner.Backoff{Initial: time.Second, Max: time.Minute, Multiplier: 2}

// Consumers returns the service's consumer over the use cases a: the final
// order transitions (orders.<id>.confirmed and orders.<id>.cancelled), each
// of which causes one notification. ackWait is how long a delivery may
// take before the server redelivers it (the channel's retries within one
// delivery fit in it).
func Consumers(a *app.App, concurrency int, ackWait time.Duration) []kit.Consumer {
	return []kit.Consumer{{
		Config: runner.Config{
			Stream:         events.StreamOrders,
			Durable:        Durable,
			FilterSubjects: []string{events.FilterSubject(events.OrderConfirmed), events.FilterSubject(events.OrderCancelled)},
			Concurrency:    concurrency,
			AckWait:        ackWait,
			MaxDeliver:     maxDeliver,
			Retry:          retry,
		},
		Handle: events.Consume(verdict,
			events.On(events.OrderConfirmed, a.OrderConfirmed),
			events.On(events.OrderCancelled, a.OrderCancelled)),
	}}
}

// verdict maps the use cases' errors onto the runner's handling.
func verdict(_ jetstream.Msg, err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, notification.ErrRejected):
		// The receiver refused the notification for good.
		return runner.Permanent(err)
	default:
		return err // the channel, NATS or a contended record: retry
	}
}
