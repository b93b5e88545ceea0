// Package cas retries read-decide-write operations that lost an optimistic
// concurrency race (stock.ErrConflict): each attempt re-reads the current
// state, so a retry decides on fresh data. Retries are bounded and jittered
// so that contenders spread out instead of colliding again in lock step.
package cas

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/cenkalti/backoff/v4"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/eventshop/inventory-service/internal/stock"
)

// ErrInvalidOption is returned by an option given a value it cannot use.
var ErrInvalidOption = errors.New("invalid option")

// Retrier runs operations, retrying those that fail with stock.ErrConflict.
type Retrier struct {
	attempts  int
	initial   time.Duration
	max       time.Duration
	conflicts *prometheus.CounterVec
}

// Option configures a Retrier.
type Option func(*Retrier) error

// WithAttempts bounds the attempts per operation (default 12).
func WithAttempts(n int) Option {
	return func(r *Retrier) error {
		if n < 1 {
			return fmt.Errorf("attempts %d < 1: %w", n, ErrInvalidOption)
		}
		r.attempts = n
		return nil
	}
}

// WithBackoff sets the first and the largest delay between attempts
// (default 2ms and 200ms); each delay is randomised by ±50%.
func WithBackoff(initial, max time.Duration) Option {
	return func(r *Retrier) error {
		if initial <= 0 || max < initial {
			return fmt.Errorf("backoff %v..%v: %w", initial, max, ErrInvalidOption)
		}
		r.initial, r.max = initial, max
		return nil
	}
}

// New returns a Retrier whose retried conflicts are counted in reg as
// eventshop_inventory_cas_conflicts_total{op}.
func New(reg prometheus.Registerer, opts ...Option) (*Retrier, error) {
	r := &Retrier{
		attempts: 12,
		initial:  2 * time.Millisecond,
		max:      200 * time.Millisecond,
		conflicts: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "eventshop_inventory_cas_conflicts_total",
			Help: "Optimistic-concurrency conflicts on the inventory KV bucket that were retried, by operation.",
		}, []string{"op"}),
	}
	for _, opt := range opts {
		if err := opt(r); err != nil {
			return nil, err
		}
	}
	if reg != nil {
		if err := reg.Register(r.conflicts); err != nil {
			return nil, fmt.Errorf("register cas metrics: %w", err)
		}
	}
	return r, nil
}

// Do runs fn until it returns anything but a conflict, at most the
// configured number of times. After the last attempt it returns the
// conflict, still wrapping stock.ErrConflict, so a consumer naks (the
// message comes back later) and an HTTP caller gets 409.
func (r *Retrier) Do(ctx context.Context, op string, fn func(ctx context.Context) error) error {
	b := backoff.NewExponentialBackOff()
	b.InitialInterval = r.initial
	b.MaxInterval = r.max
	b.RandomizationFactor = 0.5
	b.Multiplier = 2
	b.MaxElapsedTime = 0
	attempt := 0
	err := backoff.Retry(func() error {
		attempt++
		err := fn(ctx)
		if err == nil {
			return nil
		}
		if !errors.Is(err, stock.ErrConflict) {
			return backoff.Permanent(err)
		}
		if attempt < r.attempts {
			r.conflicts.WithLabelValues(op).Inc()
		}
		return err
	}, backoff.WithContext(backoff.WithMaxRetries(b, uint64(r.attempts-1)), ctx))
	if err != nil && errors.Is(err, stock.ErrConflict) {
		return fmt.Errorf("%s: gave up after %d attempts: %w", op, attempt, err)
	}
	return err
}
