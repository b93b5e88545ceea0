// Package app holds the inventory's use cases: the order saga's events it
// handles (OrderCreated, OrderCancelled, OrderConfirmed), which reserve,
// release or commit stock by the reservation protocol and announce the
// outcome, and the catalogue's commands (Get, List, Put). The adapters
// (internal/consumer, internal/httpapi, internal/store) stay thin around it.
//
// Events are published after the state is written; a redelivery finds the
// state changed and only re-publishes, which the create-once publisher
// turns into a no-op if it was sent before.
package app

import (
	"context"
	"errors"
	"fmt"
	"time"

	"go.uber.org/zap"

	"github.com/eventshop/inventory-service/internal/reservation"
	"github.com/eventshop/inventory-service/internal/stock"
	"github.com/eventshop/shared/events"
	"github.com/eventshop/shared/platform/kvstore"
)

// Store is the state the use cases read and write: what the reservation
// protocol needs, and the creation of new catalogue items.
type Store interface {
	reservation.Store
	// CreateItem stores a new item; it fails with stock.ErrConflict if the
	// SKU exists.
	CreateItem(ctx context.Context, it stock.Item) (uint64, error)
}

// Publisher publishes the inventory's events create-once.
type Publisher interface {
	Publish(ctx context.Context, t events.Type, orderID, traceparent string, data any) (events.Published, error)
}

// ErrInvalidOption is returned by an option given a value it cannot use.
var ErrInvalidOption = errors.New("invalid option")

type options struct {
	now     func() time.Time
	metrics *Metrics
	retry   kvstore.Policy
}

// Option configures App.
type Option func(*options) error

// WithClock sets the clock records and items are stamped with.
func WithClock(now func() time.Time) Option {
	return func(o *options) error {
		if now == nil {
			return fmt.Errorf("clock: %w", ErrInvalidOption)
		}
		o.now = now
		return nil
	}
}

// WithMetrics counts reservation outcomes in m.
func WithMetrics(m *Metrics) Option {
	return func(o *options) error {
		if m == nil {
			return fmt.Errorf("metrics: %w", ErrInvalidOption)
		}
		o.metrics = m
		return nil
	}
}

// App is the inventory's use cases.
type App struct {
	store   Store
	res     *reservation.Protocol
	pub     Publisher
	retry   retrier
	log     *zap.Logger
	metrics *Metrics
	now     func() time.Time
}

// New returns the use cases over store, announcing with pub; what loses a
// compare-and-set race is retried (WithCASAttempts, WithCASBackoff).
func New(store Store, pub Publisher, log *zap.Logger, opts ...Option) (*App, error) {
	if store == nil || pub == nil || log == nil {
		return nil, fmt.Errorf("store, publisher and logger are required: %w", ErrInvalidOption)
	}
	o := options{now: time.Now, retry: defaultRetry}
	for _, opt := range opts {
		if err := opt(&o); err != nil {
			return nil, err
		}
	}
	res, err := reservation.New(store, o.now, log)
	if err != nil {
		return nil, err
	}
	retry := retrier{policy: o.retry}
	if o.metrics != nil {
		retry.conflicts = o.metrics.conflicts
	}
	return &App{store: store, res: res, pub: pub, retry: retry, log: log, metrics: o.metrics, now: o.now}, nil
}
