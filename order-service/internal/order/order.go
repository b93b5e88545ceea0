// Package order is the order domain: the Order aggregate, its statuses and
// the state machine that moves it through the saga. The transitions are pure
// functions so that they can be tested without NATS and replayed safely:
// events about one order arrive from different streams and consumers, in any
// order and possibly more than once, and the functions are written so that
// the outcome does not depend on that order.
package order

import (
	"errors"
	"fmt"
	"strings"
	"time"
)

// Status is where an order stands in the saga.
type Status string

// The statuses of an order. CONFIRMED and CANCELLED are final.
const (
	StatusPending   Status = "PENDING"
	StatusReserved  Status = "RESERVED"
	StatusConfirmed Status = "CONFIRMED"
	StatusCancelled Status = "CANCELLED"
)

// Cancellation reasons an order can carry.
const (
	ReasonUnknownSKU        = "unknown_sku"
	ReasonInsufficientStock = "insufficient_stock"
	ReasonCurrencyMismatch  = "currency_mismatch"
	ReasonPaymentDeclined   = "payment_declined"
	ReasonTimeout           = "timeout"
)

// maxDetail bounds cancel_detail: the order.cancelled schema allows 1024.
const maxDetail = 1024

// Sentinel errors of the domain.
var (
	// ErrNotFound means no order with that id exists.
	ErrNotFound = errors.New("order not found")
	// ErrInvalidOrder means the data for a new order breaks an invariant.
	ErrInvalidOrder = errors.New("invalid order")
	// ErrInvalidEvent means an event's content cannot apply to any order
	// (wrong order id, unknown reason, missing amounts): redelivery cannot
	// fix it.
	ErrInvalidEvent = errors.New("invalid event for order")
	// ErrInvalidTransition means the event contradicts what the order has
	// already recorded in a way the saga cannot produce (an inventory
	// rejection for an order whose stock was reserved).
	ErrInvalidTransition = errors.New("invalid order transition")
	// ErrPaidAfterCancel means a payment succeeded for an order that was
	// already cancelled (it missed its deadline, say). The order stays
	// cancelled; the payment service refunds the charge when it sees the
	// cancellation, so the caller logs it and moves on.
	ErrPaidAfterCancel = errors.New("payment succeeded for a cancelled order")
	// ErrNotDue means the order's deadline has not passed yet.
	ErrNotDue = errors.New("order deadline not due yet")
	// ErrNotReserved means a payment outcome arrived for an order that has
	// no reservation: the payment service charges only reserved orders,
	// for their reserved total, so the event did not come from the saga.
	ErrNotReserved = errors.New("payment outcome for an order whose stock was never reserved")
	// ErrAmountMismatch means a payment outcome's amount or currency is not
	// the order's total: the payment service charges exactly the reserved
	// total, so the event did not come from the saga.
	ErrAmountMismatch = errors.New("payment amount is not the order's total")
)

// Item is one requested line: a SKU and a quantity.
type Item struct {
	SKU      string `json:"sku"`
	Quantity int64  `json:"quantity"`
}

// Line is an order line priced by the inventory service.
type Line struct {
	SKU            string `json:"sku"`
	Name           string `json:"name"`
	Quantity       int64  `json:"quantity"`
	UnitPriceCents int64  `json:"unit_price_cents"`
	LineTotalCents int64  `json:"line_total_cents"`
}

// Order is the order aggregate. Its JSON form is what the order store keeps.
// TotalCents is meaningful only when Currency is set: before inventory has
// priced the order (or payment has reported the amount), neither is known.
type Order struct {
	ID           string    `json:"order_id"`
	CustomerID   string    `json:"customer_id"`
	Status       Status    `json:"status"`
	Items        []Item    `json:"items"`
	Lines        []Line    `json:"lines,omitempty"`
	TotalCents   int64     `json:"total_cents"`
	Currency     string    `json:"currency,omitempty"`
	CancelReason string    `json:"cancel_reason,omitempty"`
	CancelDetail string    `json:"cancel_detail,omitempty"`
	ChargeID     string    `json:"charge_id,omitempty"`
	CreatedAt    time.Time `json:"created_at"`
	UpdatedAt    time.Time `json:"updated_at"`
	TraceParent  string    `json:"traceparent,omitempty"`
	// ShipTo is where the order ships, if the customer said.
	ShipTo *Address `json:"shipping_address,omitempty"`
}

// Address is where an order ships. Country is an ISO 3166-1 alpha-2 code.
type Address struct {
	Name       string `json:"name"`
	Line1      string `json:"line1"`
	Line2      string `json:"line2,omitempty"`
	City       string `json:"city"`
	Region     string `json:"region,omitempty"`
	PostalCode string `json:"postal_code"`
	Country    string `json:"country"`
}

// Draft is what a new order is made from: the content of its created event.
type Draft struct {
	ID          string
	CustomerID  string
	Items       []Item
	CreatedAt   time.Time
	TraceParent string
	ShipTo      *Address
}

// New returns a PENDING order made from d.
func New(d Draft) (Order, error) {
	switch {
	case d.ID == "":
		return Order{}, fmt.Errorf("%w: empty id", ErrInvalidOrder)
	case d.CustomerID == "":
		return Order{}, fmt.Errorf("%w: empty customer id", ErrInvalidOrder)
	case len(d.Items) == 0:
		return Order{}, fmt.Errorf("%w: no items", ErrInvalidOrder)
	case d.CreatedAt.IsZero():
		return Order{}, fmt.Errorf("%w: no creation time", ErrInvalidOrder)
	}
	for _, it := range d.Items {
		if it.SKU == "" || it.Quantity < 1 {
			return Order{}, fmt.Errorf("%w: item %+v", ErrInvalidOrder, it)
		}
	}
	return Order{
		ID:          d.ID,
		CustomerID:  d.CustomerID,
		Status:      StatusPending,
		Items:       append([]Item(nil), d.Items...),
		CreatedAt:   d.CreatedAt.UTC(),
		UpdatedAt:   d.CreatedAt.UTC(),
		TraceParent: d.TraceParent,
		ShipTo:      d.ShipTo,
	}, nil
}

// Final reports whether the order reached a status it never leaves.
func (o Order) Final() bool { return o.Status == StatusConfirmed || o.Status == StatusCancelled }

// TotalKnown reports whether the order's total and currency are known.
func (o Order) TotalKnown() bool { return o.Currency != "" }

// Reservation is the content of an inventory.reserved event.
type Reservation struct {
	OrderID    string
	Lines      []Line
	TotalCents int64
	Currency   string
	// At is when the stock was reserved.
	At time.Time
}

// Rejection is the content of an inventory.rejected event.
type Rejection struct {
	OrderID string
	Reason  string
	SKU     string
	Detail  string
}

// Payment is the content of a payments.succeeded event.
type Payment struct {
	OrderID     string
	ChargeID    string
	AmountCents int64
	Currency    string
}

// Decline is the content of a payments.failed event.
type Decline struct {
	OrderID     string
	DeclineCode string
	AmountCents int64
	Currency    string
}

// The Apply functions below return the order after the event, whether it
// changed (and so must be stored), and an error. They never mutate their
// argument's slices.

// ApplyReserved applies an inventory reservation. PENDING becomes RESERVED
// with the priced lines and total. A payment outcome may have been handled
// first (it comes from another stream): on a final order the reservation
// only fills the lines and total if they are still unknown. A replay on a
// RESERVED order changes nothing.
func ApplyReserved(o Order, r Reservation, now time.Time) (Order, bool, error) {
	if err := sameOrder(o, r.OrderID); err != nil {
		return o, false, err
	}
	if len(r.Lines) == 0 || r.Currency == "" || r.TotalCents < 0 {
		return o, false, fmt.Errorf("%w: reservation without lines, total or currency", ErrInvalidEvent)
	}
	switch o.Status {
	case StatusPending:
		o.Status = StatusReserved
		o.Lines = append([]Line(nil), r.Lines...)
		o.TotalCents, o.Currency = r.TotalCents, r.Currency
		o.UpdatedAt = now.UTC()
		return o, true, nil
	case StatusReserved:
		return o, false, nil
	default:
		changed := false
		if len(o.Lines) == 0 {
			o.Lines = append([]Line(nil), r.Lines...)
			changed = true
		}
		if !o.TotalKnown() {
			o.TotalCents, o.Currency = r.TotalCents, r.Currency
			changed = true
		}
		if changed {
			o.UpdatedAt = now.UTC()
		}
		return o, changed, nil
	}
}

// ApplyRejected applies an inventory rejection: PENDING becomes CANCELLED
// with the rejection's reason. An order cancelled without a reservation
// (its deadline passed first) is left alone. An order whose stock was
// reserved (RESERVED, CONFIRMED, or cancelled after its reservation)
// cannot be rejected too: inventory answers each order once, so that is an
// ErrInvalidTransition, refused and for an operator to look at.
func ApplyRejected(o Order, r Rejection, now time.Time) (Order, bool, error) {
	if err := sameOrder(o, r.OrderID); err != nil {
		return o, false, err
	}
	switch r.Reason {
	case ReasonUnknownSKU, ReasonInsufficientStock, ReasonCurrencyMismatch:
	default:
		return o, false, fmt.Errorf("%w: rejection reason %q", ErrInvalidEvent, r.Reason)
	}
	if o.Reserved() || o.Status == StatusConfirmed {
		return o, false, fmt.Errorf("%w: inventory rejected order %s (%s) after its stock was reserved (the order is %s)",
			ErrInvalidTransition, o.ID, r.Reason, o.Status)
	}
	switch o.Status {
	case StatusPending:
		detail := r.Detail
		if detail == "" && r.SKU != "" {
			detail = "sku " + r.SKU
		}
		return cancel(o, r.Reason, detail, now), true, nil
	default:
		return o, false, nil
	}
}

// Reserved reports whether inventory reserved the order's stock: only a
// reservation prices an order.
func (o Order) Reserved() bool { return o.TotalKnown() || len(o.Lines) > 0 }

// checkCharge holds a payment outcome to what the payment service can
// produce: an outcome only for a reserved order, for its reserved total.
func checkCharge(o Order, amount int64, currency string) error {
	if !o.TotalKnown() {
		return fmt.Errorf("%w: order %s (%s) has no reservation to pay for", ErrNotReserved, o.ID, o.Status)
	}
	if amount != o.TotalCents || currency != o.Currency {
		return fmt.Errorf("%w: the event says %d %s, order %s's reserved total is %d %s",
			ErrAmountMismatch, amount, currency, o.ID, o.TotalCents, o.Currency)
	}
	return nil
}

// ApplyPaymentSucceeded applies a successful charge: a RESERVED order
// becomes CONFIRMED, keeping the charge id. The charge must be of the
// order's reserved total (ErrNotReserved, ErrAmountMismatch otherwise:
// the payment service charges nothing else). A replay on a CONFIRMED order
// changes nothing; another charge for it is an ErrInvalidTransition. On an
// order cancelled for another reason than a decline, the order stays
// cancelled and ErrPaidAfterCancel tells the caller money must go back; a
// success after a decline is an ErrInvalidTransition (payment answers
// each order once).
func ApplyPaymentSucceeded(o Order, p Payment, now time.Time) (Order, bool, error) {
	if err := sameOrder(o, p.OrderID); err != nil {
		return o, false, err
	}
	if p.ChargeID == "" || p.Currency == "" || p.AmountCents < 0 {
		return o, false, fmt.Errorf("%w: payment without charge id, amount or currency", ErrInvalidEvent)
	}
	if err := checkCharge(o, p.AmountCents, p.Currency); err != nil {
		return o, false, err
	}
	switch o.Status {
	case StatusPending, StatusReserved:
		o.Status = StatusConfirmed
		o.ChargeID = p.ChargeID
		o.UpdatedAt = now.UTC()
		return o, true, nil
	case StatusCancelled:
		if o.CancelReason == ReasonPaymentDeclined {
			return o, false, fmt.Errorf("%w: a charge (%s) succeeded for order %s whose payment was declined", ErrInvalidTransition, p.ChargeID, o.ID)
		}
		return o, false, fmt.Errorf("%w: order %s (charge %s)", ErrPaidAfterCancel, o.ID, p.ChargeID)
	default:
		if o.ChargeID != "" && o.ChargeID != p.ChargeID {
			return o, false, fmt.Errorf("%w: order %s was confirmed by charge %s, not %s", ErrInvalidTransition, o.ID, o.ChargeID, p.ChargeID)
		}
		return o, false, nil
	}
}

// ApplyPaymentFailed applies a declined charge: a RESERVED order becomes
// CANCELLED with reason payment_declined and the decline code as detail.
// The decline must be of the order's reserved total (ErrNotReserved,
// ErrAmountMismatch otherwise). A CANCELLED order is left alone; a
// CONFIRMED one cannot be declined too (ErrInvalidTransition: payment
// answers each order once).
func ApplyPaymentFailed(o Order, d Decline, now time.Time) (Order, bool, error) {
	if err := sameOrder(o, d.OrderID); err != nil {
		return o, false, err
	}
	if err := checkCharge(o, d.AmountCents, d.Currency); err != nil {
		return o, false, err
	}
	switch o.Status {
	case StatusPending, StatusReserved:
		return cancel(o, ReasonPaymentDeclined, d.DeclineCode, now), true, nil
	case StatusConfirmed:
		return o, false, fmt.Errorf("%w: a decline for order %s, which charge %s confirmed", ErrInvalidTransition, o.ID, o.ChargeID)
	default:
		return o, false, nil
	}
}

// Decision is what an order's final event (order.confirmed or
// order.cancelled) says: the event is the decision (docs/architecture.md,
// "Order creation and the order's state").
type Decision struct {
	Status     Status
	CustomerID string
	// TotalCents and Currency are the confirmed total.
	TotalCents int64
	Currency   string
	// Reason and Detail say why an order was cancelled.
	Reason string
	Detail string
	// At is when the decision was published.
	At time.Time
}

// ApplyDecision returns the order as its final event says it ended. The
// event must be about the order's customer and name a final status
// (ErrInvalidEvent otherwise).
func ApplyDecision(o Order, d Decision) (Order, error) {
	if d.CustomerID != o.CustomerID {
		return o, fmt.Errorf("%w: the %s event of order %s is about customer %q, not %q", ErrInvalidEvent, d.Status, o.ID, d.CustomerID, o.CustomerID)
	}
	switch d.Status {
	case StatusConfirmed:
		o.Status = StatusConfirmed
		o.TotalCents, o.Currency = d.TotalCents, d.Currency
	case StatusCancelled:
		o = cancel(o, d.Reason, d.Detail, d.At)
	default:
		return o, fmt.Errorf("%w: %q is not a final status", ErrInvalidEvent, d.Status)
	}
	o.UpdatedAt = d.At.UTC()
	return o, nil
}

// Due returns when an order not final by then is cancelled, given the
// deadline every order has from its creation.
func (o Order) Due(deadline time.Duration) time.Time { return o.CreatedAt.Add(deadline) }

// ApplyDeadline enforces the deadline: a PENDING or RESERVED order whose
// deadline has passed becomes CANCELLED with reason timeout (whatever it
// was waiting for: stock, or a payment that never answered). Before the
// deadline the error wraps ErrNotDue. A final order is left alone: the
// deadline only ever decides for an order nothing else has decided.
func ApplyDeadline(o Order, deadline time.Duration, now time.Time) (Order, bool, error) {
	switch o.Status {
	case StatusPending, StatusReserved:
	default:
		return o, false, nil
	}
	if due := o.Due(deadline); now.Before(due) {
		return o, false, fmt.Errorf("%w: order %s is due at %s", ErrNotDue, o.ID, due.Format(time.RFC3339Nano))
	}
	return cancel(o, ReasonTimeout, fmt.Sprintf("no final outcome within %s (was %s)", deadline, o.Status), now), true, nil
}

func cancel(o Order, reason, detail string, now time.Time) Order {
	o.Status = StatusCancelled
	o.CancelReason = reason
	o.CancelDetail = truncate(strings.TrimSpace(detail), maxDetail)
	o.UpdatedAt = now.UTC()
	return o
}

func sameOrder(o Order, eventOrderID string) error {
	if eventOrderID != o.ID {
		return fmt.Errorf("%w: event is about order %q, not %q", ErrInvalidEvent, eventOrderID, o.ID)
	}
	return nil
}

func truncate(s string, n int) string {
	if len(s) > n {
		return s[:n]
	}
	return s
}
