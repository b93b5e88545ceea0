package app

import (
	"context"
	"errors"
	"fmt"
	"time"

	"go.uber.org/zap"

	"github.com/eventshop/order-service/internal/order"
	"github.com/eventshop/shared/events"
	"github.com/eventshop/shared/platform/logging"
	"github.com/eventshop/shared/platform/trace"
)

// maxAttempts bounds the read-decide-publish loop when other events about
// the order keep coming first; past it the message is retried later
// rather than spinning.
const maxAttempts = 16

// errBusy means the order's events kept changing under maxAttempts
// decisions in a row: retried later.
var errBusy = errors.New("the order's events kept changing")

// InventoryRejected cancels the order the inventory could not reserve.
// A reservation changes nothing the order service must store: the order
// reads its inventory.<id>.reserved event when it needs the lines and
// total (the store's Current), so only rejections are handled.
func (a *App) InventoryRejected(ctx context.Context, env events.Envelope, d events.InventoryRejectedData) error {
	r := order.Rejection{OrderID: d.OrderID, Reason: d.Reason, SKU: d.SKU, Detail: d.Detail}
	return a.outcome(ctx, env, func(o order.Order, now time.Time) (order.Order, bool, error) { return order.ApplyRejected(o, r, now) })
}

// PaymentSucceeded confirms the order its payment is for.
func (a *App) PaymentSucceeded(ctx context.Context, env events.Envelope, d events.PaymentSucceededData) error {
	p := order.Payment{OrderID: d.OrderID, ChargeID: d.ChargeID, AmountCents: d.AmountCents, Currency: d.Currency}
	return a.outcome(ctx, env, func(o order.Order, now time.Time) (order.Order, bool, error) {
		return order.ApplyPaymentSucceeded(o, p, now)
	})
}

// PaymentFailed cancels the order whose payment was declined.
func (a *App) PaymentFailed(ctx context.Context, env events.Envelope, d events.PaymentFailedData) error {
	dec := order.Decline{OrderID: d.OrderID, DeclineCode: d.DeclineCode, AmountCents: d.AmountCents, Currency: d.Currency}
	if dec.DeclineCode == "" {
		dec.DeclineCode = d.Reason
	}
	return a.outcome(ctx, env, func(o order.Order, now time.Time) (order.Order, bool, error) {
		return order.ApplyPaymentFailed(o, dec, now)
	})
}

// outcome applies an inventory or payment outcome to its order. An event
// that claims what the order contradicts is a *RefusedError; read and
// publish failures are for retrying.
func (a *App) outcome(ctx context.Context, env events.Envelope, apply transition) error {
	err := a.decide(ctx, env.Subject, apply, nil, env.TraceParent, a.eventLog(env))
	if reason, ok := refusal(err); ok {
		return &RefusedError{Reason: reason, Err: fmt.Errorf("%s from %s: %w", env.Type, env.Source, err)}
	}
	return err
}

// eventLog is the logger of an event about an order.
func (a *App) eventLog(env events.Envelope) *zap.Logger {
	return a.log.With(logging.Order(env.Subject, env.TraceID())...).With(zap.String("event_type", string(env.Type)), zap.String("event_id", env.ID))
}

// transition applies one event to an order (one of the order.Apply
// functions bound to the event's content).
type transition func(o order.Order, now time.Time) (order.Order, bool, error)

// refusal tells an event refused for what it claims from a failure to
// handle it, and names the reason.
func refusal(err error) (string, bool) {
	switch {
	case errors.Is(err, order.ErrAmountMismatch):
		return events.ReasonAmountMismatch, true
	case errors.Is(err, order.ErrNotReserved):
		return ReasonNotReserved, true
	case errors.Is(err, order.ErrInvalidTransition):
		return events.ReasonIllegalTransition, true
	case errors.Is(err, order.ErrNotFound):
		return ReasonUnknownOrder, true
	case errors.Is(err, order.ErrInvalidEvent):
		return events.ReasonInvalidEvent, true
	}
	return "", false
}

// decide reads the order (unless the caller read it), applies the
// event and, if that decides the order, publishes the decision after the
// order's last event. A decider another decision overtook applies its
// event to that decision, as if it had read it (a payment success for an
// order the deadline cancelled is acknowledged: the payment service
// refunds it). An order decided by a record of an earlier version whose
// event was never published gets that event published.
func (a *App) decide(ctx context.Context, orderID string, apply transition, read *State, incoming string, log *zap.Logger) error {
	for range maxAttempts {
		var (
			st  State
			err error
		)
		if read != nil {
			st, read = *read, nil
		} else if st, err = a.orders.Current(ctx, orderID); err != nil {
			return err
		}
		for {
			next, err := a.applyTo(st.Order, apply, log)
			if err != nil {
				return err
			}
			if !next.Final() || st.After == 0 {
				return nil // nothing decided, or decided by its stored event
			}
			res, err := a.publishFinal(ctx, next, st.After, incoming)
			var over *events.OvertakenError
			if errors.As(err, &over) && over.Stored.Type != events.OrderCreated {
				d, err := DecisionOf(over.Stored)
				if err != nil {
					return err
				}
				o, err := order.ApplyDecision(st.Order, d)
				if err != nil {
					return fmt.Errorf("%w: %w", ErrCorrupt, err)
				}
				log.Info("order decided by another event first", zap.String("decided_by", string(over.Stored.Type)), zap.Uint64("stream_seq", over.Sequence))
				st = State{Order: o}
				continue
			}
			if errors.As(err, &over) {
				break // a replayed created event came first: read again
			}
			if err != nil {
				return err
			}
			if !res.Duplicate {
				// Stored by this decider: observed here and nowhere else.
				// One overtaken applies the stored decision, a duplicate
				// is a decision another stored; neither gets here.
				a.metrics.decided(next)
				log.Info("order decided", zap.String("from", string(st.Order.Status)), zap.String("to", string(next.Status)), zap.Uint64("stream_seq", res.Sequence))
			}
			return nil
		}
	}
	return fmt.Errorf("order %s: %d decisions overtaken in a row: %w", orderID, maxAttempts, errBusy)
}

// applyTo applies the event to o. A payment that succeeded for an order
// cancelled meanwhile leaves it cancelled.
func (a *App) applyTo(o order.Order, apply transition, log *zap.Logger) (order.Order, error) {
	next, _, err := apply(o, a.now())
	if errors.Is(err, order.ErrPaidAfterCancel) {
		// The order stays cancelled (it missed its deadline, say): the
		// payment service refunds the charge when it handles the
		// cancellation. Acknowledge so the saga moves on.
		log.Warn("payment succeeded for a cancelled order: the payment service refunds it", zap.Error(err))
		return o, nil
	}
	return next, err
}

// publishFinal publishes the event of a final order after the order's
// event at stream sequence after: the first decision published wins, a
// repeat of it is a duplicate, and any other gets an *events.OvertakenError.
func (a *App) publishFinal(ctx context.Context, o order.Order, after uint64, incoming string) (events.Published, error) {
	tp := trace.Child(incoming).String()
	var (
		t    events.Type
		data any
	)
	switch o.Status {
	case order.StatusConfirmed:
		d := events.OrderConfirmedData{OrderID: o.ID, CustomerID: o.CustomerID, TotalCents: o.TotalCents, Currency: o.Currency}
		if events.ProducedVersion(events.OrderConfirmed) >= 2 { // v1 has no address: a rollback emits v1 again
			d.ShippingAddress = (*events.Address)(o.ShipTo)
		}
		t, data = events.OrderConfirmed, d
	case order.StatusCancelled:
		t, data = events.OrderCancelled, events.OrderCancelledData{
			OrderID: o.ID, CustomerID: o.CustomerID, Reason: o.CancelReason, Detail: o.CancelDetail,
		}
	default:
		return events.Published{}, fmt.Errorf("order %s is %s: %w", o.ID, o.Status, order.ErrInvalidTransition)
	}
	// A conflicting duplicate (the order's last event was not written by
	// this service) is refused as such by events.Consume.
	return a.pub.PublishAfter(ctx, t, o.ID, tp, data, after)
}

// DecisionOf reads what an order's final event says.
func DecisionOf(env events.Envelope) (order.Decision, error) {
	switch env.Type {
	case events.OrderConfirmed:
		var d events.OrderConfirmedData
		if err := env.DecodeData(&d); err != nil {
			return order.Decision{}, fmt.Errorf("%w: %w", ErrCorrupt, err)
		}
		return order.Decision{Status: order.StatusConfirmed, CustomerID: d.CustomerID, TotalCents: d.TotalCents, Currency: d.Currency, At: env.Time}, nil
	case events.OrderCancelled:
		var d events.OrderCancelledData
		if err := env.DecodeData(&d); err != nil {
			return order.Decision{}, fmt.Errorf("%w: %w", ErrCorrupt, err)
		}
		return order.Decision{Status: order.StatusCancelled, CustomerID: d.CustomerID, Reason: d.Reason, Detail: d.Detail, At: env.Time}, nil
	}
	return order.Decision{}, fmt.Errorf("%w: a %s event is no decision", ErrCorrupt, env.Type)
}
