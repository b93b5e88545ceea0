// Package notification is the notification domain: the kinds of
// notification (one per final order transition), its deterministic id, its
// delivery state (pending until a channel accepted it, then sent) and the
// errors that decide whether a failed delivery is retried. It knows no
// event: internal/app reads what an order event tells the customer.
package notification

import (
	"errors"
	"time"

	"github.com/google/uuid"
)

// Sentinel errors of the domain.
var (
	// ErrNotFound means no notification is recorded for the key.
	ErrNotFound = errors.New("notification not found")
	// ErrConflict means the record changed between read and write; the
	// caller reads it again and retries.
	ErrConflict = errors.New("notification changed concurrently")
	// ErrRejected means the receiver refused the notification for good (a
	// client error): retrying cannot help, the event is dead-lettered.
	ErrRejected = errors.New("notification rejected by the receiver")
	// ErrUnsupportedEvent means the event does not cause a notification.
	ErrUnsupportedEvent = errors.New("event does not cause a notification")
)

// Kind is what a notification tells the customer.
type Kind string

// The kinds of notification, one per final order transition.
const (
	KindOrderConfirmed Kind = "order_confirmed"
	KindOrderCancelled Kind = "order_cancelled"
)

// Kinds lists every kind, for look-ups by order.
var Kinds = []Kind{KindOrderConfirmed, KindOrderCancelled}

// Status is the delivery state of a notification.
type Status string

// Delivery states.
const (
	// StatusPending: delivery was attempted (or is about to be) but no
	// channel has accepted it yet.
	StatusPending Status = "pending"
	// StatusSent: a channel accepted it; it is never sent again.
	StatusSent Status = "sent"
)

// Payload is what the customer is told.
type Payload struct {
	OrderID    string `json:"order_id"`
	Kind       Kind   `json:"kind"`
	CustomerID string `json:"customer_id"`
	// TotalCents and Currency are set for a confirmed order.
	TotalCents *int64 `json:"total_cents,omitempty"`
	Currency   string `json:"currency,omitempty"`
	// Reason and Detail are set for a cancelled order.
	Reason string `json:"reason,omitempty"`
	Detail string `json:"detail,omitempty"`
	// ShipTo is where a confirmed order ships, when its confirmation
	// (order.confirmed v2) says.
	ShipTo *Address `json:"shipping_address,omitempty"`
}

// Address is where an order ships (the shape of the order.confirmed v2
// shipping_address).
type Address struct {
	Name       string `json:"name"`
	Line1      string `json:"line1"`
	Line2      string `json:"line2,omitempty"`
	City       string `json:"city"`
	Region     string `json:"region,omitempty"`
	PostalCode string `json:"postal_code"`
	Country    string `json:"country"`
}

// Notification is the record of one notification, stored under
// Key(order_id, kind).
type Notification struct {
	ID       string  `json:"notification_id"`
	OrderID  string  `json:"order_id"`
	Kind     Kind    `json:"kind"`
	Channel  string  `json:"channel"`
	Status   Status  `json:"status"`
	Attempts int     `json:"attempts"`
	Payload  Payload `json:"payload"`
	// TraceID ties the record to the trace of the order for log lines.
	TraceID   string     `json:"trace_id,omitempty"`
	CreatedAt time.Time  `json:"created_at"`
	SentAt    *time.Time `json:"sent_at,omitempty"`
}

// namespace makes notification ids deterministic UUIDv5 values in a space
// of their own.
var namespace = uuid.NewSHA1(uuid.NameSpaceURL, []byte("https://eventshop.dev/notifications"))

// ID returns the notification id of an order's notification of kind k. It
// is derived, not random, so every attempt to deliver the same notification,
// in any process, carries the same id and the receiver can deduplicate.
func ID(orderID string, k Kind) string {
	return uuid.NewSHA1(namespace, []byte(orderID+"/"+string(k))).String()
}

// Key returns the state key of an order's notification of kind k.
func Key(orderID string, k Kind) string { return orderID + "." + string(k) }

// New returns the pending notification that tells p, to be delivered
// through channel; traceID is the trace of the event that caused it.
func New(p Payload, channel, traceID string, now time.Time) Notification {
	return Notification{
		ID:        ID(p.OrderID, p.Kind),
		OrderID:   p.OrderID,
		Kind:      p.Kind,
		Channel:   channel,
		Status:    StatusPending,
		Payload:   p,
		TraceID:   traceID,
		CreatedAt: now.UTC(),
	}
}

// Key returns the state key of n.
func (n Notification) Key() string { return Key(n.OrderID, n.Kind) }

// Sent reports whether a channel has accepted n.
func (n Notification) Sent() bool { return n.Status == StatusSent }

// Attempt records one more delivery attempt through channel.
func (n *Notification) Attempt(channel string) {
	n.Attempts++
	n.Channel = channel
}

// MarkSent records that a channel accepted n at now.
func (n *Notification) MarkSent(now time.Time) {
	t := now.UTC()
	n.Status = StatusSent
	n.SentAt = &t
}
