package gateway_test

import (
	"context"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"go.uber.org/zap"

	"github.com/eventshop/payment-service/internal/breaker"
	"github.com/eventshop/payment-service/internal/gateway"
	"github.com/eventshop/payment-service/internal/gatewaysim"
	"github.com/eventshop/payment-service/internal/payment"
	"github.com/eventshop/shared/platform/metrics"
)

// apiKey is the test simulators' API key, and the client's.
const apiKey = "test-gateway-api-key"

// realGateway serves the real simulator.
func realGateway(t *testing.T) (string, *gatewaysim.Simulator) {
	t.Helper()
	sim, err := gatewaysim.New()
	if err != nil {
		t.Fatal(err)
	}
	srv, err := gatewaysim.NewServer("127.0.0.1:0", sim, gatewaysim.Credentials{APIKey: apiKey, AdminToken: "admin"},
		zap.NewNop(), metrics.NewRegistry(gatewaysim.ServiceName))
	if err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewServer(srv.Engine)
	t.Cleanup(ts.Close)
	return ts.URL, sim
}

// cannedGateway answers every charge with status and body: for the answers
// the simulator never gives.
func cannedGateway(t *testing.T, status int, body string, delay time.Duration) string {
	t.Helper()
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-time.After(delay):
		case <-r.Context().Done():
			return
		}
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		_, _ = w.Write([]byte(body))
	}))
	t.Cleanup(ts.Close)
	return ts.URL
}

type countingObserver struct {
	mu       sync.Mutex
	outcomes map[string]int
	refunds  map[string]int
	timed    int
}

func (o *countingObserver) ChargeOutcome(outcome string) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.outcomes == nil {
		o.outcomes = map[string]int{}
	}
	o.outcomes[outcome]++
}

func (o *countingObserver) RefundOutcome(outcome string) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.refunds == nil {
		o.refunds = map[string]int{}
	}
	o.refunds[outcome]++
}

func (o *countingObserver) GatewayLatency(string, time.Duration) {
	o.mu.Lock()
	o.timed++
	o.mu.Unlock()
}

func req(orderID, token string) payment.ChargeRequest {
	return payment.ChargeRequest{OrderID: orderID, AmountCents: 2598, Currency: "USD", Token: token, IdempotencyKey: orderID}
}

func TestChargeOutcomes(t *testing.T) {
	t.Parallel()
	simURL, _ := realGateway(t)
	closed := func() string { // a port with nothing listening
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		addr := ln.Addr().String()
		ln.Close()
		return "http://" + addr
	}()
	tests := []struct {
		name        string
		url         string
		token       string
		want        payment.ChargeResult
		wantOutcome string
		wantErr     error
	}{
		{name: "charged", url: simURL, token: gatewaysim.TokenVisa, want: payment.ChargeResult{Succeeded: true}, wantOutcome: gateway.OutcomeSucceeded},
		{name: "declined", url: simURL, token: gatewaysim.TokenDeclined, want: payment.ChargeResult{DeclineCode: "card_declined"}, wantOutcome: gateway.OutcomeDeclined},
		{name: "insufficient funds", url: simURL, token: gatewaysim.TokenInsufficientFunds, want: payment.ChargeResult{DeclineCode: "insufficient_funds"}, wantOutcome: gateway.OutcomeDeclined},
		{name: "503", url: cannedGateway(t, 503, `{}`, 0), wantOutcome: gateway.OutcomeUnavailable, wantErr: payment.ErrGatewayUnavailable},
		{name: "500", url: cannedGateway(t, 500, `{}`, 0), wantOutcome: gateway.OutcomeUnavailable, wantErr: payment.ErrGatewayUnavailable},
		{name: "429", url: cannedGateway(t, 429, `{}`, 0), wantOutcome: gateway.OutcomeUnavailable, wantErr: payment.ErrGatewayUnavailable},
		{name: "unreadable 201", url: cannedGateway(t, 201, `<html>`, 0), wantOutcome: gateway.OutcomeUnavailable, wantErr: payment.ErrGatewayUnavailable},
		{name: "400 is our bug", url: cannedGateway(t, 400, `{"type":"x"}`, 0), wantOutcome: gateway.OutcomeRejected, wantErr: payment.ErrGatewayRejected},
		{name: "401 is a wrong key: wait, never fail", url: cannedGateway(t, 401, `{}`, 0), wantOutcome: gateway.OutcomeUnavailable, wantErr: payment.ErrGatewayUnavailable},
		{name: "404 is our bug", url: cannedGateway(t, 404, `{}`, 0), wantOutcome: gateway.OutcomeRejected, wantErr: payment.ErrGatewayRejected},
		{name: "timeout", url: cannedGateway(t, 201, `{}`, time.Second), wantOutcome: gateway.OutcomeUnavailable, wantErr: payment.ErrGatewayUnavailable},
		{name: "connection refused", url: closed, wantOutcome: gateway.OutcomeUnavailable, wantErr: payment.ErrGatewayUnavailable},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			obs := &countingObserver{}
			c, err := gateway.New(tt.url, apiKey, gateway.WithTimeout(200*time.Millisecond), gateway.WithObserver(obs))
			if err != nil {
				t.Fatal(err)
			}
			token := tt.token
			if token == "" {
				token = gatewaysim.TokenVisa
			}
			got, err := c.Charge(context.Background(), req("o-"+tt.name[:3], token))
			if !errors.Is(err, tt.wantErr) || (tt.wantErr == nil && err != nil) {
				t.Fatalf("Charge err = %v, want %v", err, tt.wantErr)
			}
			if got.Succeeded != tt.want.Succeeded || got.DeclineCode != tt.want.DeclineCode || (err == nil && got.ChargeID == "") {
				t.Fatalf("Charge = %+v, want %+v", got, tt.want)
			}
			if obs.outcomes[tt.wantOutcome] != 1 || obs.timed != 1 {
				t.Fatalf("observed %v (%d timed), want one %s", obs.outcomes, obs.timed, tt.wantOutcome)
			}
		})
	}
}

func TestReplayIsReported(t *testing.T) {
	t.Parallel()
	url, sim := realGateway(t)
	c, err := gateway.New(url, apiKey)
	if err != nil {
		t.Fatal(err)
	}
	first, err := c.Charge(context.Background(), req("o-1", gatewaysim.TokenVisa))
	if err != nil || first.Replayed {
		t.Fatalf("first = %+v, %v", first, err)
	}
	second, err := c.Charge(context.Background(), req("o-1", gatewaysim.TokenVisa))
	if err != nil || !second.Replayed || second.ChargeID != first.ChargeID {
		t.Fatalf("second = %+v, %v; want a replay of %s", second, err, first.ChargeID)
	}
	if n := sim.Charges("o-1").Succeeded; n != 1 {
		t.Fatalf("gateway holds %d charges, want 1", n)
	}
}

func TestBreakerGuardsCalls(t *testing.T) {
	t.Parallel()
	url, sim := realGateway(t)
	b, err := breaker.New(breaker.Config{FailureThreshold: 2, OpenTimeout: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	obs := &countingObserver{}
	c, err := gateway.New(url, apiKey, gateway.WithBreaker(b), gateway.WithObserver(obs))
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	// Declines are healthy answers: they never open the breaker.
	for range 3 {
		if _, err := c.Charge(ctx, req("o-declined", gatewaysim.TokenDeclined)); err != nil {
			t.Fatal(err)
		}
	}
	if b.State() != breaker.Closed {
		t.Fatalf("declines opened the breaker")
	}
	if err := sim.SetSettings(gatewaysim.Settings{Mode: gatewaysim.ModeDown}); err != nil {
		t.Fatal(err)
	}
	for range 2 {
		if _, err := c.Charge(ctx, req("o-down", gatewaysim.TokenVisa)); !errors.Is(err, payment.ErrGatewayUnavailable) {
			t.Fatalf("down gateway err = %v", err)
		}
	}
	_, err = c.Charge(ctx, req("o-down", gatewaysim.TokenVisa))
	if !errors.Is(err, breaker.ErrOpen) || !errors.Is(err, payment.ErrGatewayUnavailable) {
		t.Fatalf("open breaker err = %v, want ErrOpen and ErrGatewayUnavailable", err)
	}
	if d, ok := breaker.RetryAfter(err); !ok || d <= 0 || d > time.Hour {
		t.Fatalf("retry hint = %v, %v", d, ok)
	}
	if obs.outcomes[gateway.OutcomeBreakerOpen] != 1 || obs.timed != 5 {
		t.Fatalf("observed %v (%d timed)", obs.outcomes, obs.timed)
	}
}

func TestNewRejectsBadURL(t *testing.T) {
	t.Parallel()
	for _, u := range []string{"", "gateway:8090", "ftp://x", "http://"} {
		if _, err := gateway.New(u, apiKey); !errors.Is(err, gateway.ErrInvalidOption) {
			t.Errorf("New(%q) err = %v, want ErrInvalidOption", u, err)
		}
	}
}

func TestRefund(t *testing.T) {
	t.Parallel()
	url, sim := realGateway(t)
	obs := &countingObserver{}
	c, err := gateway.New(url, apiKey, gateway.WithObserver(obs))
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	ch, err := c.Charge(ctx, req("o-1", gatewaysim.TokenVisa))
	if err != nil {
		t.Fatal(err)
	}
	refund := payment.RefundRequest{OrderID: "o-1", ChargeID: ch.ChargeID, AmountCents: 2598, IdempotencyKey: "refund-o-1"}
	first, err := c.Refund(ctx, refund)
	if err != nil || first.RefundID == "" || first.Replayed {
		t.Fatalf("first refund = %+v, %v", first, err)
	}
	second, err := c.Refund(ctx, refund)
	if err != nil || !second.Replayed || second.RefundID != first.RefundID {
		t.Fatalf("second refund = %+v, %v; want a replay of %s", second, err, first.RefundID)
	}
	if oc := sim.Charges("o-1"); oc.Succeeded != 1 || oc.Refunded != 1 {
		t.Fatalf("gateway = %+v, want one charge refunded once", oc)
	}
	unknown := refund
	unknown.ChargeID, unknown.IdempotencyKey = "ch_nope", "refund-o-2"
	if _, err := c.Refund(ctx, unknown); !errors.Is(err, payment.ErrGatewayRejected) {
		t.Fatalf("refund of an unknown charge err = %v, want ErrGatewayRejected", err)
	}
	if err := sim.SetSettings(gatewaysim.Settings{Mode: gatewaysim.ModeDown}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Refund(ctx, refund); !errors.Is(err, payment.ErrGatewayUnavailable) {
		t.Fatalf("refund while down err = %v, want ErrGatewayUnavailable", err)
	}
	if obs.refunds[gateway.OutcomeSucceeded] != 2 || obs.refunds[gateway.OutcomeRejected] != 1 || obs.refunds[gateway.OutcomeUnavailable] != 1 {
		t.Fatalf("observed refunds %v", obs.refunds)
	}
}

func TestRefundBehindBreaker(t *testing.T) {
	t.Parallel()
	b, err := breaker.New(breaker.Config{FailureThreshold: 1, OpenTimeout: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	c, err := gateway.New(cannedGateway(t, 503, `{}`, 0), apiKey, gateway.WithBreaker(b))
	if err != nil {
		t.Fatal(err)
	}
	refund := payment.RefundRequest{OrderID: "o-1", ChargeID: "ch_1", AmountCents: 1, IdempotencyKey: "refund-o-1"}
	if _, err := c.Refund(context.Background(), refund); !errors.Is(err, payment.ErrGatewayUnavailable) {
		t.Fatalf("503 err = %v", err)
	}
	_, err = c.Refund(context.Background(), refund)
	if !errors.Is(err, breaker.ErrOpen) || !errors.Is(err, payment.ErrGatewayUnavailable) {
		t.Fatalf("open breaker err = %v, want ErrOpen and ErrGatewayUnavailable", err)
	}
}
