package app

import (
	"context"
	"errors"
	"time"

	"github.com/eventshop/order-service/internal/order"
	"github.com/eventshop/shared/events"
)

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

// OrderCreated enforces the order's deadline, timed by its created event:
// it returns nil once the order is final, a *WaitError while its deadline
// is ahead, and cancels it with reason timeout when the deadline has
// passed. The cancellation is published after the order's last event like
// every other decision, so it cannot overtake an outcome published a
// moment before; a payment that lands after it is refunded by the payment
// service.
func (a *App) OrderCreated(ctx context.Context, env events.Envelope, data events.OrderCreatedData) error {
	due := data.CreatedAt.Add(a.deadline)
	// The first delivery comes right after the order was placed: it cannot
	// be final yet, so do not read it, just come back at the first look.
	now := a.now()
	if look := data.CreatedAt.Add(min(recheckEvery, a.deadline)); now.Before(look) {
		return &WaitError{Err: errNotLooked, After: max(look.Sub(now), minWait)}
	}

	// Once the order is decided, its last event says so: one get.
	st, undecided, err := a.orders.Undecided(ctx, env.Subject)
	if err == nil && !undecided {
		return nil
	}
	if err == nil {
		err = a.decide(ctx, env.Subject, func(o order.Order, now time.Time) (order.Order, bool, error) {
			return order.ApplyDeadline(o, a.deadline, now)
		}, &st, env.TraceParent, a.eventLog(env))
	}
	if errors.Is(err, order.ErrNotDue) {
		return &WaitError{Err: err, After: max(min(recheckEvery, due.Sub(a.now())), minWait)}
	}
	return err
}
