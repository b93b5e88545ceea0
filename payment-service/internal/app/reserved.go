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

// request asks for an order to be paid: the reserved total.
type request struct {
	OrderID     string
	AmountCents int64
	Currency    string
	// TraceParent is the traceparent of the event that asked for payment.
	TraceParent string
}

// InventoryReserved handles inventory.<id>.reserved: the order's stock is
// held and priced, so it is time to charge its total, once, and announce
// the outcome; the time it took is observed by outcome. Errors are those of
// process.
func (a *App) InventoryReserved(ctx context.Context, env events.Envelope, d events.InventoryReservedData) error {
	start := a.now()
	rec, err := a.process(ctx, request{
		OrderID:     d.OrderID,
		AmountCents: d.TotalCents,
		Currency:    d.Currency,
		TraceParent: env.TraceParent,
	})
	a.metrics.processed(rec, err, a.now().Sub(start))
	return err
}

// process pays the order once and announces the outcome; an order cancelled
// before it was charged (a void record) is not charged. Errors wrap
// payment.ErrNoPaymentToken or payment.ErrGatewayRejected (permanent),
// payment.ErrTokenNotVisible (retry a few times),
// payment.ErrGatewayUnavailable (wait and retry; it may carry a RetryAfter
// hint), events.ErrConflictingDuplicate (a payment event the saga did not
// write), or are transient infrastructure failures.
func (a *App) process(ctx context.Context, req request) (payment.Record, error) {
	if !events.ValidID(req.OrderID) {
		return payment.Record{}, fmt.Errorf("order %q: %w", req.OrderID, payment.ErrInvalidOrderID)
	}
	fields := logging.Order(req.OrderID, trace.TraceID(req.TraceParent))
	rec, token, fresh, err := a.intent(ctx, req)
	if err != nil {
		return payment.Record{}, fmt.Errorf("payment of order %s: %w", req.OrderID, err)
	}
	switch rec.Status {
	case payment.StatusCharging:
		return a.pay(ctx, req, rec, token, fresh, fields)
	case payment.StatusVoid:
		a.log.Info("order was cancelled before it was charged: not charging",
			append(fields, zap.String("cancel_reason", rec.CancelReason))...)
		return rec, nil
	default:
		a.log.Debug("payment already recorded, re-announcing", append(fields, zap.String("status", string(rec.Status)))...)
		return rec, a.announce(ctx, rec, req.TraceParent)
	}
}

// intent returns the order's record: the charging intent just created
// (fresh), or the record already there. A reservation is usually paid once:
// it tries to create at once, without reading; whatever stops that (a
// record exists, the token is not readable) is decided on the record.
func (a *App) intent(ctx context.Context, req request) (rec payment.Record, token string, fresh bool, err error) {
	if rec, token, err = a.begin(ctx, req); err == nil {
		return rec, token, true, nil
	}
	err = kvstore.Retry(ctx, casRetry, func(ctx context.Context) error {
		var err error
		if rec, _, err = a.store.Load(ctx, req.OrderID); !errors.Is(err, payment.ErrNotFound) {
			token, fresh = "", false
			return err
		}
		rec, token, err = a.begin(ctx, req) // a conflict: a cancellation or another delivery wrote first
		fresh = err == nil
		return err
	})
	if err != nil {
		return payment.Record{}, "", false, err
	}
	return rec, token, fresh, nil
}

// begin creates the order's charging record with a new random idempotency
// key, which every later attempt reads back from the record. The token is
// read first (a zero total needs none), so that an order that cannot be
// charged leaves no intent behind. An existing record is payment.ErrConflict.
func (a *App) begin(ctx context.Context, req request) (payment.Record, string, error) {
	var token string
	if req.AmountCents > 0 {
		var err error
		if token, err = a.tokens.Token(ctx, req.OrderID); err != nil {
			return payment.Record{}, "", fmt.Errorf("payment token: %w", err)
		}
	}
	rec := payment.NewIntent(payment.ChargeRequest{OrderID: req.OrderID, AmountCents: req.AmountCents, Currency: req.Currency,
		IdempotencyKey: a.newKey()}, a.now())
	if _, err := a.store.Create(ctx, rec); err != nil {
		return payment.Record{}, "", err
	}
	return rec, token, nil
}

// pay settles a charging record. A payment event already stored is the
// outcome; otherwise the gateway is asked (a replay if it was asked before)
// and its answer published as the order's first payment event. fresh: the
// record was just created, so no event can be stored yet (one that is makes
// the publish overtaken, and is checked then).
func (a *App) pay(ctx context.Context, req request, rec payment.Record, token string, fresh bool, fields []zap.Field) (payment.Record, error) {
	if !fresh {
		out, _, err := a.outcome(ctx, rec)
		if err == nil {
			a.log.Debug("payment already announced", append(fields, zap.String("status", string(out.Status)))...)
			return out, nil
		}
		if !errors.Is(err, payment.ErrNotFound) {
			return payment.Record{}, err
		}
	}
	next, err := a.charge(ctx, rec, token, req.TraceParent, fields)
	if err != nil {
		return payment.Record{}, err
	}
	over, err := a.announceAfter(ctx, rec, next, req.TraceParent, 0)
	if err != nil {
		return payment.Record{}, err
	}
	if over != nil {
		// Only the order's cancellation settles its charge before the
		// charge path: it publishes the refund of this very charge first.
		if next.Status != payment.StatusSucceeded || over.rec.Status != payment.StatusRefunded || over.rec.ChargeID != next.ChargeID {
			return payment.Record{}, overtaken(next, over, 0)
		}
		a.log.Info("payment settled and refunded by the order's cancellation first: not announcing it",
			append(fields, zap.String("charge_id", next.ChargeID), zap.String("refund_id", over.rec.RefundID))...)
		return over.rec, nil
	}
	a.log.Info("payment "+string(next.Status), append(fields,
		zap.String("charge_id", next.ChargeID), zap.String("decline_code", next.DeclineCode),
		zap.Int64("amount_cents", next.AmountCents), zap.String("currency", next.Currency))...)
	return next, nil
}

// alertMismatch logs a gateway answer about another charge than ours (the
// metric is counted by the gateway client's observer).
func (a *App) alertMismatch(res payment.ChargeResult, fields []zap.Field) {
	if res.Mismatch == "" {
		return
	}
	a.log.Error("gateway answer does not match the charge asked for: payment failed, not believed",
		append(fields, zap.String("mismatch", res.Mismatch), zap.String("gateway_charge_id", res.ChargeID))...)
}

// charge asks the gateway to charge a charging record, with the record's
// key (a repeat replays the first answer), and returns the record of the
// answer. A zero total is paid without a call (the gateway refuses zero
// amounts); the token is read if not given.
func (a *App) charge(ctx context.Context, rec payment.Record, token, traceParent string, fields []zap.Field) (payment.Record, error) {
	if rec.AmountCents == 0 {
		return rec.Charged(payment.ChargeResult{ChargeID: payment.NoChargeID, Succeeded: true}, a.now()), nil
	}
	if token == "" {
		var err error
		if token, err = a.tokens.Token(ctx, rec.OrderID); err != nil {
			return payment.Record{}, fmt.Errorf("payment token of order %s: %w", rec.OrderID, err)
		}
	}
	res, err := a.gateway.Charge(ctx, payment.ChargeRequest{
		OrderID:        rec.OrderID,
		AmountCents:    rec.AmountCents,
		Currency:       rec.Currency,
		Token:          token,
		IdempotencyKey: rec.GatewayKey(),
		TraceParent:    traceParent,
	})
	if err != nil {
		return payment.Record{}, fmt.Errorf("charge order %s: %w", rec.OrderID, err)
	}
	a.alertMismatch(res, fields)
	if res.Replayed {
		a.log.Info("charge replayed by the gateway", append(fields, zap.String("charge_id", res.ChargeID))...)
	}
	return rec.Charged(res, a.now()), nil
}
