package store

import (
	"context"
	"errors"
	"fmt"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/eventshop/payment-service/internal/payment"
	"github.com/eventshop/shared/events"
	"github.com/eventshop/shared/platform/natsconn"
)

// OrderTokens reads an order's payment token from its orders.<id>.created
// event in the ORDERS stream: the token travels only there, so the payment
// service keeps no copy of it.
type OrderTokens struct {
	streams *natsconn.Streams
}

// NewOrderTokens returns a token source over js.
func NewOrderTokens(js jetstream.JetStream) *OrderTokens {
	return &OrderTokens{streams: natsconn.NewStreams(js)}
}

// Token returns the payment token of the order. An order whose created
// event is unreadable has no token: the error wraps
// payment.ErrNoPaymentToken. A created event not found wraps
// payment.ErrTokenNotVisible, which the consumer retries: the read asks
// the stream's leader before it says "not found" (natsconn.Streams.Last),
// and a reserved event for an order that truly never existed is
// dead-lettered after a few attempts. Other errors (stream not there yet,
// NATS unreachable) are transient too.
func (o *OrderTokens) Token(ctx context.Context, orderID string) (string, error) {
	subject, err := events.Subject(events.OrderCreated, orderID)
	if err != nil {
		return "", fmt.Errorf("%w: %w", payment.ErrNoPaymentToken, err)
	}
	msg, err := o.streams.Last(ctx, events.StreamOrders, subject)
	if err != nil {
		if errors.Is(err, jetstream.ErrMsgNotFound) {
			return "", fmt.Errorf("%w: no %s event visible yet: %w", payment.ErrTokenNotVisible, subject, err)
		}
		return "", fmt.Errorf("read %s: %w", subject, err)
	}
	env, err := events.Decode(subject, msg.Data)
	if err != nil {
		return "", fmt.Errorf("%w: %s: %w", payment.ErrNoPaymentToken, subject, err)
	}
	var data events.OrderCreatedData
	if err := env.DecodeData(&data); err != nil {
		return "", fmt.Errorf("%w: %s: %w", payment.ErrNoPaymentToken, subject, err)
	}
	return data.PaymentToken, nil
}
