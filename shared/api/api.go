// Package api holds the bodies the services' HTTP APIs answer and accept,
// as Go types for their clients (the end-to-end tests, the load generator,
// shopctl), written once. Each type is named after the schema of the same
// name in the OpenAPI documents (shared/api/openapi) and is held to it by a
// test: the same fields, JSON names and types, and a field is optional
// (omitempty) exactly when the schema does not require it.
//
// The package needs nothing but the standard library, the platform's
// problem details type and the dead-letter views, so that a client
// importing it brings in no server code. Where a service's answer is the body as documented, the service
// answers with these types too.
package api

import (
	"encoding/json"
	"time"

	"github.com/eventshop/shared/platform/deadletter/view"
	"github.com/eventshop/shared/platform/problem"
)

// Problem is an RFC 9457 problem details body: every service's error
// answer, as application/problem+json. It is the type the services write.
type Problem = problem.Problem

// ProblemType returns the problem type URN of slug, for example
// "urn:eventshop:problem:order-not-found" for "order-not-found".
func ProblemType(slug string) string { return problem.Type(slug) }

// Health is the body of GET /health.
type Health struct {
	Status string `json:"status"`
}

// Readiness is the body of GET /ready (200 ready, 503 not).
type Readiness struct {
	Ready bool `json:"ready"`
	// Checks names each check: "ok", or why it fails.
	Checks map[string]string `json:"checks"`
	// Info holds details that do not decide readiness.
	Info map[string]string `json:"info,omitempty"`
}

// Order statuses.
const (
	StatusPending   = "PENDING"
	StatusReserved  = "RESERVED"
	StatusConfirmed = "CONFIRMED"
	StatusCancelled = "CANCELLED"
)

// Item is one requested line of an order.
type Item struct {
	SKU      string `json:"sku"`
	Quantity int64  `json:"quantity"`
}

// ShippingAddress is where an order ships.
type ShippingAddress struct {
	Name       string `json:"name"`
	Line1      string `json:"line1"`
	Line2      string `json:"line2,omitempty"`
	City       string `json:"city"`
	Region     string `json:"region,omitempty"`
	PostalCode string `json:"postal_code"`
	Country    string `json:"country"`
}

// CreateOrderRequest is the body of POST /orders.
type CreateOrderRequest struct {
	CustomerID      string           `json:"customer_id"`
	Items           []Item           `json:"items"`
	PaymentToken    string           `json:"payment_token"`
	ShippingAddress *ShippingAddress `json:"shipping_address,omitempty"`
}

// OrderAccepted is the answer to POST /orders (202).
type OrderAccepted struct {
	OrderID string `json:"order_id"`
	Status  string `json:"status"`
}

// Line is an order line as the inventory priced it.
type Line struct {
	SKU            string `json:"sku"`
	Name           string `json:"name"`
	Quantity       int64  `json:"quantity"`
	UnitPriceCents int64  `json:"unit_price_cents"`
	LineTotalCents int64  `json:"line_total_cents"`
}

// Order is the body of GET /orders/{id}: an order as its events tell it.
type Order struct {
	OrderID    string `json:"order_id"`
	CustomerID string `json:"customer_id"`
	Status     string `json:"status"`
	Items      []Item `json:"items"`
	// Lines and the total are known once the stock is reserved.
	Lines           []Line           `json:"lines,omitempty"`
	TotalCents      *int64           `json:"total_cents,omitempty"`
	Currency        string           `json:"currency,omitempty"`
	CancelReason    string           `json:"cancel_reason,omitempty"`
	CancelDetail    string           `json:"cancel_detail,omitempty"`
	CreatedAt       time.Time        `json:"created_at"`
	UpdatedAt       time.Time        `json:"updated_at"`
	ShippingAddress *ShippingAddress `json:"shipping_address,omitempty"`
}

// Final reports whether the order is confirmed or cancelled.
func (o Order) Final() bool { return o.Status == StatusConfirmed || o.Status == StatusCancelled }

// OrderList is the body of GET /orders?customer_id=.
type OrderList struct {
	Orders []Order `json:"orders"`
	// Next is the cursor of the next page; empty on the last.
	Next string `json:"next,omitempty"`
}

// PutStockRequest is the body of PUT /inventory/{sku}.
type PutStockRequest struct {
	Name       string `json:"name"`
	PriceCents int64  `json:"price_cents"`
	Currency   string `json:"currency"`
	Available  int64  `json:"available"`
}

// StockItem is the body of GET /inventory/{sku}.
type StockItem struct {
	SKU        string `json:"sku"`
	Name       string `json:"name"`
	PriceCents int64  `json:"price_cents"`
	Currency   string `json:"currency"`
	Available  int64  `json:"available"`
	Reserved   int64  `json:"reserved"`
	Sold       int64  `json:"sold"`
}

// StockList is the body of GET /inventory.
type StockList struct {
	Items []StockItem `json:"items"`
}

// Payment is the body of GET /payments/{order_id}.
type Payment struct {
	OrderID      string    `json:"order_id"`
	Status       string    `json:"status"`
	ChargeID     string    `json:"charge_id"`
	AmountCents  int64     `json:"amount_cents"`
	Currency     string    `json:"currency"`
	DeclineCode  string    `json:"decline_code"`
	RefundID     string    `json:"refund_id,omitempty"`
	CancelReason string    `json:"cancel_reason,omitempty"`
	CreatedAt    time.Time `json:"created_at"`
	UpdatedAt    time.Time `json:"updated_at"`
}

// Breaker is the body of GET /breaker.
type Breaker struct {
	State               string `json:"state"`
	ConsecutiveFailures int    `json:"consecutive_failures"`
	ProbesInFlight      int    `json:"probes_in_flight"`
	RetryAfterMS        int64  `json:"retry_after_ms"`
}

// NotificationList is the body of GET /notifications?order_id=.
type NotificationList struct {
	OrderID       string         `json:"order_id"`
	Notifications []Notification `json:"notifications"`
}

// Notification is one notification of an order.
type Notification struct {
	NotificationID string              `json:"notification_id"`
	OrderID        string              `json:"order_id"`
	Kind           string              `json:"kind"`
	Channel        string              `json:"channel"`
	Status         string              `json:"status"`
	Attempts       int                 `json:"attempts"`
	Payload        NotificationPayload `json:"payload"`
	TraceID        string              `json:"trace_id,omitempty"`
	CreatedAt      time.Time           `json:"created_at"`
	SentAt         *time.Time          `json:"sent_at,omitempty"`
}

// NotificationPayload is what a notification tells the customer.
type NotificationPayload struct {
	OrderID    string `json:"order_id"`
	Kind       string `json:"kind"`
	CustomerID string `json:"customer_id"`
	// TotalCents and Currency are set for a confirmed order.
	TotalCents *int64 `json:"total_cents,omitempty"`
	Currency   string `json:"currency,omitempty"`
	// Reason and Detail are set for a cancelled order.
	Reason          string           `json:"reason,omitempty"`
	Detail          string           `json:"detail,omitempty"`
	ShippingAddress *ShippingAddress `json:"shipping_address,omitempty"`
}

// Timeline is the body of GET /audit/orders/{id}.
type Timeline struct {
	OrderID string          `json:"order_id"`
	Entries []TimelineEntry `json:"entries"`
}

// TimelineEntry is one audited event of an order.
type TimelineEntry struct {
	Index   uint64 `json:"index"`
	Type    string `json:"type"`
	Source  string `json:"source"`
	EventID string `json:"event_id"`
	TraceID string `json:"trace_id"`
	// Time and Data are absent (null) if the stored event no longer
	// decodes.
	Time       *time.Time      `json:"time,omitempty"`
	RecordedAt string          `json:"recorded_at"`
	Data       json.RawMessage `json:"data"`
}

// Verification is the body of GET /audit/verify.
type Verification struct {
	OK      bool   `json:"ok"`
	Entries int    `json:"entries"`
	Blocks  int    `json:"blocks"`
	Head    string `json:"head"`
	// FirstBroken is set only when OK is false.
	FirstBroken *ChainBreak `json:"first_broken,omitempty"`
}

// ChainBreak is the first entry at which the audit chain stops verifying.
type ChainBreak struct {
	Index     uint64 `json:"index"`
	StreamSeq uint64 `json:"stream_seq"`
	Reason    string `json:"reason"`
}

// The bodies of the dead-letter admin API are defined once, beside the
// server that answers with them (platform/deadletter/view, which needs
// nothing but the standard library either).
type (
	// DeadLetter is a dead letter as the admin API shows it; Headers, Data
	// and DataBase64 only when read one by one.
	DeadLetter = view.Letter
	// DeadLetterList is the body of GET /admin/dlq.
	DeadLetterList = view.List
	// DeadLetterReplay is the outcome of one replay.
	DeadLetterReplay = view.Replay
	// DeadLetterBulk is the outcome of a replay or discard by filter.
	DeadLetterBulk = view.Bulk
	// DeadLetterFailure is a letter a bulk action left as it was.
	DeadLetterFailure = view.Failure
)
