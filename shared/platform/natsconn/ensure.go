package natsconn

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/cenkalti/backoff/v4"
	"go.uber.org/zap"
)

// ErrInvalidOption is returned by an option given a value it cannot use.
var ErrInvalidOption = errors.New("invalid option")

// Retry pacing of Ensure: quick at first, then at most every 2s, so a
// service is up soon after its NATS server is.
const (
	ensureInitialInterval = 100 * time.Millisecond
	ensureMaxInterval     = 2 * time.Second
)

// EnsureOption tunes Ensure.
type EnsureOption func(*ensureOptions) error

type ensureOptions struct {
	attemptTimeout time.Duration
	giveUpAfter    time.Duration
}

// WithAttemptTimeout bounds each attempt by d (default: only ctx bounds it).
func WithAttemptTimeout(d time.Duration) EnsureOption {
	return func(o *ensureOptions) error {
		if d <= 0 {
			return fmt.Errorf("attempt timeout %s: %w", d, ErrInvalidOption)
		}
		o.attemptTimeout = d
		return nil
	}
}

// WithGiveUpAfter stops retrying after d and returns the last error, so an
// orchestrator restarts the service (default: retry until ctx ends).
func WithGiveUpAfter(d time.Duration) EnsureOption {
	return func(o *ensureOptions) error {
		if d <= 0 {
			return fmt.Errorf("give up after %s: %w", d, ErrInvalidOption)
		}
		o.giveUpAfter = d
		return nil
	}
}

// Ensure runs ensure, typically creating the streams and buckets a service
// owns, until it succeeds or ctx ends, retrying with exponential backoff:
// Connect lets a service start before its NATS server, and what it owns can
// only be created once the server is reachable. what names the work in the
// retry log lines and in the error.
func Ensure(ctx context.Context, log *zap.Logger, what string, ensure func(ctx context.Context) error, opts ...EnsureOption) error {
	var o ensureOptions
	for _, opt := range opts {
		if err := opt(&o); err != nil {
			return fmt.Errorf("%s: %w", what, err)
		}
	}
	b := backoff.NewExponentialBackOff()
	b.InitialInterval = ensureInitialInterval
	b.MaxInterval = ensureMaxInterval
	b.MaxElapsedTime = o.giveUpAfter
	attempt := func() error {
		actx := ctx
		if o.attemptTimeout > 0 {
			var cancel context.CancelFunc
			actx, cancel = context.WithTimeout(ctx, o.attemptTimeout)
			defer cancel()
		}
		return ensure(actx)
	}
	notify := func(err error, next time.Duration) {
		log.Warn(what+" failed, retrying", zap.Duration("retry_in", next), zap.Error(err))
	}
	if err := backoff.RetryNotify(attempt, backoff.WithContext(b, ctx), notify); err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	return nil
}
