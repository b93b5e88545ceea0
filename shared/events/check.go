package events

import (
	"errors"
	"fmt"
	"time"
	"unicode/utf8"
)

// The checks of every payload: what its schema (schemas/*.v1.json) says,
// written in Go so that the hot path validates without a schema engine,
// and the facts a payload states about itself. A failure names the field
// as a JSON pointer, as the schema validator does.

func problem(field, format string, args ...any) error {
	return fmt.Errorf("/"+field+": "+format, args...)
}

func checkID(field, s string) error {
	if !ValidID(s) {
		return problem(field, "%q is not an id (1-64 letters, digits, '-' or '_')", s)
	}
	return nil
}

func checkText(field, s string, minLen, maxLen int) error {
	n := utf8.RuneCountInString(s)
	switch {
	case n == 0 && minLen > 0:
		return problem(field, "missing")
	case n < minLen:
		return problem(field, "shorter than %d characters", minLen)
	case n > maxLen:
		return problem(field, "longer than %d characters", maxLen)
	}
	return nil
}

func checkCurrency(field, s string) error {
	if len(s) != 3 || !isUpper(s[0]) || !isUpper(s[1]) || !isUpper(s[2]) {
		return problem(field, "%q is not a three-letter ISO 4217 code in capitals", s)
	}
	return nil
}

// checkAddress checks an optional address (nil is no address).
func checkAddress(field string, a *Address) error {
	if a == nil {
		return nil
	}
	at := field + "/"
	err := errors.Join(checkText(at+"name", a.Name, 1, 128), checkText(at+"line1", a.Line1, 1, 256),
		checkText(at+"line2", a.Line2, 0, 256), checkText(at+"city", a.City, 1, 128),
		checkText(at+"region", a.Region, 0, 128), checkText(at+"postal_code", a.PostalCode, 1, 32))
	if err != nil {
		return err
	}
	if len(a.Country) != 2 || !isUpper(a.Country[0]) || !isUpper(a.Country[1]) {
		return problem(at+"country", "%q is not a two-letter ISO 3166-1 code in capitals", a.Country)
	}
	return nil
}

func isUpper(c byte) bool { return 'A' <= c && c <= 'Z' }

func checkNonNegative(field string, v int64) error {
	if v < 0 {
		return problem(field, "%d is below 0", v)
	}
	return nil
}

func checkOneOf(field, s string, allowed ...string) error {
	for _, a := range allowed {
		if s == a {
			return nil
		}
	}
	return problem(field, "%q is not one of %q", s, allowed)
}

func checkTime(field string, t time.Time) error {
	if t.IsZero() {
		return problem(field, "missing")
	}
	return nil
}

// cancelReasons are the reasons an order may be cancelled with.
var cancelReasons = []string{ReasonUnknownSKU, ReasonInsufficientStock, ReasonCurrencyMismatch, ReasonPaymentDeclined, ReasonTimeout}

// checkItems checks a list of SKUs and quantities: at least one, at most
// maxItems, each quantity from 1 to maxQty (0: no upper bound).
func checkItems(field string, items []Item, maxItems int, maxQty int64) error {
	switch {
	case len(items) == 0:
		return problem(field, "no %s", field)
	case maxItems > 0 && len(items) > maxItems:
		return problem(field, "%d %s, at most %d", len(items), field, maxItems)
	}
	for i, it := range items {
		at := fmt.Sprintf("%s/%d/", field, i)
		if err := checkID(at+"sku", it.SKU); err != nil {
			return err
		}
		switch {
		case it.Quantity < 1:
			return problem(at+"quantity", "%d is not a quantity of 1 or more", it.Quantity)
		case maxQty > 0 && it.Quantity > maxQty:
			return problem(at+"quantity", "%d is more than %d", it.Quantity, maxQty)
		}
	}
	return nil
}

// NewPayload returns a new value of the Go type of t's payload, to decode
// an event's data into (a consumer that handles every type, such as the
// audit, checks the payload this way).
func NewPayload(t Type) (Validator, error) {
	switch t {
	case OrderCreated:
		return &OrderCreatedData{}, nil
	case OrderConfirmed:
		return &OrderConfirmedData{}, nil
	case OrderCancelled:
		return &OrderCancelledData{}, nil
	case InventoryReserved:
		return &InventoryReservedData{}, nil
	case InventoryRejected:
		return &InventoryRejectedData{}, nil
	case InventoryReleased:
		return &InventoryReleasedData{}, nil
	case InventoryCommitted:
		return &InventoryCommittedData{}, nil
	case PaymentSucceeded:
		return &PaymentSucceededData{}, nil
	case PaymentFailed:
		return &PaymentFailedData{}, nil
	case PaymentRefunded:
		return &PaymentRefundedData{}, nil
	case NotificationSent:
		return &NotificationSentData{}, nil
	}
	return nil, fmt.Errorf("payload of %q: %w", t, ErrUnknownType)
}

// Order returns the order the payload is about.
func (d OrderCreatedData) Order() string { return d.OrderID }

// Validate checks the payload against order.created v2 (fitsVersion holds
// it to an older version).
func (d OrderCreatedData) Validate() error {
	if err := checkItems("items", d.Items, 100, 10000); err != nil {
		return err
	}
	return errors.Join(checkID("order_id", d.OrderID), checkText("customer_id", d.CustomerID, 1, 128),
		checkText("payment_token", d.PaymentToken, 1, 256), checkTime("created_at", d.CreatedAt),
		checkAddress("shipping_address", d.ShippingAddress))
}

func (d OrderCreatedData) fitsVersion(v int) error { return sinceV2(v, d.ShippingAddress) }

// Order returns the order the payload is about.
func (d OrderConfirmedData) Order() string { return d.OrderID }

// Validate checks the payload against order.confirmed v2 (fitsVersion
// holds it to an older version).
func (d OrderConfirmedData) Validate() error {
	return errors.Join(checkID("order_id", d.OrderID), checkText("customer_id", d.CustomerID, 1, 128),
		checkNonNegative("total_cents", d.TotalCents), checkCurrency("currency", d.Currency),
		checkAddress("shipping_address", d.ShippingAddress))
}

func (d OrderConfirmedData) fitsVersion(v int) error { return sinceV2(v, d.ShippingAddress) }

// sinceV2 refuses a shipping address in a version before 2, which has no
// such field.
func sinceV2(v int, a *Address) error {
	if v < 2 && a != nil {
		return problem("shipping_address", "not a field of v%d (it came in v2)", v)
	}
	return nil
}

// UnmarshalJSON refuses a payload without total_cents (0 is a total).
func (d *OrderConfirmedData) UnmarshalJSON(b []byte) error {
	type plain OrderConfirmedData
	return strictWith(b, (*plain)(d), "total_cents")
}

// Order returns the order the payload is about.
func (d OrderCancelledData) Order() string { return d.OrderID }

// Validate checks the payload against order.cancelled v1.
func (d OrderCancelledData) Validate() error {
	return errors.Join(checkID("order_id", d.OrderID), checkText("customer_id", d.CustomerID, 1, 128),
		checkOneOf("reason", d.Reason, cancelReasons...), checkText("detail", d.Detail, 0, 1024))
}

// Order returns the order the payload is about.
func (d InventoryReservedData) Order() string { return d.OrderID }

// Validate checks the payload against inventory.reserved v1, and that every
// line total is its quantity times its unit price and the total is the sum
// of the lines.
func (d InventoryReservedData) Validate() error {
	if err := errors.Join(checkID("order_id", d.OrderID), checkNonNegative("total_cents", d.TotalCents),
		checkCurrency("currency", d.Currency)); err != nil {
		return err
	}
	if len(d.Lines) == 0 {
		return problem("lines", "no lines")
	}
	var sum int64
	for i, l := range d.Lines {
		at := fmt.Sprintf("lines/%d/", i)
		if err := errors.Join(checkID(at+"sku", l.SKU), checkText(at+"name", l.Name, 0, 256),
			checkNonNegative(at+"unit_price_cents", l.UnitPriceCents), checkNonNegative(at+"line_total_cents", l.LineTotalCents)); err != nil {
			return err
		}
		if l.Quantity < 1 {
			return problem(at+"quantity", "%d is not a quantity of 1 or more", l.Quantity)
		}
		if l.Quantity > (1<<62)/max(l.UnitPriceCents, 1) || l.LineTotalCents != l.Quantity*l.UnitPriceCents {
			return problem(at+"line_total_cents", "%d is not %d × %d", l.LineTotalCents, l.Quantity, l.UnitPriceCents)
		}
		if sum += l.LineTotalCents; sum < 0 {
			return problem("total_cents", "the lines overflow")
		}
	}
	if sum != d.TotalCents {
		return problem("total_cents", "%d is not the sum of the lines (%d)", d.TotalCents, sum)
	}
	return nil
}

// UnmarshalJSON refuses a payload without total_cents (0 is a total).
func (d *InventoryReservedData) UnmarshalJSON(b []byte) error {
	type plain InventoryReservedData
	return strictWith(b, (*plain)(d), "total_cents")
}

// UnmarshalJSON refuses a line without one of its required fields (0 is a price).
func (l *PricedLine) UnmarshalJSON(b []byte) error {
	type plain PricedLine
	return strictWith(b, (*plain)(l), "name", "unit_price_cents", "line_total_cents")
}

// Order returns the order the payload is about.
func (d InventoryRejectedData) Order() string { return d.OrderID }

// Validate checks the payload against inventory.rejected v1.
func (d InventoryRejectedData) Validate() error {
	return errors.Join(checkID("order_id", d.OrderID),
		checkOneOf("reason", d.Reason, ReasonUnknownSKU, ReasonInsufficientStock, ReasonCurrencyMismatch),
		checkText("sku", d.SKU, 0, 64), checkText("detail", d.Detail, 0, 1024))
}

// Order returns the order the payload is about.
func (d InventoryReleasedData) Order() string { return d.OrderID }

// Validate checks the payload against inventory.released v1.
func (d InventoryReleasedData) Validate() error {
	return errors.Join(checkID("order_id", d.OrderID), checkItems("lines", d.Lines, 0, 0))
}

// Order returns the order the payload is about.
func (d InventoryCommittedData) Order() string { return d.OrderID }

// Validate checks the payload against inventory.committed v1.
func (d InventoryCommittedData) Validate() error {
	return errors.Join(checkID("order_id", d.OrderID), checkItems("lines", d.Lines, 0, 0))
}

// Order returns the order the payload is about.
func (d PaymentSucceededData) Order() string { return d.OrderID }

// Validate checks the payload against payment.succeeded v1.
func (d PaymentSucceededData) Validate() error {
	return errors.Join(checkID("order_id", d.OrderID), checkText("charge_id", d.ChargeID, 1, 128),
		checkNonNegative("amount_cents", d.AmountCents), checkCurrency("currency", d.Currency))
}

// UnmarshalJSON refuses a payload without amount_cents.
func (d *PaymentSucceededData) UnmarshalJSON(b []byte) error {
	type plain PaymentSucceededData
	return strictWith(b, (*plain)(d), "amount_cents")
}

// Order returns the order the payload is about.
func (d PaymentFailedData) Order() string { return d.OrderID }

// Validate checks the payload against payment.failed v1.
func (d PaymentFailedData) Validate() error {
	return errors.Join(checkID("order_id", d.OrderID), checkOneOf("reason", d.Reason, ReasonCardDeclined),
		checkText("decline_code", d.DeclineCode, 0, 128), checkText("charge_id", d.ChargeID, 0, 128),
		checkNonNegative("amount_cents", d.AmountCents), checkCurrency("currency", d.Currency))
}

// UnmarshalJSON refuses a payload without amount_cents.
func (d *PaymentFailedData) UnmarshalJSON(b []byte) error {
	type plain PaymentFailedData
	return strictWith(b, (*plain)(d), "amount_cents")
}

// Order returns the order the payload is about.
func (d PaymentRefundedData) Order() string { return d.OrderID }

// Validate checks the payload against payment.refunded v1.
func (d PaymentRefundedData) Validate() error {
	return errors.Join(checkID("order_id", d.OrderID), checkText("charge_id", d.ChargeID, 1, 128),
		checkText("refund_id", d.RefundID, 1, 128), checkNonNegative("amount_cents", d.AmountCents),
		checkCurrency("currency", d.Currency), checkOneOf("reason", d.Reason, cancelReasons...))
}

// UnmarshalJSON refuses a payload without amount_cents.
func (d *PaymentRefundedData) UnmarshalJSON(b []byte) error {
	type plain PaymentRefundedData
	return strictWith(b, (*plain)(d), "amount_cents")
}

// Order returns the order the payload is about.
func (d NotificationSentData) Order() string { return d.OrderID }

// Validate checks the payload against notification.sent v1.
func (d NotificationSentData) Validate() error {
	return errors.Join(checkID("order_id", d.OrderID), checkText("notification_id", d.NotificationID, 1, 128),
		checkOneOf("kind", d.Kind, "order_confirmed", "order_cancelled"), checkText("channel", d.Channel, 1, 64))
}

// strictWith decodes b strictly into v and refuses it without one of the
// keys: required fields whose zero value is a legal value (an amount of 0),
// which decoding alone cannot tell from absent ones.
func strictWith(b []byte, v any, keys ...string) error {
	if err := strictUnmarshal(b, v); err != nil {
		return err
	}
	for _, k := range keys {
		if !hasKey(b, k) {
			return problem(k, "missing")
		}
	}
	return nil
}
