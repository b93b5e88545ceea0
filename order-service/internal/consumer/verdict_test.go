package consumer

import (
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/eventshop/order-service/internal/app"
	"github.com/eventshop/order-service/internal/order"
	"github.com/eventshop/order-service/internal/store"
	"github.com/eventshop/shared/events"
	"github.com/eventshop/shared/platform/runner"
)

// TestVerdict: the app's refusals are refused under their reason, its
// waits wait, what redelivery cannot fix is permanent, and anything else
// is retried.
func TestVerdict(t *testing.T) {
	t.Parallel()
	transient := errors.New("nats: timeout")
	tests := []struct {
		name          string
		err           error
		wantPermanent bool
		wantRefused   bool
		wantWait      bool
	}{
		{name: "handled", err: nil},
		{name: "refused", err: &app.RefusedError{Reason: events.ReasonAmountMismatch, Err: order.ErrAmountMismatch}, wantPermanent: true, wantRefused: true},
		{name: "not due", err: &app.WaitError{Err: order.ErrNotDue, After: time.Second}, wantWait: true},
		{name: "corrupt", err: fmt.Errorf("%w: created event", app.ErrCorrupt), wantPermanent: true},
		{name: "unknown order", err: fmt.Errorf("%w: x", order.ErrNotFound), wantPermanent: true},
		{name: "invalid for the order", err: fmt.Errorf("%w: x", order.ErrInvalidEvent), wantPermanent: true},
		{name: "built invalid", err: fmt.Errorf("%w: x", events.ErrInvalidEvent), wantPermanent: true},
		{name: "unreachable", err: fmt.Errorf("%w: %w", store.ErrUnavailable, transient)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got := verdict(nil, tt.err)
			if (got == nil) != (tt.err == nil) {
				t.Fatalf("verdict(%v) = %v", tt.err, got)
			}
			if tt.err == nil {
				return
			}
			if !errors.Is(got, tt.err) && !errors.Is(got, errors.Unwrap(tt.err)) {
				t.Errorf("verdict(%v) = %v: lost the error", tt.err, got)
			}
			if p := errors.Is(got, runner.ErrPermanent); p != tt.wantPermanent {
				t.Errorf("verdict(%v) permanent = %v, want %v", tt.err, p, tt.wantPermanent)
			}
			if r := errors.Is(got, runner.ErrRefused); r != tt.wantRefused {
				t.Errorf("verdict(%v) refused = %v, want %v", tt.err, r, tt.wantRefused)
			}
			if w := errors.Is(got, runner.ErrWait); w != tt.wantWait {
				t.Errorf("verdict(%v) wait = %v, want %v", tt.err, w, tt.wantWait)
			}
		})
	}
}
