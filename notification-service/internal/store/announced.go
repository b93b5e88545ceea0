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
	subject, err := events.Subject(events.NotificationSent, orderID)
	if err != nil {
		return false, err
	}
	_, err = s.last(ctx, events.StreamNotifications, subject)
	if errors.Is(err, notification.ErrNotFound) {
		return false, nil
	}
	return err == nil, err
}

// announced returns the notification an announcement records, with the
// payload the order's final event gives it, or notification.ErrNotFound.
func (s *Notifications) announced(ctx context.Context, orderID string) (notification.Notification, error) {
	subject, err := events.Subject(events.NotificationSent, orderID)
	if err != nil {
		return notification.Notification{}, err
	}
	env, err := s.last(ctx, events.StreamNotifications, subject)
	if err != nil {
		return notification.Notification{}, err
	}
	var d events.NotificationSentData
	if err := env.DecodeData(&d); err != nil {
		return notification.Notification{}, fmt.Errorf("%s: %w", subject, err)
	}
	final := events.OrderConfirmed
	if notification.Kind(d.Kind) == notification.KindOrderCancelled {
		final = events.OrderCancelled
	}
	orderSubject, _ := events.Subject(final, orderID)
	cause, err := s.last(ctx, events.StreamOrders, orderSubject)
	if err != nil {
		return notification.Notification{}, fmt.Errorf("the event %s announces: %w", subject, err)
	}
	n, err := notification.FromEvent(cause, d.Channel, env.Time)
	if err != nil {
		return notification.Notification{}, fmt.Errorf("the event %s announces: %w", subject, err)
	}
	n.Attempt(d.Channel)
	n.MarkSent(env.Time)
	return n, nil
}
