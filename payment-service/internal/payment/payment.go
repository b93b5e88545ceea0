// Package payment is the payment domain: the record of an order's payment,
// its states and transitions, and the charge and refund the gateway is
// asked for and their results. It knows no event: internal/app turns a
// reserved order into exactly one charge and one payment event, and a
// cancelled order into no charge at all (voided before it was charged, or
// refunded once after), and translates records to and from their events.
package payment

import (
	"errors"
	"fmt"
	"time"
)

// Status is where an order's payment stands.
//
//	(none) ── reserved ──▶ charging ──▶ succeeded ── cancelled ──▶ refunded
//	   │                      │    └──▶ failed
//	   │                      └── cancelled ──▶ refunded (charged, then refunded) or failed
//	   └── cancelled ──▶ void (a later reserved event charges nothing)
//
// The bucket holds charging and void; succeeded, failed and refunded are
// the order's payments.<id>.* events (docs/architecture.md, Payment), and
// are in the bucket only in records an earlier version wrote. charging is
// written before the gateway is first asked, so that a cancellation knows a
// charge may exist (a timed-out attempt may have been charged) and settles
// it instead of voiding. Outages leave everything as it was; the work waits
// in JetStream.
type Status string

// Payment statuses.
const (
	StatusCharging  Status = "charging"
	StatusSucceeded Status = "succeeded"
	StatusFailed    Status = "failed"
	StatusVoid      Status = "void"
	StatusRefunded  Status = "refunded"
)

// NoChargeID is the charge id of an order whose total is zero: there is
// nothing to charge (the gateway refuses zero amounts), so it is paid without
// a call.
const NoChargeID = "no_charge"

// NoRefundID is the refund id of a refunded order whose charge moved no
// money (NoChargeID): there is nothing to give back.
const NoRefundID = "no_refund"

// RefundKey is the gateway idempotency key of the record's refund: one
// refund per order, whatever is repeated. It is derived from the charge's
// secret key, so that no one who knows only the order id can take it first;
// a record written before charge keys existed falls back to the order id.
func (r Record) RefundKey() string { return "refund-" + r.GatewayKey() }

// GatewayKey is the idempotency key of the record's charge at the gateway:
// the random ChargeKey written with the charging record, or the order id
// for a record written before charge keys existed (its charge, if made, was
// made under the order id, and only that key replays it).
func (r Record) GatewayKey() string {
	if r.ChargeKey != "" {
		return r.ChargeKey
	}
	return r.OrderID
}

// Sentinel errors of the domain.
var (
	// ErrNotFound: no payment is recorded for the order.
	ErrNotFound = errors.New("payment not found")
	// ErrInvalidOrderID: the order id cannot be a key or subject token.
	ErrInvalidOrderID = errors.New("invalid order id")
	// ErrNoPaymentToken: the order's created event, which carries the
	// payment token, cannot be read. Permanent.
	ErrNoPaymentToken = errors.New("no payment token for order")
	// ErrTokenNotVisible: the order's created event is not found (yet). An
	// inventory reserved event proves it was stored, and a lagging replica
	// may answer a read: transient for a bounded number of attempts.
	ErrTokenNotVisible = errors.New("order created event not visible")
	// ErrGatewayUnavailable: the gateway did not answer usefully (5xx,
	// timeout, refused connection, circuit open). Transient: wait and retry,
	// never a failed payment.
	ErrGatewayUnavailable = errors.New("payment gateway unavailable")
	// ErrGatewayRejected: the gateway refused the request itself (a 4xx
	// other than a decline): a bug on our side that retrying cannot fix.
	ErrGatewayRejected = errors.New("payment gateway rejected the request")
	// ErrInvalidRecord: a stored record that breaks the invariants.
	ErrInvalidRecord = errors.New("invalid payment record")
	// ErrConflict: the record changed since it was read (or exists when it
	// was to be created): read it again and decide afresh.
	ErrConflict = errors.New("payment record changed concurrently")
)

// Record is the payment of one order, as stored in the payments bucket.
type Record struct {
	OrderID string `json:"order_id"`
	Status  Status `json:"status"`
	// ChargeKey is the charge's idempotency key at the gateway: random,
	// drawn when the charging record is first written and kept with it, so
	// that every retry and restart asks with the same key (a replay, never a
	// second charge) while no customer can know or derive it. A secret:
	// never shown outside the service.
	ChargeKey   string `json:"charge_key,omitempty"`
	ChargeID    string `json:"charge_id"`
	AmountCents int64  `json:"amount_cents"`
	Currency    string `json:"currency"`
	DeclineCode string `json:"decline_code"`
	// RefundID is the gateway's refund of ChargeID (refunded only).
	RefundID string `json:"refund_id,omitempty"`
	// CancelReason is why the order was cancelled (void and refunded).
	CancelReason string    `json:"cancel_reason,omitempty"`
	CreatedAt    time.Time `json:"created_at"`
	UpdatedAt    time.Time `json:"updated_at"`
}

// Validate checks the invariants of a record. Whether the order id can be
// a key and a subject token is the store's to check (store.Payments).
func (r Record) Validate() error {
	switch {
	case r.OrderID == "":
		return fmt.Errorf("%w: order id %q", ErrInvalidRecord, r.OrderID)
	case r.AmountCents < 0:
		return fmt.Errorf("%w: negative amount %d", ErrInvalidRecord, r.AmountCents)
	}
	switch r.Status {
	case StatusVoid:
		return nil // cancelled before any amount was known
	case StatusCharging, StatusFailed:
	case StatusSucceeded:
		if r.ChargeID == "" {
			return fmt.Errorf("%w: succeeded without a charge id", ErrInvalidRecord)
		}
	case StatusRefunded:
		if r.ChargeID == "" || r.RefundID == "" || r.CancelReason == "" {
			return fmt.Errorf("%w: refunded without a charge id, refund id or reason", ErrInvalidRecord)
		}
	default:
		return fmt.Errorf("%w: status %q", ErrInvalidRecord, r.Status)
	}
	if len(r.Currency) != 3 {
		return fmt.Errorf("%w: currency %q", ErrInvalidRecord, r.Currency)
	}
	return nil
}

// ChargeRequest is what the gateway is asked to charge.
type ChargeRequest struct {
	OrderID     string
	AmountCents int64
	Currency    string
	Token       string
	// IdempotencyKey makes a repeated charge (after a crash or a timeout)
	// a replay of the first one at the gateway: the record's GatewayKey.
	IdempotencyKey string
	TraceParent    string
}

// ChargeResult is the gateway's answer to a charge: succeeded, or declined
// with a code. Outages are errors, never results.
type ChargeResult struct {
	ChargeID    string
	Succeeded   bool
	DeclineCode string
	// Replayed is true when the gateway answered from its idempotency
	// store (the order had been charged before).
	Replayed bool
	// Mismatch, when set, says how the gateway's answer differed from the
	// charge asked for (order, amount, currency): the payment failed, and
	// the answer's charge is not ours.
	Mismatch string
}

// NewRecord builds the record of a charge's result.
func NewRecord(req ChargeRequest, res ChargeResult, now time.Time) Record {
	return NewIntent(req, now).Charged(res, now)
}

// NewIntent builds the charging record written before the gateway is asked
// to charge req, under req.IdempotencyKey.
func NewIntent(req ChargeRequest, now time.Time) Record {
	return Record{
		OrderID:     req.OrderID,
		ChargeKey:   req.IdempotencyKey,
		Status:      StatusCharging,
		AmountCents: req.AmountCents,
		Currency:    req.Currency,
		CreatedAt:   now.UTC(),
		UpdatedAt:   now.UTC(),
	}
}

// NewVoid builds the record of an order cancelled before it was charged:
// it stops any later charge.
func NewVoid(orderID, reason string, now time.Time) Record {
	return Record{OrderID: orderID, Status: StatusVoid, CancelReason: reason, CreatedAt: now.UTC(), UpdatedAt: now.UTC()}
}

// Charged returns the record after the gateway answered the charge.
func (r Record) Charged(res ChargeResult, now time.Time) Record {
	r.ChargeID = res.ChargeID
	r.UpdatedAt = now.UTC()
	if res.Succeeded {
		r.Status, r.DeclineCode = StatusSucceeded, ""
	} else {
		r.Status, r.DeclineCode = StatusFailed, res.DeclineCode
	}
	return r
}

// Refunded returns the record after its charge was refunded because the
// order was cancelled for reason.
func (r Record) Refunded(refundID, reason string, now time.Time) Record {
	r.Status, r.RefundID, r.CancelReason = StatusRefunded, refundID, reason
	r.UpdatedAt = now.UTC()
	return r
}

// RefundRequest is what the gateway is asked to refund: the whole charge.
type RefundRequest struct {
	OrderID     string
	ChargeID    string
	AmountCents int64
	// IdempotencyKey is the record's RefundKey: a repeated refund is a
	// replay.
	IdempotencyKey string
	TraceParent    string
}

// RefundResult is the gateway's answer to a refund. Outages are errors.
type RefundResult struct {
	RefundID string
	// Replayed is true when the gateway answered from its idempotency
	// store (the charge had been refunded before).
	Replayed bool
}
