// Package app holds the payment service's use cases: pay a reserved order
// exactly once (InventoryReserved), make sure a cancelled order ends up
// charged nothing (OrderCancelled), and read an order's payment as it
// stands (Get). The adapters call it: internal/consumer for the events,
// internal/httpapi for the commands; it reaches the outside world through
// the ports it declares here (the payments bucket, the order's events, the
// gateway, the publisher), implemented by internal/store, internal/gateway
// and events.Publisher.
package app

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"

	"github.com/eventshop/payment-service/internal/payment"
	"github.com/eventshop/shared/events"
	"github.com/eventshop/shared/platform/kvstore"
)

// Store keeps payment records, one per order, changed only by
// compare-and-set (store.Payments).
type Store interface {
	// Load returns the order's record and its revision, or an error
	// wrapping payment.ErrNotFound.
	Load(ctx context.Context, orderID string) (payment.Record, uint64, error)
	// Create stores rec if the order has no record yet; otherwise the
	// error wraps payment.ErrConflict.
	Create(ctx context.Context, rec payment.Record) (uint64, error)
	// Update replaces the record stored at revision rev; if it changed
	// since, the error wraps payment.ErrConflict.
	Update(ctx context.Context, rec payment.Record, rev uint64) (uint64, error)
}

// Outcomes reads the order's payment events, the record of its outcome
// (store.PaymentEvents).
type Outcomes interface {
	// Last returns the order's last event in the PAYMENTS stream and its
	// stream sequence, or an error wrapping payment.ErrNotFound.
	Last(ctx context.Context, orderID string) (events.Envelope, uint64, error)
}

// TokenSource finds the payment token the customer gave with the order
// (store.OrderTokens).
type TokenSource interface {
	// Token returns the order's payment token, or an error wrapping
	// payment.ErrNoPaymentToken when it cannot exist.
	Token(ctx context.Context, orderID string) (string, error)
}

// OrderHistory tells what the order's own events say (store.OrderHistory).
type OrderHistory interface {
	// Confirmed reports whether the order was confirmed.
	Confirmed(ctx context.Context, orderID string) (bool, error)
}

// Gateway charges cards and refunds charges (gateway.Client).
type Gateway interface {
	Charge(ctx context.Context, req payment.ChargeRequest) (payment.ChargeResult, error)
	Refund(ctx context.Context, req payment.RefundRequest) (payment.RefundResult, error)
}

// Publisher publishes events (events.Publisher): create-once, or only
// after the order's last event in the stream.
type Publisher interface {
	Publish(ctx context.Context, t events.Type, orderID, traceparent string, data any) (events.Published, error)
	PublishAfter(ctx context.Context, t events.Type, orderID, traceparent string, data any, after uint64) (events.Published, error)
}

// Errors the adapters map (besides the payment domain's sentinels and
// events.ErrConflictingDuplicate).
var (
	// ErrInvalidOption is returned for an option or dependency that cannot
	// work.
	ErrInvalidOption = errors.New("invalid option")
	// ErrIllegalTransition: the event claims a transition the order's
	// history forbids (a confirmed order cancelled). Refused: dead-lettered
	// at once, never acted on, counted in eventshop_events_refused_total
	// under reason illegal_transition.
	ErrIllegalTransition = errors.New("illegal order transition")
)

// casRetry bounds and paces the read-decide-write loops on conflicting
// writes (16 attempts); past it the message is retried later rather than
// spinning.
var casRetry = kvstore.Policy{Attempts: 16, Conflict: payment.ErrConflict}

// App pays reserved orders and makes sure cancelled ones end up charged
// nothing. Every step is safe to repeat, so redelivered or concurrent
// requests end in the same single charge, refund and events: the charging
// record before the first gateway call, the secret idempotency keys, the
// outcome recorded as the order's payment event (first decider wins), and
// the records of earlier versions are described in docs/architecture.md,
// "Payment".
type App struct {
	store    Store
	outcomes Outcomes
	tokens   TokenSource
	history  OrderHistory
	gateway  Gateway
	pub      Publisher
	log      *zap.Logger
	now      func() time.Time
	newKey   func() string
	metrics  *metrics
}

// Option configures an App.
type Option func(*App) error

// WithClock sets the clock used for record timestamps and for timing
// payments.
func WithClock(now func() time.Time) Option {
	return func(a *App) error {
		if now == nil {
			return fmt.Errorf("clock: %w", ErrInvalidOption)
		}
		a.now = now
		return nil
	}
}

// WithKeySource sets the source of charge idempotency keys (default: 128
// random bits). Keys must be unguessable: tests only.
func WithKeySource(newKey func() string) Option {
	return func(a *App) error {
		if newKey == nil {
			return fmt.Errorf("key source: %w", ErrInvalidOption)
		}
		a.newKey = newKey
		return nil
	}
}

// WithMetrics registers the use cases' metrics (metrics.go) on reg;
// without it they are kept but not exported.
func WithMetrics(reg prometheus.Registerer) Option {
	return func(a *App) error {
		if reg == nil {
			return fmt.Errorf("metrics registerer: %w", ErrInvalidOption)
		}
		a.metrics = newMetrics(reg)
		return nil
	}
}

// randomKey returns a fresh charge idempotency key: 128 random bits.
func randomKey() string { return "pay_" + rand.Text() }

// New returns the payment use cases over their ports.
func New(store Store, outcomes Outcomes, tokens TokenSource, history OrderHistory, gateway Gateway, pub Publisher, log *zap.Logger, opts ...Option) (*App, error) {
	if store == nil || outcomes == nil || tokens == nil || history == nil || gateway == nil || pub == nil || log == nil {
		return nil, fmt.Errorf("payment app needs a store, outcomes, token source, order history, gateway, publisher and logger: %w", ErrInvalidOption)
	}
	a := &App{store: store, outcomes: outcomes, tokens: tokens, history: history, gateway: gateway, pub: pub, log: log,
		now: time.Now, newKey: randomKey, metrics: newMetrics(nil)}
	for _, opt := range opts {
		if err := opt(a); err != nil {
			return nil, err
		}
	}
	return a, nil
}
