package consumer

import (
	"context"
	"errors"
	"fmt"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/eventshop/payment-service/internal/payment"
	"github.com/eventshop/shared/events"
	"github.com/eventshop/shared/platform/runner"
)

// OrdersDurable is the durable name of the consumer of cancelled orders.
const OrdersDurable = "payment-orders"

// Canceller makes sure a cancelled order is charged nothing
// (payment.Processor).
type Canceller interface {
	Cancel(ctx context.Context, c payment.Cancellation) (payment.Record, error)
}

// OrderHistory tells what the order's own events say (store.OrderHistory).
type OrderHistory interface {
	// Confirmed reports whether the order was confirmed.
	Confirmed(ctx context.Context, orderID string) (bool, error)
}

// ErrIllegalTransition: the event claims a transition the order's history
// forbids (a confirmed order cancelled). Refused: dead-lettered at once,
// never acted on, counted in eventshop_events_refused_total under
// reason illegal_transition.
var ErrIllegalTransition = errors.New("illegal order transition")

// Cancelled handles orders.<id>.cancelled: whatever the order was charged
// goes back (a payment that arrived after the order's deadline), and an
// order not charged yet never will be. A cancellation of an order that was
// confirmed is an illegal transition (a confirmed order is final): a forged
// or corrupt event, dead-lettered without refunding.
type Cancelled struct {
	canceller Canceller
	history   OrderHistory
	wait      runner.Backoff
}

// OrdersConfig returns the runner configuration of the cancelled-order
// consumer. Like the reserved-order consumer, MaxDeliver is unlimited: a
// refund that waits for the gateway must never be given up on; poison
// messages are still dead-lettered at once as permanent.
func OrdersConfig(concurrency int) runner.Config {
	return runner.Config{
		Stream:         events.StreamOrders,
		Durable:        OrdersDurable,
		FilterSubjects: []string{events.FilterSubject(events.OrderCancelled)},
		Concurrency:    concurrency,
		MaxDeliver:     -1,
		Retry:          retry,
	}
}

// NewCancelled returns the handler; history is checked before any refund;
// wait is the redelivery schedule while the gateway fails (as for
// NewReserved).
func NewCancelled(c Canceller, history OrderHistory, wait runner.Backoff) (*Cancelled, error) {
	if c == nil || history == nil {
		return nil, errors.New("cancelled handler needs a canceller and the order history")
	}
	if wait.Initial <= 0 || wait.Max < wait.Initial || wait.Multiplier < 1 {
		return nil, fmt.Errorf("wait schedule %+v: %w", wait, runner.ErrInvalidConfig)
	}
	return &Cancelled{canceller: c, history: history, wait: wait}, nil
}

// Handle is the runner.Handler.
func (h *Cancelled) Handle(ctx context.Context, msg jetstream.Msg) error {
	env, err := events.Decode(msg.Subject(), msg.Data())
	if err != nil {
		return runner.Refused("invalid_event", fmt.Errorf("%s: %w", msg.Subject(), err))
	}
	if env.Type != events.OrderCancelled {
		return runner.Refused("invalid_event", fmt.Errorf("%s: %w: a %s event", msg.Subject(), events.ErrInvalidEvent, env.Type))
	}
	var data events.OrderCancelledData
	if err := env.DecodeData(&data); err != nil {
		return runner.Refused("invalid_event", fmt.Errorf("%s: %w", msg.Subject(), err))
	}
	// Check the claim before acting: a confirmed order is final, so its
	// cancellation is illegal whatever it says, and refunding it would give
	// a delivered order's money back.
	confirmed, err := h.history.Confirmed(ctx, data.OrderID)
	if err != nil {
		return fmt.Errorf("%s: check the order's history: %w", msg.Subject(), err)
	}
	if confirmed {
		return runner.Refused("illegal_transition", fmt.Errorf("%s: %w: order %s was confirmed, and a confirmed order cannot be cancelled: not refunding",
			msg.Subject(), ErrIllegalTransition, data.OrderID))
	}
	_, err = h.canceller.Cancel(ctx, payment.Cancellation{
		OrderID:     data.OrderID,
		Reason:      data.Reason,
		TraceParent: env.TraceParent,
	})
	return verdict(msg, err, h.wait)
}
