package consumer

import (
	"errors"
	"fmt"
	"testing"

	"github.com/eventshop/audit-service/internal/app"
	"github.com/eventshop/shared/events"
	"github.com/eventshop/shared/platform/runner"
)

func TestVerdict(t *testing.T) {
	t.Parallel()
	storage := errors.New("nats down")
	tests := []struct {
		name          string
		err           error
		wantPermanent bool
		wantReason    string
	}{
		{name: "recorded", err: nil},
		{name: "refused: dead-lettered at once", err: &app.RefusedError{Err: app.ErrWrongSource}, wantPermanent: true},
		{name: "the chain's storage failed: retried", err: storage},
		{name: "a payload that breaks its type: refused", err: fmt.Errorf("parse orders.o-1.created: %w", events.ErrInvalidEvent),
			wantPermanent: true, wantReason: events.ReasonInvalidEvent},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got := verdict(tt.err)
			if !errors.Is(got, tt.err) || (tt.err == nil) != (got == nil) {
				t.Fatalf("verdict(%v) = %v, want it kept in the chain", tt.err, got)
			}
			if runner.IsPermanent(got) != tt.wantPermanent {
				t.Fatalf("verdict(%v) permanent = %v, want %v", tt.err, runner.IsPermanent(got), tt.wantPermanent)
			}
			if reason, _ := runner.RefusalReason(got); reason != tt.wantReason {
				t.Fatalf("verdict(%v) refused as %q, want %q", tt.err, reason, tt.wantReason)
			}
		})
	}
}
