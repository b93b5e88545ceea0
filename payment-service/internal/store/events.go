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

// Last returns the order's payment event as it stands on payments.<id>.*,
// with the stream sequence of the order's last payment message, or an
// error wrapping payment.ErrNotFound. The read asks the stream's leader
// before it says none (natsconn.Streams.Last), so an event already
// acknowledged is never missed by a lagging replica. A stored message
// that is not a valid event wraps events.ErrConflictingDuplicate.
//
// The last message may be a copy of an earlier event, republished under
// another message id (a replayed dead letter): a copy of the charge
// outcome stored after its refund does not make the payment charged
// again, so then the refund, if there is one, is the payment's event.
func (p *PaymentEvents) Last(ctx context.Context, orderID string) (events.Envelope, uint64, error) {
	filter := events.OrderSubjects(events.PaymentSucceeded, orderID)
	env, msg, err := p.read(ctx, filter)
	if err != nil {
		return events.Envelope{}, 0, err
	}
	if env.Type == events.PaymentRefunded || !events.Republished(msg.Header, env) {
		return env, msg.Sequence, nil
	}
	refunds, err := events.Subject(events.PaymentRefunded, orderID)
	if err != nil {
		return events.Envelope{}, 0, fmt.Errorf("%w: %w", payment.ErrNotFound, err)
	}
	refund, _, err := p.read(ctx, refunds)
	switch {
	case errors.Is(err, payment.ErrNotFound):
		return env, msg.Sequence, nil
	case err != nil:
		return events.Envelope{}, 0, err
	}
	return refund, msg.Sequence, nil
}

// read returns the last message on subject, decoded.
func (p *PaymentEvents) read(ctx context.Context, subject string) (events.Envelope, *jetstream.RawStreamMsg, error) {
	msg, err := p.streams.Last(ctx, events.StreamPayments, subject)
	if errors.Is(err, jetstream.ErrMsgNotFound) {
		return events.Envelope{}, nil, fmt.Errorf("no event on %s: %w", subject, payment.ErrNotFound)
	}
	if err != nil {
		return events.Envelope{}, nil, fmt.Errorf("read %s: %w", subject, err)
	}
	env, err := events.Decode(msg.Subject, msg.Data)
	if err != nil {
		return events.Envelope{}, nil, fmt.Errorf("%s (stream sequence %d): %w: %w", msg.Subject, msg.Sequence, events.ErrConflictingDuplicate, err)
	}
	return env, msg, nil
}
