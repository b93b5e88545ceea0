package events

import (
	"fmt"
)

// Stream names. One stream per domain; the aggregate (order) id is the second
// subject token so that consumers can filter and operators can find an
// order's events by subject.
const (
	StreamOrders        = "ORDERS"
	StreamInventory     = "INVENTORY"
	StreamPayments      = "PAYMENTS"
	StreamNotifications = "NOTIFICATIONS"
	StreamAudit         = "AUDIT"
)

// StreamSubjects maps each domain stream to its subject space.
var StreamSubjects = map[string]string{
	StreamOrders:        "orders.>",
	StreamInventory:     "inventory.>",
	StreamPayments:      "payments.>",
	StreamNotifications: "notifications.>",
	StreamAudit:         "audit.>",
}

// DomainStreams lists the streams that carry saga events, in saga order.
var DomainStreams = []string{StreamOrders, StreamInventory, StreamPayments, StreamNotifications}

// route says where a type is published: subject prefix and verb.
type route struct{ prefix, verb string }

var routes = map[Type]route{
	OrderCreated:       {"orders", "created"},
	OrderConfirmed:     {"orders", "confirmed"},
	OrderCancelled:     {"orders", "cancelled"},
	InventoryReserved:  {"inventory", "reserved"},
	InventoryRejected:  {"inventory", "rejected"},
	InventoryReleased:  {"inventory", "released"},
	InventoryCommitted: {"inventory", "committed"},
	PaymentSucceeded:   {"payments", "succeeded"},
	PaymentFailed:      {"payments", "failed"},
	PaymentRefunded:    {"payments", "refunded"},
	NotificationSent:   {"notifications", "sent"},
}

// ValidID reports whether s may be used as an order id or SKU: 1 to 64
// letters, digits, '-' or '_'. It becomes a subject token, so dots,
// wildcards and spaces are not allowed.
func ValidID(s string) bool { return validToken(s, 64) }

// Subject returns the subject an event of type t about orderID is published
// on, for example orders.<order_id>.created.
func Subject(t Type, orderID string) (string, error) {
	r, ok := routes[t]
	if !ok {
		return "", fmt.Errorf("subject for %q: %w", t, ErrUnknownType)
	}
	if !ValidID(orderID) {
		return "", fmt.Errorf("subject for order id %q: %w", orderID, ErrInvalidID)
	}
	return r.prefix + "." + orderID + "." + r.verb, nil
}

// FilterSubject returns the wildcard subject matching every event of type t,
// for example orders.*.created, for consumer filters.
func FilterSubject(t Type) string {
	r := routes[t]
	return r.prefix + ".*." + r.verb
}
