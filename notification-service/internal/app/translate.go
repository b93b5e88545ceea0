package app

import (
	"fmt"
	"time"

	"github.com/eventshop/notification-service/internal/notification"
	"github.com/eventshop/shared/events"
)

// The notification domain knows no event: what a final order event tells
// the customer is read here.

// notificationOf returns the pending notification a final order event
// causes, to be delivered through channel. Any other event is
// notification.ErrUnsupportedEvent.
func notificationOf(env events.Envelope, channel string, now time.Time) (notification.Notification, error) {
	var p notification.Payload
	switch env.Type {
	case events.OrderConfirmed:
		var d events.OrderConfirmedData
		if err := env.DecodeData(&d); err != nil {
			return notification.Notification{}, err
		}
		p = confirmedPayload(env, d)
	case events.OrderCancelled:
		var d events.OrderCancelledData
		if err := env.DecodeData(&d); err != nil {
			return notification.Notification{}, err
		}
		p = cancelledPayload(env, d)
	default:
		return notification.Notification{}, fmt.Errorf("%s: %w", env.Type, notification.ErrUnsupportedEvent)
	}
	return notification.New(p, channel, env.TraceID(), now), nil
}

// confirmedPayload is what a confirmed order tells the customer.
func confirmedPayload(env events.Envelope, d events.OrderConfirmedData) notification.Payload {
	total := d.TotalCents
	return notification.Payload{OrderID: env.Subject, Kind: notification.KindOrderConfirmed, CustomerID: d.CustomerID,
		TotalCents: &total, Currency: d.Currency, ShipTo: addressOf(d.ShippingAddress)}
}

// cancelledPayload is what a cancelled order tells the customer.
func cancelledPayload(env events.Envelope, d events.OrderCancelledData) notification.Payload {
	return notification.Payload{OrderID: env.Subject, Kind: notification.KindOrderCancelled, CustomerID: d.CustomerID,
		Reason: d.Reason, Detail: d.Detail}
}

// addressOf is the domain's copy of a shipping address (nil: none given).
func addressOf(a *events.Address) *notification.Address {
	if a == nil {
		return nil
	}
	addr := notification.Address(*a)
	return &addr
}
