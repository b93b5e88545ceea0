package app

import (
	"context"
	"errors"
	"fmt"

	"github.com/eventshop/notification-service/internal/notification"
	"github.com/eventshop/shared/events"
)

// List returns the order's notifications, at most one per kind, in the
// order of notification.Kinds: the records (webhook channel) and the
// announced notification without one (log channel: a log line cannot fail
// half way and nobody counts its attempts, so its notifications.<id>.sent
// event is its record, shown with the final order event it announces).
func (a *App) List(ctx context.Context, orderID string) ([]notification.Notification, error) {
	out := []notification.Notification{}
	recorded := map[notification.Kind]bool{}
	for _, k := range notification.Kinds {
		n, _, err := a.store.Get(ctx, orderID, k)
		if errors.Is(err, notification.ErrNotFound) {
			continue
		}
		if err != nil {
			return nil, err
		}
		out = append(out, n)
		recorded[k] = true
	}
	n, err := a.announced(ctx, orderID)
	switch {
	case errors.Is(err, notification.ErrNotFound):
	case err != nil:
		return nil, err
	case !recorded[n.Kind]:
		out = append(out, n)
	}
	return out, nil
}

// announced returns the notification an announcement records, with the
// payload the order's final event gives it, or notification.ErrNotFound.
func (a *App) announced(ctx context.Context, orderID string) (notification.Notification, error) {
	env, err := a.store.Sent(ctx, orderID)
	if err != nil {
		return notification.Notification{}, err
	}
	subject, _ := events.Subject(events.NotificationSent, orderID) // valid: its event was found
	var d events.NotificationSentData
	if err := env.DecodeData(&d); err != nil {
		return notification.Notification{}, fmt.Errorf("%s: %w", subject, err)
	}
	final := events.OrderConfirmed
	if notification.Kind(d.Kind) == notification.KindOrderCancelled {
		final = events.OrderCancelled
	}
	cause, err := a.store.OrderEvent(ctx, final, orderID)
	if err != nil {
		return notification.Notification{}, fmt.Errorf("the event %s announces: %w", subject, err)
	}
	n, err := notificationOf(cause, d.Channel, env.Time)
	if err != nil {
		return notification.Notification{}, fmt.Errorf("the event %s announces: %w", subject, err)
	}
	n.Attempt(d.Channel)
	n.MarkSent(env.Time)
	return n, nil
}
