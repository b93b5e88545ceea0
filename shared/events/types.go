package events

import "time"

// Type is a CloudEvents "type" attribute. Each type has exactly one JSON
// schema per version; the version in use is named by the envelope's
// "dataschema" attribute.
type Type string

// The event types of the order saga.
const (
	OrderCreated       Type = "shop.order.created"
	OrderConfirmed     Type = "shop.order.confirmed"
	OrderCancelled     Type = "shop.order.cancelled"
	InventoryReserved  Type = "shop.inventory.reserved"
	InventoryRejected  Type = "shop.inventory.rejected"
	InventoryReleased  Type = "shop.inventory.released"
	InventoryCommitted Type = "shop.inventory.committed"
	PaymentSucceeded   Type = "shop.payment.succeeded"
	PaymentFailed      Type = "shop.payment.failed"
	PaymentRefunded    Type = "shop.payment.refunded"
	NotificationSent   Type = "shop.notification.sent"
)

// Cancellation and rejection reasons carried by events.
const (
	ReasonUnknownSKU        = "unknown_sku"
	ReasonInsufficientStock = "insufficient_stock"
	ReasonCurrencyMismatch  = "currency_mismatch"
	ReasonPaymentDeclined   = "payment_declined"
	ReasonTimeout           = "timeout"
	ReasonCardDeclined      = "card_declined"
)

// Item is one requested line of an order: a SKU and a quantity.
type Item struct {
	SKU      string `json:"sku"`
	Quantity int64  `json:"quantity"`
}

// PricedLine is an order line priced by the inventory service.
type PricedLine struct {
	SKU            string `json:"sku"`
	Name           string `json:"name"`
	Quantity       int64  `json:"quantity"`
	UnitPriceCents int64  `json:"unit_price_cents"`
	LineTotalCents int64  `json:"line_total_cents"`
}

// Address is where an order ships (order.created and order.confirmed v2).
// Country is an ISO 3166-1 alpha-2 code.
type Address struct {
	Name       string `json:"name"`
	Line1      string `json:"line1"`
	Line2      string `json:"line2,omitempty"`
	City       string `json:"city"`
	Region     string `json:"region,omitempty"`
	PostalCode string `json:"postal_code"`
	Country    string `json:"country"`
}

// OrderCreatedData is the payload of shop.order.created (v1 and v2).
type OrderCreatedData struct {
	OrderID      string    `json:"order_id"`
	CustomerID   string    `json:"customer_id"`
	Items        []Item    `json:"items"`
	PaymentToken string    `json:"payment_token"`
	CreatedAt    time.Time `json:"created_at"`
	// ShippingAddress (v2, optional) is where the order ships.
	ShippingAddress *Address `json:"shipping_address,omitempty"`
}

// OrderConfirmedData is the payload of shop.order.confirmed (v1 and v2).
type OrderConfirmedData struct {
	OrderID    string `json:"order_id"`
	CustomerID string `json:"customer_id"`
	TotalCents int64  `json:"total_cents"`
	Currency   string `json:"currency"`
	// ShippingAddress (v2, optional) is the created event's.
	ShippingAddress *Address `json:"shipping_address,omitempty"`
}

// OrderCancelledData is the payload of shop.order.cancelled.
type OrderCancelledData struct {
	OrderID    string `json:"order_id"`
	CustomerID string `json:"customer_id"`
	Reason     string `json:"reason"`
	Detail     string `json:"detail,omitempty"`
}

// InventoryReservedData is the payload of shop.inventory.reserved.
type InventoryReservedData struct {
	OrderID    string       `json:"order_id"`
	Lines      []PricedLine `json:"lines"`
	TotalCents int64        `json:"total_cents"`
	Currency   string       `json:"currency"`
}

// InventoryRejectedData is the payload of shop.inventory.rejected.
type InventoryRejectedData struct {
	OrderID string `json:"order_id"`
	Reason  string `json:"reason"`
	SKU     string `json:"sku,omitempty"`
	Detail  string `json:"detail,omitempty"`
}

// InventoryReleasedData is the payload of shop.inventory.released: the
// reservation of a cancelled order went back to available stock.
type InventoryReleasedData struct {
	OrderID string `json:"order_id"`
	Lines   []Item `json:"lines"`
}

// InventoryCommittedData is the payload of shop.inventory.committed: the
// reservation of a confirmed order became a sale.
type InventoryCommittedData struct {
	OrderID string `json:"order_id"`
	Lines   []Item `json:"lines"`
}

// PaymentSucceededData is the payload of shop.payment.succeeded.
type PaymentSucceededData struct {
	OrderID     string `json:"order_id"`
	ChargeID    string `json:"charge_id"`
	AmountCents int64  `json:"amount_cents"`
	Currency    string `json:"currency"`
}

// PaymentFailedData is the payload of shop.payment.failed (a decline, never
// an outage: outages wait in JetStream).
type PaymentFailedData struct {
	OrderID     string `json:"order_id"`
	Reason      string `json:"reason"`
	DeclineCode string `json:"decline_code,omitempty"`
	ChargeID    string `json:"charge_id,omitempty"`
	AmountCents int64  `json:"amount_cents"`
	Currency    string `json:"currency"`
}

// PaymentRefundedData is the payload of shop.payment.refunded: the charge
// of an order that was cancelled (a payment that arrived after the order's
// deadline, for example) went back to the customer. Reason is the order's
// cancellation reason.
type PaymentRefundedData struct {
	OrderID     string `json:"order_id"`
	ChargeID    string `json:"charge_id"`
	RefundID    string `json:"refund_id"`
	AmountCents int64  `json:"amount_cents"`
	Currency    string `json:"currency"`
	Reason      string `json:"reason"`
}

// NotificationSentData is the payload of shop.notification.sent.
type NotificationSentData struct {
	OrderID        string `json:"order_id"`
	NotificationID string `json:"notification_id"`
	Kind           string `json:"kind"`
	Channel        string `json:"channel"`
}
