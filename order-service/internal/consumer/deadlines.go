package consumer

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"go.uber.org/zap"

	"github.com/eventshop/order-service/internal/order"
	"github.com/eventshop/order-service/internal/store"
	"github.com/eventshop/shared/events"
	"github.com/eventshop/shared/platform/logging"
	"github.com/eventshop/shared/platform/runner"
)

// DeadlinesDurable is the durable name of the deadline consumer.
const DeadlinesDurable = "order-deadlines"

// DeadlinesMaxAckPending bounds the created events the deadline consumer
// holds unacknowledged. Each order still in flight holds one (its timer is
// its created event, redelivered with NakWithDelay) until it is final and
// looked at, at most recheckEvery later: so this must exceed the orders
// created within recheckEvery plus every order stuck waiting for its
// deadline. Past it the server stops delivering created events until
// some are acknowledged: deadlines then fire late, never early, and
// nothing is lost.
const DeadlinesMaxAckPending = 50_000

// recheckEvery is the longest a deadline message waits between looks at
// its order. An order that finished is acknowledged at the next look, so
// with a long deadline it does not hold its place in MaxAckPending for the
// whole deadline; a look at a decided order is one get.
const recheckEvery = 10 * time.Second

// minWait keeps a wait positive when the deadline is a hair away.
const minWait = 10 * time.Millisecond

// errNotLooked means the order's first look is still ahead: no read was
// made.
var errNotLooked = errors.New("order not looked at yet")

// DeadlinesConfig is the consumer of created orders that enforces the order
// deadline. The created event is the timer, so the deadline costs no write
// per order: the message is redelivered (NakWithDelay, a wait that spends
// no delivery attempt) until the order is final or its deadline has
// passed. MaxDeliver is therefore unlimited; poison is still dead-lettered
// at once.
func DeadlinesConfig(concurrency int) runner.Config {
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

// Deadlines cancels orders that have not reached a final state within the
// deadline, with reason timeout. The cancellation is published after the
// order's last event like every other decision, so it cannot overtake an
// outcome published a moment before; a payment that lands after it is
// refunded by the payment service.
type Deadlines struct {
	h        *Handler
	deadline time.Duration
}

// NewDeadlines returns the deadline handler over h's store, publisher and
// clock.
func NewDeadlines(h *Handler, deadline time.Duration) (*Deadlines, error) {
	if h == nil || deadline <= 0 {
		return nil, fmt.Errorf("deadlines need a handler and a deadline > 0 (got %s): %w", deadline, ErrInvalidOption)
	}
	return &Deadlines{h: h, deadline: deadline}, nil
}

// Handle handles one orders.<id>.created event: acknowledge once the order
// is final, wait while its deadline is ahead, cancel it when it has passed.
func (d *Deadlines) Handle(ctx context.Context, msg jetstream.Msg) error {
	env, err := events.Decode(msg.Subject(), msg.Data())
	if err != nil {
		return runner.Refused(ReasonInvalidEvent, err)
	}
	if env.Type != events.OrderCreated {
		return runner.Refused(ReasonInvalidEvent, fmt.Errorf("%w: a %s event on %s", events.ErrInvalidEvent, env.Type, msg.Subject()))
	}
	var data events.OrderCreatedData
	if err := env.DecodeData(&data); err != nil {
		return runner.Refused(ReasonInvalidEvent, err)
	}
	due := data.CreatedAt.Add(d.deadline)
	// The first delivery comes right after the order was placed: it cannot
	// be final yet, so do not read it, just come back at the first look.
	now := d.h.now()
	if look := data.CreatedAt.Add(min(recheckEvery, d.deadline)); now.Before(look) {
		return runner.Wait(errNotLooked, max(look.Sub(now), minWait))
	}

	// Once the order is decided, its last event says so: one get.
	head, err := d.h.orders.Head(ctx, env.Subject)
	if err == nil && head.Final != nil {
		return nil
	}
	if err == nil {
		log := d.h.log.With(logging.Order(env.Subject, env.TraceID())...).With(zap.String("event_type", string(env.Type)), zap.String("event_id", env.ID))
		err = d.h.decide(ctx, env.Subject, func(o order.Order, now time.Time) (order.Order, bool, error) {
			return order.ApplyDeadline(o, d.deadline, now)
		}, &head, env.TraceParent, log)
	}
	switch {
	case errors.Is(err, order.ErrNotDue):
		return runner.Wait(err, max(min(recheckEvery, due.Sub(d.h.now())), minWait))
	case errors.Is(err, order.ErrNotFound), errors.Is(err, order.ErrInvalidEvent), errors.Is(err, store.ErrCorrupt):
		return runner.Permanent(err)
	}
	return err
}
