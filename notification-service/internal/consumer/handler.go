// Package consumer turns final order events into notifications: it parses
// and validates each event, keeps the notification's delivery state in the
// store, sends through the configured channel and announces the delivery with
// a shop.notification.sent event.
package consumer

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"go.uber.org/zap"

	"github.com/eventshop/notification-service/internal/notification"
	"github.com/eventshop/shared/events"
	"github.com/eventshop/shared/platform/logging"
	"github.com/eventshop/shared/platform/runner"
	"github.com/eventshop/shared/platform/trace"
)

// Durable is the name of the notification consumer on ORDERS.
const Durable = "notification-orders"

// FilterSubjects are the final order transitions that cause a notification.
var FilterSubjects = []string{events.FilterSubject(events.OrderConfirmed), events.FilterSubject(events.OrderCancelled)}

// Store keeps notification records with compare-and-set on a revision,
// and tells whether a notification was announced.
type Store interface {
	// Modify applies change to the record of the order's notification of
	// kind k (the zero value at revision 0 if there is none) and stores
	// it by compare-and-set, reading afresh when another delivery wrote
	// first, a bounded number of times: then the error wraps
	// notification.ErrConflict. A change that leaves the record as it was
	// writes nothing.
	Modify(ctx context.Context, orderID string, k notification.Kind, change func(n *notification.Notification, rev uint64) error) (notification.Notification, uint64, error)
	// ModifyFrom is Modify whose first attempt starts from n, read or
	// written at revision rev.
	ModifyFrom(ctx context.Context, n notification.Notification, rev uint64, change func(n *notification.Notification, rev uint64) error) (notification.Notification, uint64, error)
	// Announced reports whether notifications.<id>.sent is stored.
	Announced(ctx context.Context, orderID string) (bool, error)
}

// Channel delivers one notification to the customer. An error wrapping
// notification.ErrRejected is permanent; any other error is retried.
type Channel interface {
	Send(ctx context.Context, n notification.Notification) error
}

// Publisher publishes an event create-once (see events.Publisher).
type Publisher interface {
	Publish(ctx context.Context, t events.Type, orderID, traceparent string, data any) (events.Published, error)
}

// Option configures a Handler.
type Option func(*Handler) error

// WithClock sets the clock used for created_at and sent_at.
func WithClock(now func() time.Time) Option {
	return func(h *Handler) error {
		if now == nil {
			return errors.New("clock is nil")
		}
		h.now = now
		return nil
	}
}

// WithMetrics records deliveries and failures in m.
func WithMetrics(m *Metrics) Option {
	return func(h *Handler) error {
		if m == nil {
			return errors.New("metrics are nil")
		}
		h.metrics = m
		return nil
	}
}

// WithoutPendingRecord is for a channel that cannot fail half way and
// whose attempts nobody counts (the log channel): the notification is sent
// first, and its notifications.<id>.sent event is its only record, instead
// of a KV record written pending, then sent. A crash between the send and
// the event sends again with the same notification id, as on the other
// path; the KV record carried nothing the event does not, so it is two
// writes per notification saved.
func WithoutPendingRecord() Option {
	return func(h *Handler) error {
		h.sendFirst = true
		return nil
	}
}

// Handler handles shop.order.confirmed and shop.order.cancelled events.
//
// Delivery is at-least-once towards the receiver and exactly-once in the
// record: the record is put "pending" (compare-and-set) before the channel
// is called and marked "sent" after. A crash, timeout or lost ack between a
// successful Send and the "sent" write makes the redelivered event send again
// with the SAME notification id (notification.ID is derived from order id
// and kind), so the receiver can drop the repeat. Once the record says
// "sent", redeliveries only re-publish the (create-once) sent event.
type Handler struct {
	store       Store
	channel     Channel
	channelName string
	pub         Publisher
	log         *zap.Logger
	now         func() time.Time
	metrics     *Metrics
	sendFirst   bool // WithoutPendingRecord
}

// NewHandler returns a handler delivering through channel, named
// channelName in records and events.
func NewHandler(store Store, channel Channel, channelName string, pub Publisher, log *zap.Logger, opts ...Option) (*Handler, error) {
	if store == nil || channel == nil || channelName == "" || pub == nil || log == nil {
		return nil, errors.New("notification handler: store, channel, channel name, publisher and logger are required")
	}
	h := &Handler{
		store: store, channel: channel, channelName: channelName, pub: pub, log: log,
		now: time.Now,
	}
	for _, opt := range opts {
		if err := opt(h); err != nil {
			return nil, fmt.Errorf("notification handler option: %w", err)
		}
	}
	return h, nil
}

// Handle is the runner.Handler of the notification consumer.
func (h *Handler) Handle(ctx context.Context, msg jetstream.Msg) error {
	env, err := events.Decode(msg.Subject(), msg.Data())
	if err != nil {
		return runner.Refused("invalid_event", fmt.Errorf("parse %s: %w", msg.Subject(), err))
	}
	want, err := notification.FromEvent(env, h.channelName, h.now())
	if err != nil {
		return runner.Permanent(fmt.Errorf("event %s: %w", env.ID, err))
	}
	log := h.log.With(logging.Order(want.OrderID, env.TraceID())...).With(
		zap.String("notification_id", want.ID), zap.String("kind", string(want.Kind)))

	if h.sendFirst {
		return h.sendThenAnnounce(ctx, env, want, log)
	}
	n, rev, err := h.begin(ctx, want)
	if err != nil {
		return err
	}
	if n.Sent() {
		log.Debug("notification already sent, re-publishing its event")
		return h.publishSent(ctx, env, n)
	}
	if err := h.send(ctx, n); err != nil {
		return err
	}
	n, err = h.markSent(ctx, n, rev)
	if err != nil {
		return err
	}
	return h.announce(ctx, env, n, log)
}

// send hands n to the channel; a rejection by the receiver is permanent,
// any other failure is retried.
func (h *Handler) send(ctx context.Context, n notification.Notification) error {
	err := h.channel.Send(ctx, n)
	if err == nil {
		return nil
	}
	permanent := errors.Is(err, notification.ErrRejected)
	h.metrics.failed(n, permanent)
	if permanent {
		return runner.Permanent(fmt.Errorf("send %s: %w", n.ID, err))
	}
	return fmt.Errorf("send %s: %w", n.ID, err)
}

// announce counts and logs n, recorded sent, and publishes its event.
func (h *Handler) announce(ctx context.Context, env events.Envelope, n notification.Notification, log *zap.Logger) error {
	h.metrics.sent(n)
	log.Info("notification sent", zap.String("channel", n.Channel), zap.Int("attempts", n.Attempts))
	return h.publishSent(ctx, env, n)
}

// sendThenAnnounce delivers a notification not announced yet, then
// publishes its (create-once) sent event, which is its record.
func (h *Handler) sendThenAnnounce(ctx context.Context, env events.Envelope, want notification.Notification, log *zap.Logger) error {
	done, err := h.store.Announced(ctx, want.OrderID)
	if err != nil {
		return fmt.Errorf("look up notification %s: %w", want.ID, err)
	}
	if done {
		log.Debug("notification already sent")
		return nil
	}
	n := want
	n.Attempt(h.channelName)
	if err := h.send(ctx, n); err != nil {
		return err
	}
	n.MarkSent(h.now())
	return h.announce(ctx, env, n, log)
}

// begin returns the record to deliver and its revision: a new pending
// record, or the stored one with one more attempt counted. A record already
// sent is returned as is.
func (h *Handler) begin(ctx context.Context, want notification.Notification) (notification.Notification, uint64, error) {
	return h.store.Modify(ctx, want.OrderID, want.Kind, func(n *notification.Notification, rev uint64) error {
		if rev == 0 {
			*n = want
		}
		if !n.Sent() {
			n.Attempt(h.channelName)
		}
		return nil
	})
}

// markSent records n, stored at revision rev, as sent. A concurrent
// delivery may have moved the record on; then the fresh record is marked
// (or found already sent).
func (h *Handler) markSent(ctx context.Context, n notification.Notification, rev uint64) (notification.Notification, error) {
	id := n.ID
	n, _, err := h.store.ModifyFrom(ctx, n, rev, func(n *notification.Notification, rev uint64) error {
		if rev == 0 {
			return fmt.Errorf("record of %s: %w", id, notification.ErrNotFound)
		}
		if !n.Sent() {
			n.MarkSent(h.now())
		}
		return nil
	})
	if err != nil {
		return n, fmt.Errorf("mark %s sent: %w", id, err)
	}
	return n, nil
}

// publishSent announces n; the publish is create-once, so a repeat after a
// crash or a redelivery is harmless.
func (h *Handler) publishSent(ctx context.Context, env events.Envelope, n notification.Notification) error {
	_, err := h.pub.Publish(ctx, events.NotificationSent, n.OrderID, trace.Child(env.TraceParent).String(),
		events.NotificationSentData{OrderID: n.OrderID, NotificationID: n.ID, Kind: string(n.Kind), Channel: n.Channel})
	if errors.Is(err, events.ErrConflictingDuplicate) {
		// Another notification.sent is stored for the order: not ours.
		return runner.Refused("conflicting_duplicate", fmt.Errorf("publish notification sent for %s: %w", n.ID, err))
	}
	if err != nil {
		return fmt.Errorf("publish notification sent for %s: %w", n.ID, err)
	}
	return nil
}
