// Package app holds the order service's use cases: the commands the HTTP
// API calls (Create, Get, List) and the handlers of the events the saga
// waits for (InventoryRejected, PaymentSucceeded, PaymentFailed, and
// OrderCreated, which times the order's deadline). An order is its events:
// Create publishes its created event, and a handler publishes the order's
// final event only if it is still the order's next event: that event is
// the decision (docs/architecture.md, "Order creation and the order's
// state").
package app

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/google/uuid"
	"go.uber.org/zap"

	"github.com/eventshop/order-service/internal/order"
	"github.com/eventshop/shared/events"
)

// Orders is what the use cases need from the order store.
type Orders interface {
	// Current returns the order as its events tell it.
	Current(ctx context.Context, orderID string) (State, error)
	// Undecided returns the order as Current does, and true, unless the
	// order's final event is stored: then it returns false having read
	// only the order's last event (one get), which is all the deadline
	// needs to know that the order is final.
	Undecided(ctx context.Context, orderID string) (State, bool, error)
	// Find returns the order as its events tell it.
	Find(ctx context.Context, orderID string) (order.Order, error)
	// Index lists the order under its customer.
	Index(ctx context.Context, o order.Order) error
	// ListByCustomer returns a page of up to limit orders after the
	// cursor, and the cursor of the next page (nil on the last).
	ListByCustomer(ctx context.Context, customerID string, after *Cursor, limit int) ([]order.Order, *Cursor, error)
}

// State is an order as its events tell it, and where its decision goes.
type State struct {
	Order order.Order
	// After is the ORDERS stream sequence of the order's last event while
	// no final event is stored: its decision is published after it
	// (events.Publisher.PublishAfter). 0 once the final event is stored.
	After uint64
}

// Cursor is where a page of a customer's orders ends: the index entry of
// its last order. The next page starts after it.
type Cursor struct {
	CreatedAt time.Time
	OrderID   string
}

// Publisher publishes an order's events (events.Publisher): its created
// event create-once, its decision only after the order's last event.
type Publisher interface {
	Publish(ctx context.Context, t events.Type, orderID, traceparent string, data any) (events.Published, error)
	PublishAfter(ctx context.Context, t events.Type, orderID, traceparent string, data any, after uint64) (events.Published, error)
}

// App is the order service's use cases over its store and publisher.
type App struct {
	orders  Orders
	pub     Publisher
	log     *zap.Logger
	now     func() time.Time
	newID   func() string
	metrics *Metrics
	// deadline is how long an order has to become final before it is
	// cancelled with reason timeout.
	deadline time.Duration
}

// Option configures an App.
type Option func(*App) error

// ErrInvalidOption is returned by an option given a value it cannot use.
var ErrInvalidOption = errors.New("invalid option")

// WithClock sets the clock for created_at and updated_at.
func WithClock(now func() time.Time) Option {
	return func(a *App) error {
		if now == nil {
			return fmt.Errorf("clock: %w", ErrInvalidOption)
		}
		a.now = now
		return nil
	}
}

// WithIDSource sets the id generator of orders placed without an
// Idempotency-Key (UUIDv7 by default).
func WithIDSource(newID func() string) Option {
	return func(a *App) error {
		if newID == nil {
			return fmt.Errorf("id source: %w", ErrInvalidOption)
		}
		a.newID = newID
		return nil
	}
}

// WithMetrics observes every decision the app stores in m.
func WithMetrics(m *Metrics) Option {
	return func(a *App) error {
		if m == nil {
			return fmt.Errorf("metrics: %w", ErrInvalidOption)
		}
		a.metrics = m
		return nil
	}
}

// DefaultDeadline is the order deadline without WithDeadline (the default
// of ORDER_DEADLINE).
const DefaultDeadline = 2 * time.Minute

// WithDeadline sets how long an order has to become final before
// OrderCreated cancels it (DefaultDeadline by default).
func WithDeadline(d time.Duration) Option {
	return func(a *App) error {
		if d <= 0 {
			return fmt.Errorf("deadline must be > 0 (got %s): %w", d, ErrInvalidOption)
		}
		a.deadline = d
		return nil
	}
}

// New returns the use cases over the store and publisher.
func New(orders Orders, pub Publisher, log *zap.Logger, opts ...Option) (*App, error) {
	if orders == nil || pub == nil || log == nil {
		return nil, fmt.Errorf("store, publisher and logger are required: %w", ErrInvalidOption)
	}
	a := &App{
		orders: orders, pub: pub, log: log,
		now:      time.Now,
		newID:    func() string { return uuid.Must(uuid.NewV7()).String() },
		deadline: DefaultDeadline,
	}
	for _, opt := range opts {
		if err := opt(a); err != nil {
			return nil, err
		}
	}
	return a, nil
}

// Errors of the commands and of the order store.
var (
	// ErrIdempotencyKeyReused marks an Idempotency-Key sent again with a
	// different body.
	ErrIdempotencyKeyReused = errors.New("idempotency key reused with a different request")
	// ErrUnavailable marks a request that could not reach NATS.
	ErrUnavailable = errors.New("service unavailable")
	// ErrCorrupt means a stored value or event of an order cannot be
	// decoded, or tells an order the domain refuses: it is not what this
	// service writes.
	ErrCorrupt = errors.New("corrupt stored order")
)

// Reasons an event is refused for (the reason label of
// eventshop_events_refused_total) that only the order service gives; the
// shared ones are events.Reason*.
const (
	ReasonUnknownOrder = "unknown_order"
	ReasonNotReserved  = "not_reserved"
)

// RefusedError is an event refused for what it claims (an amount the
// order does not have, a transition the saga cannot make): redelivery
// cannot change that.
type RefusedError struct {
	// Reason is one of the Reason constants.
	Reason string
	Err    error
}

func (e *RefusedError) Error() string { return "refused (" + e.Reason + "): " + e.Err.Error() }

// Unwrap returns the refused event's error.
func (e *RefusedError) Unwrap() error { return e.Err }

// WaitError means the event is not to be acted on yet: look at it again
// in After (an order's deadline still ahead). It is no failure.
type WaitError struct {
	Err   error
	After time.Duration
}

func (e *WaitError) Error() string { return e.Err.Error() }

// Unwrap returns why the event waits.
func (e *WaitError) Unwrap() error { return e.Err }
