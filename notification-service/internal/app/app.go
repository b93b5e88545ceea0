// Package app holds the notification service's use cases: tell the
// customer of each final order transition once (OrderConfirmed,
// OrderCancelled) and announce it, and list an order's notifications
// (List). The adapters call it: internal/consumer for the events,
// internal/httpapi for the command; it reaches the outside world through
// the ports it declares here (the records and events store, the outbound
// channel, the publisher), implemented by internal/store,
// internal/channel and events.Publisher.
package app

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"

	"github.com/eventshop/notification-service/internal/notification"
	"github.com/eventshop/shared/events"
)

// Store keeps notification records with compare-and-set on a revision,
// and reads the events that record the notifications sent without one
// (store.Notifications).
type Store interface {
	// Get returns the record of the order's notification of kind k and
	// its revision, or an error wrapping notification.ErrNotFound.
	Get(ctx context.Context, orderID string, k notification.Kind) (notification.Notification, uint64, error)
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
	// Sent returns the order's notifications.<id>.sent event, or an error
	// wrapping notification.ErrNotFound.
	Sent(ctx context.Context, orderID string) (events.Envelope, error)
	// OrderEvent returns the order's event of type t in ORDERS, or an
	// error wrapping notification.ErrNotFound.
	OrderEvent(ctx context.Context, t events.Type, orderID string) (events.Envelope, error)
}

// Channel delivers one notification to the customer (channel.Log,
// channel.Webhook). An error wrapping notification.ErrRejected is
// permanent; any other error is retried.
type Channel interface {
	Send(ctx context.Context, n notification.Notification) error
}

// Publisher publishes an event create-once (see events.Publisher).
type Publisher interface {
	Publish(ctx context.Context, t events.Type, orderID, traceparent string, data any) (events.Published, error)
}

// ErrInvalidOption is returned for an option or dependency that cannot
// work.
var ErrInvalidOption = errors.New("invalid option")

// App delivers the notifications of final order transitions.
//
// Delivery is at-least-once towards the receiver and exactly-once in the
// record: the record is put "pending" (compare-and-set) before the channel
// is called and marked "sent" after. A crash, timeout or lost ack between a
// successful Send and the "sent" write makes the redelivered event send again
// with the SAME notification id (notification.ID is derived from order id
// and kind), so the receiver can drop the repeat. Once the record says
// "sent", redeliveries only re-publish the (create-once) sent event.
type App struct {
	store       Store
	channel     Channel
	channelName string
	pub         Publisher
	log         *zap.Logger
	now         func() time.Time
	metrics     *metrics
	sendFirst   bool // WithoutPendingRecord
}

// Option configures an App.
type Option func(*App) error

// WithClock sets the clock used for created_at and sent_at.
func WithClock(now func() time.Time) Option {
	return func(a *App) error {
		if now == nil {
			return fmt.Errorf("clock is nil: %w", ErrInvalidOption)
		}
		a.now = now
		return nil
	}
}

// WithMetrics registers the use cases' metrics (metrics.go) on reg;
// without it they are kept but not exported.
func WithMetrics(reg prometheus.Registerer) Option {
	return func(a *App) error {
		if reg == nil {
			return fmt.Errorf("metrics registerer is nil: %w", ErrInvalidOption)
		}
		a.metrics = newMetrics(reg)
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
	return func(a *App) error {
		a.sendFirst = true
		return nil
	}
}

// New returns the notification use cases delivering through channel,
// named channelName in records and events.
func New(store Store, channel Channel, channelName string, pub Publisher, log *zap.Logger, opts ...Option) (*App, error) {
	if store == nil || channel == nil || channelName == "" || pub == nil || log == nil {
		return nil, fmt.Errorf("notification app: store, channel, channel name, publisher and logger are required: %w", ErrInvalidOption)
	}
	a := &App{
		store: store, channel: channel, channelName: channelName, pub: pub, log: log,
		now: time.Now, metrics: newMetrics(nil),
	}
	for _, opt := range opts {
		if err := opt(a); err != nil {
			return nil, fmt.Errorf("notification app option: %w", err)
		}
	}
	return a, nil
}
