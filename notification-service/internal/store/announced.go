package store

import (
	"context"
	"errors"
	"fmt"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/eventshop/notification-service/internal/notification"
	"github.com/eventshop/shared/events"
)

// last returns the event on subject of stream, or notification.ErrNotFound.
func (s *Notifications) last(ctx context.Context, stream, subject string) (events.Envelope, error) {
	h, err := s.streams.Get(ctx, stream)
	if err != nil {
		return events.Envelope{}, err
	}
	msg, err := h.GetLastMsgForSubject(ctx, subject)
	if errors.Is(err, jetstream.ErrMsgNotFound) {
		return events.Envelope{}, fmt.Errorf("%s: %w", subject, notification.ErrNotFound)
	}
	if err != nil {
		return events.Envelope{}, fmt.Errorf("get %s: %w", subject, err)
	}
	env, err := events.Decode(subject, msg.Data)
	if err != nil {
		return events.Envelope{}, fmt.Errorf("%s: %w", subject, err)
	}
	return env, nil
}

// Announced reports whether the order's notification has been announced
// (its notifications.<id>.sent event is stored).
func (s *Notifications) Announced(ctx context.Context, orderID string) (bool, error) {
	_, err := s.Sent(ctx, orderID)
	if errors.Is(err, notification.ErrNotFound) {
		return false, nil
	}
	return err == nil, err
}

// Sent returns the order's notifications.<id>.sent event, or
// notification.ErrNotFound.
func (s *Notifications) Sent(ctx context.Context, orderID string) (events.Envelope, error) {
	return s.event(ctx, events.StreamNotifications, events.NotificationSent, orderID)
}

// OrderEvent returns the order's event of type t in ORDERS, or
// notification.ErrNotFound.
func (s *Notifications) OrderEvent(ctx context.Context, t events.Type, orderID string) (events.Envelope, error) {
	return s.event(ctx, events.StreamOrders, t, orderID)
}

// event returns the order's last event of type t in stream, or
// notification.ErrNotFound.
func (s *Notifications) event(ctx context.Context, stream string, t events.Type, orderID string) (events.Envelope, error) {
	subject, err := events.Subject(t, orderID)
	if err != nil {
		return events.Envelope{}, err
	}
	return s.last(ctx, stream, subject)
}
