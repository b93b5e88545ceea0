package consumer

import (
	"errors"
	"fmt"
	"time"
)

// ErrPermanent marks a failure that redelivery cannot fix (an undecodable or
// schema-invalid message, a permanent domain error). The runner dead-letters
// such a message at once instead of retrying it.
var ErrPermanent = errors.New("permanent failure")

// ErrInvalidConfig is returned for a runner configuration that cannot work.
var ErrInvalidConfig = errors.New("invalid consumer config")

// Permanent marks err as permanent while keeping it in the error chain.
func Permanent(err error) error {
	if err == nil {
		return nil
	}
	return fmt.Errorf("%w: %w", ErrPermanent, err)
}

// IsPermanent reports whether err was marked permanent.
func IsPermanent(err error) bool { return errors.Is(err, ErrPermanent) }

// retryAfter is a transient error that knows when it is worth trying again,
// such as an open circuit breaker.
type retryAfter struct {
	err   error
	after time.Duration
}

func (r *retryAfter) Error() string { return r.err.Error() }
func (r *retryAfter) Unwrap() error { return r.err }

// RetryAfter marks err as transient and asks for redelivery after d rather
// than after the runner's backoff schedule.
func RetryAfter(err error, d time.Duration) error {
	if err == nil {
		return nil
	}
	return &retryAfter{err: err, after: d}
}

// ErrWait marks a transient condition that is not a failure of the message
// (an outage, an event that arrived before its predecessor): the message is
// redelivered without spending one of its limited attempts on the way to the
// dead-letter stream.
var ErrWait = errors.New("waiting")

// Wait marks err as a wait (see ErrWait), redelivered after d.
func Wait(err error, d time.Duration) error {
	return RetryAfter(fmt.Errorf("%w: %w", ErrWait, err), d)
}
