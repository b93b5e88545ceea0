package runner

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

// ErrRefused marks an event refused for what it claims: it is well formed
// but contradicts what the consumer knows (an amount that is not the
// order's total, a transition the saga cannot make, a conflicting
// duplicate). A refused event is permanent: it is dead-lettered at once,
// never applied, and counted by reason in eventshop_events_refused_total.
var ErrRefused = errors.New("event refused")

// ReasonOther is the reason label of a refusal whose reason is not a
// short snake_case word (labels stay bounded whatever a caller passes).
const ReasonOther = "other"

// refusal is an error marked Refused, with the reason it is counted by.
type refusal struct {
	reason string
	err    error
}

func (r *refusal) Error() string { return "refused (" + r.reason + "): " + r.err.Error() }

// Unwrap makes errors.Is true for ErrPermanent, ErrRefused and err's chain.
func (r *refusal) Unwrap() []error { return []error{ErrPermanent, ErrRefused, r.err} }

// Refused marks err as a refused event (see ErrRefused), counted under
// reason: a fixed snake_case word such as "amount_mismatch" (1 to 32
// characters from a-z and '_'; anything else is counted as ReasonOther).
func Refused(reason string, err error) error {
	if err == nil {
		return nil
	}
	if !validReason(reason) {
		reason = ReasonOther
	}
	return &refusal{reason: reason, err: err}
}

// RefusalReason returns the reason err was refused for, if it was.
func RefusalReason(err error) (string, bool) {
	var r *refusal
	if errors.As(err, &r) {
		return r.reason, true
	}
	return "", false
}

func validReason(s string) bool {
	if len(s) == 0 || len(s) > 32 {
		return false
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; !('a' <= c && c <= 'z' || c == '_') {
			return false
		}
	}
	return true
}
