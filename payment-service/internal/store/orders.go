package store

import (
	"context"
	"errors"
	"fmt"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/eventshop/shared/events"
	"github.com/eventshop/shared/platform/natsconn"
)

// OrderHistory reads what the ORDERS stream says about an order, to check
// an event's claim against the order's history before acting on it.
type OrderHistory struct {
	streams *natsconn.Streams
}

// NewOrderHistory returns the history reader over js.
func NewOrderHistory(js jetstream.JetStream) *OrderHistory {
	return &OrderHistory{streams: natsconn.NewStreams(js)}
}

// Confirmed reports whether the order was confirmed: whether a valid
// orders.<id>.confirmed event is stored. The read asks the stream's leader
// before it says no (natsconn.Streams.Last), so a confirmation already
// acknowledged is never missed by a lagging replica. A message on that
// subject that is not a valid confirmed event of the order proves nothing
// and counts as no confirmation. Errors are transient (NATS unreachable).
func (h *OrderHistory) Confirmed(ctx context.Context, orderID string) (bool, error) {
	subject, err := events.Subject(events.OrderConfirmed, orderID)
	if err != nil {
		return false, fmt.Errorf("order %q: %w", orderID, err)
	}
	msg, err := h.streams.Last(ctx, events.StreamOrders, subject)
	if errors.Is(err, jetstream.ErrMsgNotFound) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("read %s: %w", subject, err)
	}
	env, err := events.Decode(subject, msg.Data)
	if err != nil || env.Type != events.OrderConfirmed {
		return false, nil
	}
	var data events.OrderConfirmedData
	if err := env.DecodeData(&data); err != nil || data.OrderID != orderID {
		return false, nil
	}
	return true, nil
}
