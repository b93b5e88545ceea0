// Package consumer is the order service's JetStream adapter: the durable
// consumers of inventory rejections, payment outcomes and order
// deadlines, each decoding its event once and handing it to the app,
// whose errors become the runner's verdicts in one place (verdict).
package consumer

import (
	"errors"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/eventshop/order-service/internal/app"
	"github.com/eventshop/order-service/internal/order"
	"github.com/eventshop/shared/events"
	"github.com/eventshop/shared/platform/kit"
	"github.com/eventshop/shared/platform/runner"
)

// Durable consumer names.
const (
	InventoryDurable = "order-inventory"
	PaymentsDurable  = "order-payments"
	DeadlinesDurable = "order-deadlines"
)

// DeadlinesMaxAckPending bounds the created events the deadline consumer
// holds unacknowledged. Each order still in flight holds one (its timer is
// its created event, redelivered with NakWithDelay) until it is final and
// looked at, at most 10 s later (the app's longest wait between looks):
// so this must exceed the orders created within those 10 s plus every
// order stuck waiting for its deadline. Past it the server stops
// delivering created events until some are acknowledged: deadlines then
// fire late, never early, and nothing is lost.
const DeadlinesMaxAckPending = 50_000

// The retry schedule of the order consumers. Their only transient
// failures are NATS reads and the decision's publish, so: NakWithDelay
// after 0.1-0.2s, doubling up to 15-30s (full jitter), and after 10
// deliveries (one to one and a half minutes) the message is
// dead-lettered. Invalid events are dead-lettered at once.
const maxDeliver = 10

var retry = runner.Backoff{Initial: 200 * time.Millisecond, Max: 30 * time.Second, Multiplier: 2}

// Consumers returns the service's three consumers over the use cases a:
// the outcomes of inventory and payment, which decide orders, and the
// created orders whose deadlines they watch.
func Consumers(a *app.App, concurrency int) []kit.Consumer {
	outcomes := events.Consume(verdict,
		events.On(events.InventoryRejected, a.InventoryRejected),
		events.On(events.PaymentSucceeded, a.PaymentSucceeded),
		events.On(events.PaymentFailed, a.PaymentFailed))
	return []kit.Consumer{
		{Config: outcomesConfig(events.StreamInventory, InventoryDurable, concurrency, events.InventoryRejected), Handle: outcomes},
		{Config: outcomesConfig(events.StreamPayments, PaymentsDurable, concurrency, events.PaymentSucceeded, events.PaymentFailed), Handle: outcomes},
		{Config: deadlinesConfig(concurrency), Handle: events.Consume(verdict, events.On(events.OrderCreated, a.OrderCreated))},
	}
}

// outcomesConfig is the consumer of the saga's outcomes of the given
// types on stream.
func outcomesConfig(stream, durable string, concurrency int, types ...events.Type) runner.Config {
	filters := make([]string, len(types))
	for i, t := range types {
		filters[i] = events.FilterSubject(t)
	}
	return runner.Config{
		Stream:         stream,
		Durable:        durable,
		FilterSubjects: filters,
		Concurrency:    concurrency,
		MaxDeliver:     maxDeliver,
		Retry:          retry,
	}
}

// deadlinesConfig is the consumer of created orders that enforces the
// order deadline. The created event is the timer, so the deadline costs no
// write per order: the message is redelivered (NakWithDelay, a wait that
// spends no delivery attempt) until the order is final or its deadline has
// passed. MaxDeliver is therefore unlimited; poison is still dead-lettered
// at once.
func deadlinesConfig(concurrency int) runner.Config {
	return runner.Config{
		Stream:         events.StreamOrders,
		Durable:        DeadlinesDurable,
		FilterSubjects: []string{events.FilterSubject(events.OrderCreated)},
		Concurrency:    concurrency,
		MaxAckPending:  DeadlinesMaxAckPending,
		MaxDeliver:     -1,
		Retry:          retry,
	}
}

// verdict is the one place the app's errors become the runner's verdicts:
// an event refused for what it claims is dead-lettered and counted under
// its reason; a wait is redelivered when asked without spending an
// attempt; what redelivery cannot fix (stored events that are not what
// this service writes, an order that does not exist, an event our own
// code built invalid) is dead-lettered at once; anything else (NATS
// unreachable, an order whose events kept changing) is retried.
func verdict(_ jetstream.Msg, err error) error {
	var (
		wait    *app.WaitError
		refused *app.RefusedError
	)
	switch {
	case err == nil:
		return nil
	case errors.As(err, &wait):
		return runner.Wait(wait.Err, wait.After)
	case errors.As(err, &refused):
		return runner.Refused(refused.Reason, refused.Err)
	case errors.Is(err, app.ErrCorrupt), errors.Is(err, order.ErrNotFound),
		errors.Is(err, order.ErrInvalidEvent), errors.Is(err, events.ErrInvalidEvent):
		return runner.Permanent(err)
	}
	return err
}
