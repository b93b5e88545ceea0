package gateway_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"testing"

	"github.com/eventshop/payment-service/internal/breaker"
	"github.com/eventshop/payment-service/internal/gateway"
	"github.com/eventshop/payment-service/internal/gatewaysim"
	"github.com/eventshop/payment-service/internal/payment"
)

// tamperingProxy forwards every request to the real simulator at target
// after tamper rewrites the charge body: a compromised hop, or a gateway
// that charged something else than it was asked to. The answer is the
// simulator's own, over real HTTP.
func tamperingProxy(t *testing.T, target string, tamper func(*gatewaysim.ChargeRequest)) string {
	t.Helper()
	u, err := url.Parse(target)
	if err != nil {
		t.Fatal(err)
	}
	proxy := httputil.NewSingleHostReverseProxy(u)
	forward := proxy.Director
	proxy.Director = func(r *http.Request) {
		forward(r)
		if r.URL.Path != "/charges" || r.Body == nil {
			return
		}
		var body gatewaysim.ChargeRequest
		if err := json.NewDecoder(r.Body).Decode(&body); err != nil {
			t.Errorf("proxy: %v", err)
			return
		}
		tamper(&body)
		raw, _ := json.Marshal(body)
		r.Body, r.ContentLength = io.NopCloser(bytes.NewReader(raw)), int64(len(raw))
	}
	ts := httptest.NewServer(proxy)
	t.Cleanup(ts.Close)
	return ts.URL
}

// TestAnswerMustMatchTheCharge: a gateway answer about another order,
// amount or currency than the charge asked for is a failed payment with
// the mismatch decline code and a mismatch outcome (the alert metric),
// never a success, and it does not count against the breaker.
func TestAnswerMustMatchTheCharge(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		token  string
		tamper func(*gatewaysim.ChargeRequest)
	}{
		{name: "one cent instead of 2598", token: gatewaysim.TokenVisa, tamper: func(r *gatewaysim.ChargeRequest) { r.AmountCents = 1 }},
		{name: "another order", token: gatewaysim.TokenVisa, tamper: func(r *gatewaysim.ChargeRequest) { r.OrderID = "o-someone-else" }},
		{name: "another currency", token: gatewaysim.TokenVisa, tamper: func(r *gatewaysim.ChargeRequest) { r.Currency = "JPY" }},
		{name: "a decline of another amount", token: gatewaysim.TokenDeclined, tamper: func(r *gatewaysim.ChargeRequest) { r.AmountCents = 1 }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			simURL, _ := realGateway(t)
			b, err := breaker.New(breaker.Config{FailureThreshold: 1, OpenTimeout: 1 << 40})
			if err != nil {
				t.Fatal(err)
			}
			obs := &countingObserver{}
			c, err := gateway.New(tamperingProxy(t, simURL, tt.tamper), apiKey, gateway.WithObserver(obs), gateway.WithBreaker(b))
			if err != nil {
				t.Fatal(err)
			}
			got, err := c.Charge(context.Background(), req("o-7000", tt.token))
			if err != nil {
				t.Fatalf("Charge err = %v, want a failed result", err)
			}
			if got.Succeeded || got.DeclineCode != gateway.DeclineGatewayMismatch || got.Mismatch == "" {
				t.Fatalf("Charge = %+v, want a failure with decline code %s", got, gateway.DeclineGatewayMismatch)
			}
			if obs.outcomes[gateway.OutcomeMismatch] != 1 || len(obs.outcomes) != 1 {
				t.Fatalf("observed %v, want one %s", obs.outcomes, gateway.OutcomeMismatch)
			}
			if b.State() != breaker.Closed {
				t.Fatalf("a mismatch opened the breaker")
			}
		})
	}
	t.Run("an untampered answer still succeeds", func(t *testing.T) {
		t.Parallel()
		simURL, _ := realGateway(t)
		c, err := gateway.New(tamperingProxy(t, simURL, func(*gatewaysim.ChargeRequest) {}), apiKey)
		if err != nil {
			t.Fatal(err)
		}
		if got, err := c.Charge(context.Background(), req("o-ok", gatewaysim.TokenVisa)); err != nil || !got.Succeeded || got.Mismatch != "" {
			t.Fatalf("Charge = %+v, %v; want a success", got, err)
		}
	})
}

// TestKeyTakenByAnotherRequestIsNotSuccess: someone charged 1 cent under
// our key first; the real simulator refuses our different request (422)
// instead of replaying their charge, and the client never reports a
// success for it.
func TestKeyTakenByAnotherRequestIsNotSuccess(t *testing.T) {
	t.Parallel()
	simURL, sim := realGateway(t)
	c, err := gateway.New(simURL, apiKey)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	theirs := req("o-7000", gatewaysim.TokenVisa)
	theirs.AmountCents = 1
	if _, err := c.Charge(ctx, theirs); err != nil {
		t.Fatal(err)
	}
	ours := req("o-7000", gatewaysim.TokenVisa)
	ours.AmountCents = 7000
	got, err := c.Charge(ctx, ours)
	if got.Succeeded || !errors.Is(err, payment.ErrGatewayRejected) {
		t.Fatalf("Charge = %+v, %v; want rejected, never a success", got, err)
	}
	if oc := sim.Charges("o-7000"); len(oc.Charges) != 1 || oc.Charges[0].AmountCents != 1 {
		t.Fatalf("gateway = %+v", oc)
	}
}
