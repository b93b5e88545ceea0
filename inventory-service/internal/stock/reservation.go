package stock

import (
	"fmt"
	"time"

	"github.com/eventshop/shared/events"
)

// Status is the state of an order's reservation.
type Status string

// Reservation statuses. reserved, rejected and void are decided by the
// first event seen for an order; released and committed follow reserved.
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
)

// Reservation records what the service decided for one order, stored under
// reservation.<order_id>. Recording the decision is what makes every
// handler idempotent: a redelivered event finds it and repeats the outcome.
type Reservation struct {
	OrderID     string              `json:"order_id"`
	Status      Status              `json:"status"`
	Lines       []events.PricedLine `json:"lines,omitempty"`
	TotalCents  int64               `json:"total_cents"`
	Currency    string              `json:"currency,omitempty"`
	Reason      string              `json:"reason,omitempty"`
	SKU         string              `json:"sku,omitempty"`
	Detail      string              `json:"detail,omitempty"`
	TraceParent string              `json:"traceparent,omitempty"`
	UpdatedAt   time.Time           `json:"updated_at"`
}

// Items returns the reserved lines as SKU and quantity.
func (r Reservation) Items() []events.Item {
	out := make([]events.Item, len(r.Lines))
	for i, l := range r.Lines {
		out[i] = events.Item{SKU: l.SKU, Quantity: l.Quantity}
	}
	return out
}

// Void returns the record of an order cancelled before it was seen.
func Void(orderID, traceparent string, now time.Time) Reservation {
	return Reservation{OrderID: orderID, Status: StatusVoid, TraceParent: traceparent, UpdatedAt: now.UTC()}
}

// Release moves a reserved order's units back to available. items holds the
// current state of every SKU of the reservation; the result holds the new
// state of each, in line order.
func (r Reservation) Release(items map[string]Item, now time.Time) (Reservation, []Item, error) {
	return r.settle(StatusReleased, items, now, func(it Item, q int64) (Item, error) {
		return move(it, q, reserved, available)
	})
}

// Commit turns a reserved order's units into sold ones.
func (r Reservation) Commit(items map[string]Item, now time.Time) (Reservation, []Item, error) {
	return r.settle(StatusCommitted, items, now, func(it Item, q int64) (Item, error) {
		return move(it, q, reserved, sold)
	})
}

func (r Reservation) settle(to Status, items map[string]Item, now time.Time, apply func(Item, int64) (Item, error)) (Reservation, []Item, error) {
	if r.Status != StatusReserved {
		return r, nil, fmt.Errorf("order %s: %s -> %s: %w", r.OrderID, r.Status, to, ErrInvalidTransition)
	}
	out := make([]Item, 0, len(r.Lines))
	for _, l := range r.Lines {
		it, ok := items[l.SKU]
		if !ok {
			return r, nil, fmt.Errorf("order %s: reserved sku %s is gone: %w", r.OrderID, l.SKU, ErrInvariant)
		}
		it, err := apply(it, l.Quantity)
		if err != nil {
			return r, nil, fmt.Errorf("order %s: %w", r.OrderID, err)
		}
		it.UpdatedAt = now.UTC()
		out = append(out, it)
	}
	r.Status = to
	r.UpdatedAt = now.UTC()
	return r, out, nil
}
