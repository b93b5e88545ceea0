package consumer

import (
	"errors"
	"fmt"
	"testing"

	"github.com/eventshop/inventory-service/internal/app"
	"github.com/eventshop/inventory-service/internal/stock"
	"github.com/eventshop/shared/events"
	"github.com/eventshop/shared/platform/runner"
)

func TestVerdict(t *testing.T) {
	t.Parallel()
	transient := errors.New("nats: timeout")
	tests := []struct {
		name          string
		err           error
		wantReason    string // refused for it; "" if not refused
		wantPermanent bool
	}{
		{name: "amount mismatch", err: fmt.Errorf("commit: %w", stock.ErrAmountMismatch), wantReason: events.ReasonAmountMismatch, wantPermanent: true},
		{name: "illegal transition", err: fmt.Errorf("x: %w", stock.ErrInvalidTransition), wantReason: events.ReasonIllegalTransition, wantPermanent: true},
		{name: "invariant", err: fmt.Errorf("x: %w", stock.ErrInvariant), wantPermanent: true},
		{name: "unpublishable", err: fmt.Errorf("x: %w", app.ErrUnpublishable), wantPermanent: true},
		{name: "transient", err: transient},
		{name: "conflict", err: fmt.Errorf("reserve: %w", stock.ErrConflict)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got := verdict(nil, tt.err)
			if !errors.Is(got, tt.err) {
				t.Fatalf("verdict = %v, want it to carry %v", got, tt.err)
			}
			if tt.wantReason == "" && !tt.wantPermanent && got != tt.err {
				t.Fatalf("verdict = %v, want %v as it is (retried)", got, tt.err)
			}
			reason, refused := runner.RefusalReason(got)
			if reason != tt.wantReason || refused != (tt.wantReason != "") {
				t.Errorf("refused %v for %q, want %q", refused, reason, tt.wantReason)
			}
			if errors.Is(got, runner.ErrPermanent) != tt.wantPermanent {
				t.Errorf("permanent = %v, want %v", !tt.wantPermanent, tt.wantPermanent)
			}
		})
	}
	if verdict(nil, nil) != nil {
		t.Error("verdict(nil, nil) is an error")
	}
}
