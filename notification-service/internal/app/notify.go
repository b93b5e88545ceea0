package app

import (
	"context"
	"errors"
	"fmt"

	"go.uber.org/zap"

	"github.com/eventshop/notification-service/internal/notification"
	"github.com/eventshop/shared/events"
	"github.com/eventshop/shared/platform/logging"
	"github.com/eventshop/shared/platform/trace"
)

// OrderConfirmed handles orders.<id>.confirmed: the customer is told the
// order is confirmed (see notify).
func (a *App) OrderConfirmed(ctx context.Context, env events.Envelope, d events.OrderConfirmedData) error {
	return a.notify(ctx, env, notification.New(confirmedPayload(env, d), a.channelName, env.TraceID(), a.now()))
}

// OrderCancelled handles orders.<id>.cancelled: the customer is told the
// order is cancelled, and why (see notify).
func (a *App) OrderCancelled(ctx context.Context, env events.Envelope, d events.OrderCancelledData) error {
	return a.notify(ctx, env, notification.New(cancelledPayload(env, d), a.channelName, env.TraceID(), a.now()))
}

// notify delivers want, the notification env causes, once, and announces
// it. Errors wrap notification.ErrRejected (the receiver refused it for
// good), events.ErrConflictingDuplicate (another notification.sent is
// stored for the order), notification.ErrConflict (the record stayed
// contended), or are transient.
func (a *App) notify(ctx context.Context, env events.Envelope, want notification.Notification) error {
	log := a.log.With(logging.Order(want.OrderID, env.TraceID())...).With(
		zap.String("notification_id", want.ID), zap.String("kind", string(want.Kind)))

	if a.sendFirst {
		return a.sendThenAnnounce(ctx, env, want, log)
	}
	n, rev, err := a.begin(ctx, want)
	if err != nil {
		return err
	}
	if n.Sent() {
		log.Debug("notification already sent, re-publishing its event")
		return a.publishSent(ctx, env, n)
	}
	if err := a.send(ctx, n); err != nil {
		return err
	}
	n, err = a.markSent(ctx, n, rev)
	if err != nil {
		return err
	}
	return a.announce(ctx, env, n, log)
}

// send hands n to the channel; a rejection by the receiver
// (notification.ErrRejected) is permanent, any other failure is retried.
func (a *App) send(ctx context.Context, n notification.Notification) error {
	err := a.channel.Send(ctx, n)
	if err == nil {
		return nil
	}
	a.metrics.failed(n, errors.Is(err, notification.ErrRejected))
	return fmt.Errorf("send %s: %w", n.ID, err)
}

// announce counts and logs n, recorded sent, and publishes its event.
func (a *App) announce(ctx context.Context, env events.Envelope, n notification.Notification, log *zap.Logger) error {
	a.metrics.sent(n)
	log.Info("notification sent", zap.String("channel", n.Channel), zap.Int("attempts", n.Attempts))
	return a.publishSent(ctx, env, n)
}

// sendThenAnnounce delivers a notification not announced yet, then
// publishes its (create-once) sent event, which is its record.
func (a *App) sendThenAnnounce(ctx context.Context, env events.Envelope, want notification.Notification, log *zap.Logger) error {
	done, err := a.store.Announced(ctx, want.OrderID)
	if err != nil {
		return fmt.Errorf("look up notification %s: %w", want.ID, err)
	}
	if done {
		log.Debug("notification already sent")
		return nil
	}
	n := want
	n.Attempt(a.channelName)
	if err := a.send(ctx, n); err != nil {
		return err
	}
	n.MarkSent(a.now())
	return a.announce(ctx, env, n, log)
}

// begin returns the record to deliver and its revision: a new pending
// record, or the stored one with one more attempt counted. A record already
// sent is returned as is.
func (a *App) begin(ctx context.Context, want notification.Notification) (notification.Notification, uint64, error) {
	return a.store.Modify(ctx, want.OrderID, want.Kind, func(n *notification.Notification, rev uint64) error {
		if rev == 0 {
			*n = want
		}
		if !n.Sent() {
			n.Attempt(a.channelName)
		}
		return nil
	})
}

// markSent records n, stored at revision rev, as sent. A concurrent
// delivery may have moved the record on; then the fresh record is marked
// (or found already sent).
func (a *App) markSent(ctx context.Context, n notification.Notification, rev uint64) (notification.Notification, error) {
	id := n.ID
	n, _, err := a.store.ModifyFrom(ctx, n, rev, func(n *notification.Notification, rev uint64) error {
		if rev == 0 {
			return fmt.Errorf("record of %s: %w", id, notification.ErrNotFound)
		}
		if !n.Sent() {
			n.MarkSent(a.now())
		}
		return nil
	})
	if err != nil {
		return n, fmt.Errorf("mark %s sent: %w", id, err)
	}
	return n, nil
}

// publishSent announces n; the publish is create-once, so a repeat after a
// crash or a redelivery is harmless. Another notification.sent stored for
// the order (not ours) is an error wrapping events.ErrConflictingDuplicate.
func (a *App) publishSent(ctx context.Context, env events.Envelope, n notification.Notification) error {
	_, err := a.pub.Publish(ctx, events.NotificationSent, n.OrderID, trace.Child(env.TraceParent).String(),
		events.NotificationSentData{OrderID: n.OrderID, NotificationID: n.ID, Kind: string(n.Kind), Channel: n.Channel})
	if err != nil {
		return fmt.Errorf("publish notification sent for %s: %w", n.ID, err)
	}
	return nil
}
