// Package consumer is the order service's JetStream adapter: the durable
// consumers of inventory rejections, payment outcomes and order
// deadlines, each decoding its event once and handing it to the app,
// whose errors become the runner's verdicts in one place (verdict).
package consumer

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/eventshop/order-service/internal/app"
	"github.com/eventshop/order-service/internal/order"
	"github.com/eventshop/order-service/internal/store"
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

// Consumers are the order service's durable consumers, handled by a, each
// with up to concurrency messages in flight.
func Consumers(a *app.App, concurrency int) []kit.Consumer {
	return []kit.Consumer{
		// A reservation changes nothing the order service must store: the
		// order reads its inventory.<id>.reserved event when it needs the
		// lines and total (the store's Current), so it costs no delivery
		// and no write; only rejections are consumed.
		{Config: outcomesConfig(events.StreamInventory, InventoryDurable, concurrency, events.InventoryRejected), Handle: outcomes(a)},
		{Config: outcomesConfig(events.StreamPayments, PaymentsDurable, concurrency, events.PaymentSucceeded, events.PaymentFailed), Handle: outcomes(a)},
		{Config: deadlinesConfig(concurrency), Handle: deadlines(a)},
	}
}

// outcomes handles one inventory or payment event.
func outcomes(a *app.App) runner.Handler {
	return func(ctx context.Context, msg jetstream.Msg) error {
		env, err := events.Decode(msg.Subject(), msg.Data())
		if err != nil {
			return runner.Refused(app.ReasonInvalidEvent, err)
		}
		switch env.Type {
		case events.InventoryRejected:
			return handle(ctx, env, a.InventoryRejected)
		case events.PaymentSucceeded:
			return handle(ctx, env, a.PaymentSucceeded)
		case events.PaymentFailed:
			return handle(ctx, env, a.PaymentFailed)
		}
		return runner.Refused(app.ReasonInvalidEvent, fmt.Errorf("%w: the order service does not handle %s", events.ErrUnknownType, env.Type))
	}
}

// deadlines handles one orders.<id>.created event, the order's timer.
func deadlines(a *app.App) runner.Handler {
	return func(ctx context.Context, msg jetstream.Msg) error {
		env, err := events.Decode(msg.Subject(), msg.Data())
		if err != nil {
			return runner.Refused(app.ReasonInvalidEvent, err)
		}
		if env.Type != events.OrderCreated {
			return runner.Refused(app.ReasonInvalidEvent, fmt.Errorf("%w: a %s event on %s", events.ErrInvalidEvent, env.Type, msg.Subject()))
		}
		return handle(ctx, env, a.OrderCreated)
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

// handle decodes the event's data into its typed struct and hands both to
// the app.
func handle[T any](ctx context.Context, env events.Envelope, use func(context.Context, events.Envelope, T) error) error {
	var d T
	if err := env.DecodeData(&d); err != nil {
		return runner.Refused(app.ReasonInvalidEvent, err)
	}
	return verdict(use(ctx, env, d))
}

// verdict is the one place the app's errors become the runner's verdicts:
// an event refused for what it claims is dead-lettered and counted under
// its reason; a wait is redelivered when asked without spending an
// attempt; what redelivery cannot fix (stored events that are not what
// this service writes, an order that does not exist, an event our own
// code built invalid) is dead-lettered at once; anything else (NATS
// unreachable, an order whose events kept changing) is retried.
func verdict(err error) error {
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
	case errors.Is(err, store.ErrCorrupt), errors.Is(err, order.ErrNotFound),
		errors.Is(err, order.ErrInvalidEvent), errors.Is(err, events.ErrInvalidEvent):
		return runner.Permanent(err)
	}
	return err
}
