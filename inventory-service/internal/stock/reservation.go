package stock

import (
	"fmt"
	"time"
)

// Status is the state of an order's reservation.
type Status string

// Reservation statuses. reserved, rejected and void are decided by the
// first event seen for an order; released and committed follow reserved.
// rejected, void, released and committed are final.
const (
	// StatusReserved: the order's units moved from available to reserved.
	StatusReserved Status = "reserved"
	// StatusRejected: the order could not be reserved; nothing moved.
	StatusRejected Status = "rejected"
	// StatusReleased: the order was cancelled and its units are available again.
	StatusReleased Status = "released"
	// StatusCommitted: the order was confirmed and its units are sold.
	StatusCommitted Status = "committed"
	// StatusVoid: the order was cancelled before it was seen; a late
	// created event must never reserve.
	StatusVoid Status = "void"
	// StatusCommitting and StatusReleasing: a reserved order of the earlier
	// version (not KeepsMarks) whose units are being sold or given back, SKU
	// by SKU (see Claim).
	StatusCommitting Status = "committing"
	StatusReleasing  Status = "releasing"
)

// Final reports whether s can never change again.
func (s Status) Final() bool {
	switch s {
	case StatusRejected, StatusVoid, StatusReleased, StatusCommitted:
		return true
	default:
		return false
	}
}

// Reservation records what the service decided for one order, stored under
// reservation.<order_id>. Recording the decision is what makes every
// handler idempotent: a redelivered event finds it and repeats the outcome.
type Reservation struct {
	OrderID     string       `json:"order_id"`
	Status      Status       `json:"status"`
	Lines       []PricedLine `json:"lines,omitempty"`
	TotalCents  int64        `json:"total_cents"`
	Currency    string       `json:"currency,omitempty"`
	Reason      string       `json:"reason,omitempty"`
	SKU         string       `json:"sku,omitempty"`
	Detail      string       `json:"detail,omitempty"`
	TraceParent string       `json:"traceparent,omitempty"`
	UpdatedAt   time.Time    `json:"updated_at"`
	// KeepsMarks says the order's reserve marks stay on its items until its
	// units are settled, so one write of the record settles it (Settle).
	// Records of the earlier version lack it: their marks may be gone, and
	// they are settled SKU by SKU (Claim).
	KeepsMarks bool `json:"keeps_marks,omitempty"`
}

// Items returns the reserved lines as SKU and quantity.
func (r Reservation) Items() []Line {
	out := make([]Line, len(r.Lines))
	for i, l := range r.Lines {
		out[i] = Line{SKU: l.SKU, Quantity: l.Quantity}
	}
	return out
}

// Void returns the record of an order cancelled before it was seen.
func Void(orderID, traceparent string, now time.Time) Reservation {
	return Reservation{OrderID: orderID, Status: StatusVoid, TraceParent: traceparent, UpdatedAt: now.UTC()}
}

// Settle moves a reserved order that keeps its marks to committed or
// released in one write: the record is the decision and the end at once.
// The units follow on the items, by their reserve marks (Item.Resolve).
func (r Reservation) Settle(to Status, now time.Time) (Reservation, error) {
	if r.Status != StatusReserved || !r.KeepsMarks || (to != StatusCommitted && to != StatusReleased) {
		return r, fmt.Errorf("order %s: %s -> %s (keeps marks: %t): %w", r.OrderID, r.Status, to, r.KeepsMarks, ErrInvalidTransition)
	}
	r.Status = to
	r.UpdatedAt = now.UTC()
	return r, nil
}

// Claim moves a reserved order of the earlier version to committing or
// releasing: the record says which change is under way before any SKU is
// changed, so a cancel and a confirmation of the same order can never both
// move its units, and a handler that dies half way is finished by the
// redelivery.
func (r Reservation) Claim(to Status, now time.Time) (Reservation, error) {
	if r.Status != StatusReserved || (to != StatusCommitting && to != StatusReleasing) {
		return r, fmt.Errorf("order %s: %s -> %s: %w", r.OrderID, r.Status, to, ErrInvalidTransition)
	}
	r.Status = to
	r.UpdatedAt = now.UTC()
	return r, nil
}

// Op returns the change a committing or releasing order makes to its SKUs.
func (r Reservation) Op() (Op, error) {
	switch r.Status {
	case StatusCommitting:
		return OpCommit, nil
	case StatusReleasing:
		return OpRelease, nil
	default:
		return "", fmt.Errorf("order %s is %s, not settling: %w", r.OrderID, r.Status, ErrInvalidTransition)
	}
}

// Finish moves a committing order to committed and a releasing one to
// released, once every SKU carries the change.
func (r Reservation) Finish(now time.Time) (Reservation, error) {
	switch r.Status {
	case StatusCommitting:
		r.Status = StatusCommitted
	case StatusReleasing:
		r.Status = StatusReleased
	default:
		return r, fmt.Errorf("order %s: finish %s: %w", r.OrderID, r.Status, ErrInvalidTransition)
	}
	r.UpdatedAt = now.UTC()
	return r, nil
}

// CheckConfirmation checks the total a confirmation claims against the
// reservation's: an order is confirmed for what was reserved and paid. A
// mismatch wraps ErrAmountMismatch.
func (r Reservation) CheckConfirmation(totalCents int64, currency string) error {
	if totalCents == r.TotalCents && currency == r.Currency {
		return nil
	}
	return amountMismatch{fmt.Errorf("order %s confirmed for %d %s, but its reservation totals %d %s",
		r.OrderID, totalCents, currency, r.TotalCents, r.Currency)}
}

// amountMismatch is an error that is ErrAmountMismatch without saying so in
// its message.
type amountMismatch struct{ error }

func (amountMismatch) Is(target error) bool { return target == ErrAmountMismatch }
