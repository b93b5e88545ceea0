// Package cas retries read-decide-write operations that lost an optimistic
// concurrency race (stock.ErrConflict): each attempt re-reads the current
// state, so a retry decides on fresh data. The retries are kvstore.Retry's,
// bounded and jittered so that contenders spread out instead of colliding
// again in lock step; this package counts them.
package cas

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"

	"github.com/eventshop/inventory-service/internal/stock"
	"github.com/eventshop/shared/platform/kvstore"
)

// ErrInvalidOption is returned by an option given a value it cannot use.
var ErrInvalidOption = errors.New("invalid option")

// Retrier runs operations, retrying those that fail with stock.ErrConflict.
type Retrier struct {
	policy    kvstore.Policy
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
		r.policy.Attempts = n
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
		r.policy.Initial, r.policy.Max = initial, max
		return nil
	}
}

// New returns a Retrier whose retried conflicts are counted in reg as
// eventshop_inventory_cas_conflicts_total{op} (counted but not exported
// when reg is nil).
func New(reg prometheus.Registerer, opts ...Option) (*Retrier, error) {
	r := &Retrier{
		policy: kvstore.Policy{Attempts: 12, Initial: 2 * time.Millisecond, Max: 200 * time.Millisecond, Conflict: stock.ErrConflict},
	}
	for _, opt := range opts {
		if err := opt(r); err != nil {
			return nil, err
		}
	}
	r.conflicts = promauto.With(reg).NewCounterVec(prometheus.CounterOpts{
		Name: "eventshop_inventory_cas_conflicts_total",
		Help: "Optimistic-concurrency conflicts on the inventory KV bucket that were retried, by operation.",
	}, []string{"op"})
	return r, nil
}

// Do runs fn until it returns anything but a conflict, at most the
// configured number of times. After the last attempt it returns the
// conflict, still wrapping stock.ErrConflict, so a consumer naks (the
// message comes back later) and an HTTP caller gets 409.
func (r *Retrier) Do(ctx context.Context, op string, fn func(ctx context.Context) error) error {
	p := r.policy
	retried := r.conflicts.WithLabelValues(op)
	p.OnRetry = func(error) { retried.Inc() }
	err := kvstore.Retry(ctx, p, fn)
	if errors.Is(err, stock.ErrConflict) {
		return fmt.Errorf("%s: %w", op, err)
	}
	return err
}
