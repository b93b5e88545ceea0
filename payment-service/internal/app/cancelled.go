package app

import (
	"context"
	"errors"
	"fmt"

	"go.uber.org/zap"

	"github.com/eventshop/payment-service/internal/payment"
	"github.com/eventshop/shared/events"
	"github.com/eventshop/shared/platform/kvstore"
	"github.com/eventshop/shared/platform/logging"
	"github.com/eventshop/shared/platform/trace"
)

// cancellation says an order was cancelled: whatever it was charged must go
// back, and nothing may be charged later.
type cancellation struct {
	OrderID string
	// Reason is the order's cancellation reason (timeout, ...).
	Reason string
	// TraceParent is the traceparent of the cancelled event.
	TraceParent string
}

// OrderCancelled handles orders.<id>.cancelled: whatever the order was
// charged goes back (a payment that arrived after the order's deadline),
// and an order not charged yet never will be. A cancellation of an order
// that was confirmed is an illegal transition (a confirmed order is final):
// a forged or corrupt event, ErrIllegalTransition without refunding. Other
// errors are those of cancel.
func (a *App) OrderCancelled(ctx context.Context, env events.Envelope, d events.OrderCancelledData) error {
	// The subject the event arrived on (events.Decode checked it).
	subject, _ := events.Subject(env.Type, env.Subject)
	// Check the claim before acting: a confirmed order is final, so its
	// cancellation is illegal whatever it says, and refunding it would give
	// a delivered order's money back.
	confirmed, err := a.history.Confirmed(ctx, d.OrderID)
	if err != nil {
		return fmt.Errorf("%s: check the order's history: %w", subject, err)
	}
	if confirmed {
		return fmt.Errorf("%s: %w: order %s was confirmed, and a confirmed order cannot be cancelled: not refunding",
			subject, ErrIllegalTransition, d.OrderID)
	}
	_, err = a.cancel(ctx, cancellation{
		OrderID:     d.OrderID,
		Reason:      d.Reason,
		TraceParent: env.TraceParent,
	})
	return err
}

// cancel makes sure a cancelled order is charged nothing, and announces a
// refund. With no record yet, a void record stops any later charge. A
// succeeded charge is refunded. A charging record without an outcome event
// means a charge may exist (an attempt in flight, or one that timed out
// after the gateway took it): the gateway is asked again with the same key,
// which replays that charge or makes it, and a success is refunded at once.
// Errors are classified as for process.
func (a *App) cancel(ctx context.Context, c cancellation) (payment.Record, error) {
	if !events.ValidID(c.OrderID) {
		return payment.Record{}, fmt.Errorf("order %q: %w", c.OrderID, payment.ErrInvalidOrderID)
	}
	fields := append(logging.Order(c.OrderID, trace.TraceID(c.TraceParent)), zap.String("cancel_reason", c.Reason))
	var out payment.Record
	err := kvstore.Retry(ctx, casRetry, func(ctx context.Context) (err error) {
		out, err = a.cancelOnce(ctx, c, fields)
		return err
	})
	if errors.Is(err, payment.ErrConflict) {
		return out, fmt.Errorf("payment of order %s: %w", c.OrderID, err)
	}
	return out, err
}

// cancelOnce is one attempt of cancel, on the record as it reads now; a
// conflict means another writer moved it on first.
func (a *App) cancelOnce(ctx context.Context, c cancellation, fields []zap.Field) (payment.Record, error) {
	rec, rev, err := a.store.Load(ctx, c.OrderID)
	if errors.Is(err, payment.ErrNotFound) {
		void := payment.NewVoid(c.OrderID, c.Reason, a.now())
		if _, err := a.store.Create(ctx, void); err != nil {
			if errors.Is(err, payment.ErrConflict) {
				return payment.Record{}, err // the charge path wrote its intent first
			}
			return payment.Record{}, fmt.Errorf("void payment of order %s: %w", c.OrderID, err)
		}
		a.log.Info("order cancelled before any charge: payment voided", fields...)
		return void, nil
	}
	if err != nil {
		return payment.Record{}, fmt.Errorf("payment of order %s: %w", c.OrderID, err)
	}
	switch rec.Status {
	case payment.StatusVoid, payment.StatusFailed:
		return rec, nil // nothing was charged
	case payment.StatusRefunded:
		return rec, a.announce(ctx, rec, c.TraceParent)
	case payment.StatusCharging:
		return a.unpay(ctx, rec, c, fields)
	}
	// A succeeded record an earlier version wrote: refunded and
	// recorded by compare-and-set, as it did.
	next, err := a.refund(ctx, rec, c)
	if err != nil {
		return payment.Record{}, err
	}
	if _, err := a.store.Update(ctx, next, rev); err != nil {
		if errors.Is(err, payment.ErrConflict) {
			return payment.Record{}, err // a repeated refund is a replay
		}
		return payment.Record{}, fmt.Errorf("record refund of order %s: %w", c.OrderID, err)
	}
	a.log.Info("payment of a cancelled order refunded", append(fields,
		zap.String("charge_id", next.ChargeID), zap.String("refund_id", next.RefundID))...)
	return next, a.announce(ctx, next, c.TraceParent)
}

// unpay makes sure the order of a charging record ends up charged nothing.
// Without an outcome event the charge that may exist is settled with the
// record's key; a success is refunded. The refund is published after the
// order's last payment event: after the succeeded event it refunds, or as
// the first one, which makes the charge path's succeeded lose (it then
// reads the refund). A decline found here is announced as the charge path
// would.
func (a *App) unpay(ctx context.Context, rec payment.Record, c cancellation, fields []zap.Field) (payment.Record, error) {
	cur, after, err := a.outcome(ctx, rec)
	if errors.Is(err, payment.ErrNotFound) {
		cur, err = a.charge(ctx, rec, "", c.TraceParent, fields)
	}
	if err != nil {
		return payment.Record{}, err
	}
	next := cur
	switch {
	case cur.Status == payment.StatusSucceeded:
		if next, err = a.refund(ctx, cur, c); err != nil {
			return payment.Record{}, err
		}
	case after != 0:
		return cur, nil // failed (nothing was charged) or refunded already
	}
	over, err := a.announceAfter(ctx, rec, next, c.TraceParent, after)
	if err == nil && over != nil && after == 0 && next.Status == payment.StatusRefunded &&
		over.rec.Status == payment.StatusSucceeded && over.rec.ChargeID == next.ChargeID {
		// The charge path announced this charge meanwhile: the refund follows.
		after = over.seq
		over, err = a.announceAfter(ctx, rec, next, c.TraceParent, after)
	}
	if err != nil {
		return payment.Record{}, err
	}
	if over != nil {
		return payment.Record{}, overtaken(next, over, after)
	}
	a.log.Info("payment of a cancelled order "+string(next.Status), append(fields,
		zap.String("charge_id", next.ChargeID), zap.String("refund_id", next.RefundID),
		zap.Int64("amount_cents", next.AmountCents), zap.String("currency", next.Currency))...)
	return next, nil
}

// refund gives a succeeded record's charge back through the gateway (a
// charge that moved no money needs no call) and returns the refunded record.
func (a *App) refund(ctx context.Context, rec payment.Record, c cancellation) (payment.Record, error) {
	if rec.ChargeID == payment.NoChargeID || rec.AmountCents == 0 {
		return rec.Refunded(payment.NoRefundID, c.Reason, a.now()), nil
	}
	res, err := a.gateway.Refund(ctx, payment.RefundRequest{
		OrderID:        rec.OrderID,
		ChargeID:       rec.ChargeID,
		AmountCents:    rec.AmountCents,
		IdempotencyKey: rec.RefundKey(),
		TraceParent:    c.TraceParent,
	})
	if err != nil {
		return payment.Record{}, fmt.Errorf("refund charge %s of order %s: %w", rec.ChargeID, rec.OrderID, err)
	}
	if res.Replayed {
		a.log.Info("refund replayed by the gateway", append(logging.Order(rec.OrderID, trace.TraceID(c.TraceParent)),
			zap.String("refund_id", res.RefundID))...)
	}
	return rec.Refunded(res.RefundID, c.Reason, a.now()), nil
}
