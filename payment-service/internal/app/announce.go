package app

import (
	"context"
	"errors"
	"fmt"

	"github.com/eventshop/payment-service/internal/payment"
	"github.com/eventshop/shared/events"
	"github.com/eventshop/shared/platform/trace"
)

// The payment's outcome is its payments.<id>.* event: announced here, read
// back here. This file is where a payment.Record and its events translate.

// stored is an order's payment event read as the record it tells, with
// its stream sequence.
type stored struct {
	rec payment.Record
	seq uint64
}

// outcome reads the last payment event of a charging record's order as
// the record it tells, or an error wrapping payment.ErrNotFound when none
// is stored.
func (a *App) outcome(ctx context.Context, rec payment.Record) (payment.Record, uint64, error) {
	env, seq, err := a.outcomes.Last(ctx, rec.OrderID)
	if err != nil {
		return payment.Record{}, 0, fmt.Errorf("outcome of order %s: %w", rec.OrderID, err)
	}
	out, err := outcomeOf(rec, env)
	if err != nil {
		return payment.Record{}, 0, err
	}
	return out, seq, nil
}

// announceAfter publishes next's event if the order's last payment event is
// at stream sequence after (0: none yet); a repeat of it is done already.
// If another event came first, it is returned, read against the charging
// record rec, for the caller to judge.
func (a *App) announceAfter(ctx context.Context, rec, next payment.Record, parent string, after uint64) (*stored, error) {
	typ, data, ok := eventOf(next)
	if !ok {
		return nil, fmt.Errorf("announce payment of order %s: %w: status %s announces nothing", next.OrderID, payment.ErrInvalidRecord, next.Status)
	}
	_, err := a.pub.PublishAfter(ctx, typ, next.OrderID, trace.Child(parent).String(), data, after)
	var over *events.OvertakenError
	switch {
	case err == nil:
		return nil, nil
	case errors.As(err, &over):
		first, err := outcomeOf(rec, over.Stored)
		if err != nil {
			return nil, err
		}
		return &stored{rec: first, seq: over.Sequence}, nil
	default:
		return nil, fmt.Errorf("announce payment of order %s: %w", next.OrderID, err)
	}
}

// overtaken is the error of a payment event that came first but cannot
// have come from this payment (the same key gives the same answer).
func overtaken(next payment.Record, first *stored, after uint64) error {
	return fmt.Errorf("payment of order %s: %w: %s (charge %s) stored at stream sequence %d where %s (charge %s) was to follow sequence %d",
		next.OrderID, events.ErrConflictingDuplicate, first.rec.Status, first.rec.ChargeID, first.seq, next.Status, next.ChargeID, after)
}

// announce publishes the record's event create-once, for records an
// earlier version wrote with their outcome: a second announce is a harmless
// duplicate. Charging and void records announce nothing.
func (a *App) announce(ctx context.Context, rec payment.Record, parent string) error {
	typ, data, ok := eventOf(rec)
	if !ok {
		return nil
	}
	if _, err := a.pub.Publish(ctx, typ, rec.OrderID, trace.Child(parent).String(), data); err != nil {
		return fmt.Errorf("announce payment of order %s: %w", rec.OrderID, err)
	}
	return nil
}

// eventOf returns the type and payload of the event that announces the
// record; ok is false for the statuses that announce nothing (charging and
// void: no outcome to tell).
func eventOf(r payment.Record) (t events.Type, data any, ok bool) {
	switch r.Status {
	case payment.StatusSucceeded:
		return events.PaymentSucceeded, events.PaymentSucceededData{
			OrderID: r.OrderID, ChargeID: r.ChargeID, AmountCents: r.AmountCents, Currency: r.Currency,
		}, true
	case payment.StatusFailed:
		return events.PaymentFailed, events.PaymentFailedData{
			OrderID: r.OrderID, Reason: events.ReasonCardDeclined, DeclineCode: r.DeclineCode,
			ChargeID: r.ChargeID, AmountCents: r.AmountCents, Currency: r.Currency,
		}, true
	case payment.StatusRefunded:
		return events.PaymentRefunded, events.PaymentRefundedData{
			OrderID: r.OrderID, ChargeID: r.ChargeID, RefundID: r.RefundID,
			AmountCents: r.AmountCents, Currency: r.Currency, Reason: r.CancelReason,
		}, true
	}
	return "", nil, false
}

// outcomeOf reads a payment event of the order whose charging record is r:
// the record as the event tells it (succeeded, failed or refunded). An
// event that cannot be this payment's (another order, amount or currency,
// or not a payment outcome) is an error wrapping
// events.ErrConflictingDuplicate: not written by the saga.
func outcomeOf(r payment.Record, env events.Envelope) (payment.Record, error) {
	out := r
	out.UpdatedAt = env.Time.UTC()
	var (
		order, currency string
		amount          int64
		err             error
	)
	switch env.Type {
	case events.PaymentSucceeded:
		var d events.PaymentSucceededData
		err = env.DecodeData(&d)
		order, amount, currency = d.OrderID, d.AmountCents, d.Currency
		out.Status, out.ChargeID, out.DeclineCode = payment.StatusSucceeded, d.ChargeID, ""
	case events.PaymentFailed:
		var d events.PaymentFailedData
		err = env.DecodeData(&d)
		order, amount, currency = d.OrderID, d.AmountCents, d.Currency
		out.Status, out.ChargeID, out.DeclineCode = payment.StatusFailed, d.ChargeID, d.DeclineCode
	case events.PaymentRefunded:
		var d events.PaymentRefundedData
		err = env.DecodeData(&d)
		order, amount, currency = d.OrderID, d.AmountCents, d.Currency
		out.Status, out.ChargeID, out.DeclineCode = payment.StatusRefunded, d.ChargeID, ""
		out.RefundID, out.CancelReason = d.RefundID, d.Reason
	default:
		err = fmt.Errorf("%w: a %s event", events.ErrInvalidEvent, env.Type)
	}
	switch {
	case err != nil:
		return payment.Record{}, fmt.Errorf("%w: payment event %s of order %s: %w", events.ErrConflictingDuplicate, env.ID, r.OrderID, err)
	case order != r.OrderID || amount != r.AmountCents || currency != r.Currency:
		return payment.Record{}, fmt.Errorf("%w: payment event %s is about %s, %d %s, not order %s's %d %s",
			events.ErrConflictingDuplicate, env.ID, order, amount, currency, r.OrderID, r.AmountCents, r.Currency)
	}
	return out, out.Validate()
}
