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

// PaymentEvents reads an order's payment events from the PAYMENTS stream:
// the last of them is the record of the payment's outcome.
type PaymentEvents struct {
	streams *natsconn.Streams
}

// NewPaymentEvents returns the reader over js.
func NewPaymentEvents(js jetstream.JetStream) *PaymentEvents {
	return &PaymentEvents{streams: natsconn.NewStreams(js)}
}

// Last returns the order's last event on payments.<id>.* and its stream
// sequence, or an error wrapping payment.ErrNotFound. The read asks the
// stream's leader before it says none (natsconn.Streams.Last), so an event
// already acknowledged is never missed by a lagging replica. A stored
// message that is not a valid event wraps events.ErrConflictingDuplicate.
func (p *PaymentEvents) Last(ctx context.Context, orderID string) (events.Envelope, uint64, error) {
	filter := events.OrderSubjects(events.PaymentSucceeded, orderID)
	msg, err := p.streams.Last(ctx, events.StreamPayments, filter)
	if errors.Is(err, jetstream.ErrMsgNotFound) {
		return events.Envelope{}, 0, fmt.Errorf("no event on %s: %w", filter, payment.ErrNotFound)
	}
	if err != nil {
		return events.Envelope{}, 0, fmt.Errorf("read %s: %w", filter, err)
	}
	env, err := events.Decode(msg.Subject, msg.Data)
	if err != nil {
		return events.Envelope{}, 0, fmt.Errorf("%s (stream sequence %d): %w: %w", msg.Subject, msg.Sequence, events.ErrConflictingDuplicate, err)
	}
	return env, msg.Sequence, nil
}
