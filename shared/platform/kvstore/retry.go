package kvstore

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"time"
)

// Policy bounds and paces the retries of an operation that lost a
// compare-and-set. Zero fields take DefaultPolicy's values.
type Policy struct {
	// Attempts bounds the attempts, the first included.
	Attempts int
	// Initial is the delay before the first retry; each next one doubles,
	// up to Max. Each delay is then drawn from ±50% of it, so contenders
	// spread out instead of colliding again in lock step.
	Initial, Max time.Duration
	// Conflict is what is retried: an error wrapping it (default
	// ErrConflict; a domain's own conflict error where the operation makes
	// some conflicts itself).
	Conflict error
	// OnRetry, if set, is called with each conflict that is retried.
	OnRetry func(err error)
}

// DefaultPolicy: 12 attempts, 2ms then doubling up to 200ms between them
// (about a second in all), enough for a dozen writers of one key.
var DefaultPolicy = Policy{Attempts: 12, Initial: 2 * time.Millisecond, Max: 200 * time.Millisecond}

// Validate reports a Policy that cannot be used: negative fields, or a
// Max below Initial.
func (p Policy) Validate() error {
	p = p.withDefaults()
	if p.Attempts < 1 || p.Initial <= 0 || p.Max < p.Initial {
		return fmt.Errorf("retry policy: %d attempts, delays %v..%v: %w", p.Attempts, p.Initial, p.Max, ErrInvalidOption)
	}
	return nil
}

func (p Policy) withDefaults() Policy {
	if p.Attempts == 0 {
		p.Attempts = DefaultPolicy.Attempts
	}
	if p.Initial == 0 {
		p.Initial = DefaultPolicy.Initial
	}
	if p.Max == 0 {
		p.Max = max(DefaultPolicy.Max, p.Initial)
	}
	if p.Conflict == nil {
		p.Conflict = ErrConflict
	}
	return p
}

// Retry runs attempt until it returns anything but a conflict, at most
// p.Attempts times, waiting between attempts as p says. Each attempt must
// read afresh what it decides on. After the last attempt the error wraps
// the conflict, so a consumer naks (the message comes back later) and an
// HTTP caller answers 409; if ctx ends while waiting, the error wraps
// ctx's error and the conflict.
func Retry(ctx context.Context, p Policy, attempt func(ctx context.Context) error) error {
	if err := p.Validate(); err != nil {
		return err
	}
	p = p.withDefaults()
	delay := p.Initial
	for n := 1; ; n++ {
		err := attempt(ctx)
		if err == nil || !errors.Is(err, p.Conflict) {
			return err
		}
		if n == p.Attempts {
			return fmt.Errorf("gave up after %d attempts: %w", n, err)
		}
		if p.OnRetry != nil {
			p.OnRetry(err)
		}
		t := time.NewTimer(jitter(delay))
		select {
		case <-ctx.Done():
			t.Stop()
			return fmt.Errorf("gave up after %d attempts: %w: %w", n, ctx.Err(), err)
		case <-t.C:
		}
		delay = min(2*delay, p.Max)
	}
}

// jitter draws a delay from [d/2, 3d/2).
func jitter(d time.Duration) time.Duration {
	return d/2 + rand.N(d)
}
