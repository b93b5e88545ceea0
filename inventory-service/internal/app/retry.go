package app

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/eventshop/inventory-service/internal/stock"
	"github.com/eventshop/shared/platform/kvstore"
)

// defaultRetry bounds the retries of a read-decide-write that lost an
// optimistic-concurrency race (stock.ErrConflict): 12 attempts, 2 ms
// doubling to 200 ms, jittered by kvstore.Retry so that contenders spread
// out instead of colliding again in lock step. CAS_ATTEMPTS sets the
// attempts.
var defaultRetry = kvstore.Policy{Attempts: 12, Initial: 2 * time.Millisecond, Max: 200 * time.Millisecond, Conflict: stock.ErrConflict}

// retrier re-runs op while it loses the race: each attempt re-reads the
// current state, so a retry decides on fresh data. Each retry is counted
// in conflicts by op (nil: not counted).
type retrier struct {
	policy    kvstore.Policy
	conflicts *prometheus.CounterVec
}

func (r retrier) do(ctx context.Context, op string, fn func(ctx context.Context) error) error {
	p := r.policy
	if r.conflicts != nil {
		retried := r.conflicts.WithLabelValues(op)
		p.OnRetry = func(error) { retried.Inc() }
	}
	err := kvstore.Retry(ctx, p, fn)
	if errors.Is(err, stock.ErrConflict) {
		return fmt.Errorf("%s: %w", op, err)
	}
	return err
}

// WithCASAttempts bounds the attempts of an operation that keeps losing
// compare-and-set races (default 12).
func WithCASAttempts(n int) Option {
	return func(o *options) error {
		if n < 1 {
			return fmt.Errorf("attempts %d < 1: %w", n, ErrInvalidOption)
		}
		o.retry.Attempts = n
		return nil
	}
}

// WithCASBackoff sets the first delay between attempts and its cap
// (default 2 ms to 200 ms).
func WithCASBackoff(initial, max time.Duration) Option {
	return func(o *options) error {
		if initial <= 0 || max < initial {
			return fmt.Errorf("backoff %v..%v: %w", initial, max, ErrInvalidOption)
		}
		o.retry.Initial, o.retry.Max = initial, max
		return nil
	}
}
