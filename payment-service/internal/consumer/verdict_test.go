package consumer

import (
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/eventshop/payment-service/internal/app"
	"github.com/eventshop/payment-service/internal/payment"
	"github.com/eventshop/shared/platform/runner"
)

// delivery is a message as the runner hands it over: its only use here is
// the delivery count.
type delivery struct {
	jetstream.Msg
	n uint64
}

func (d delivery) Metadata() (*jetstream.MsgMetadata, error) {
	return &jetstream.MsgMetadata{NumDelivered: d.n}, nil
}

// openBreaker is a gateway outage that says when to come back.
type openBreaker struct{ after time.Duration }

func (o openBreaker) Error() string             { return "breaker open" }
func (o openBreaker) RetryAfter() time.Duration { return o.after }
func (o openBreaker) Unwrap() error             { return payment.ErrGatewayUnavailable }

func TestVerdict(t *testing.T) {
	t.Parallel()
	h := handlers{wait: runner.Backoff{Initial: time.Second, Max: time.Minute, Multiplier: 2}}
	tests := []struct {
		name          string
		err           error
		delivered     uint64
		wantPermanent bool
		wantReason    string
		wantWait      bool
	}{
		{name: "cancellation of a confirmed order", err: fmt.Errorf("o-1: %w", app.ErrIllegalTransition),
			wantPermanent: true, wantReason: "illegal_transition"},
		{name: "declined for good", err: fmt.Errorf("charge o-1: %w", payment.ErrGatewayRejected), wantPermanent: true},
		{name: "no payment token", err: fmt.Errorf("o-1: %w", payment.ErrNoPaymentToken), wantPermanent: true},
		{name: "token not visible yet", err: fmt.Errorf("o-1: %w", payment.ErrTokenNotVisible), delivered: 1},
		{name: "token never visible", err: fmt.Errorf("o-1: %w", payment.ErrTokenNotVisible), delivered: tokenAttempts, wantPermanent: true},
		{name: "gateway down, breaker closed", err: fmt.Errorf("charge o-1: %w", payment.ErrGatewayUnavailable), delivered: 3, wantWait: true},
		{name: "breaker open", err: fmt.Errorf("charge o-1: %w", openBreaker{after: 5 * time.Second}), delivered: 1, wantWait: true},
		{name: "NATS trouble", err: errors.New("nats: timeout"), delivered: 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got := h.verdict(delivery{n: tt.delivered}, tt.err)
			if !errors.Is(got, tt.err) {
				t.Fatalf("verdict(%v) = %v: lost the error", tt.err, got)
			}
			if p := runner.IsPermanent(got); p != tt.wantPermanent {
				t.Errorf("verdict(%v) permanent = %v, want %v", tt.err, p, tt.wantPermanent)
			}
			if reason, _ := runner.RefusalReason(got); reason != tt.wantReason {
				t.Errorf("verdict(%v) refused for %q, want %q", tt.err, reason, tt.wantReason)
			}
			if w := errors.Is(got, runner.ErrWait); w != tt.wantWait {
				t.Errorf("verdict(%v) wait = %v, want %v", tt.err, w, tt.wantWait)
			}
		})
	}
	if h.verdict(delivery{n: 1}, nil) != nil {
		t.Fatal("verdict(nil) is not an ack")
	}
}
