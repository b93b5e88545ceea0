package gatewaysim_test

import (
	"errors"
	"fmt"
	"net/http"
	"testing"

	"go.uber.org/zap"

	"github.com/eventshop/payment-service/internal/gatewaysim"
	"github.com/eventshop/shared/platform/metrics"
)

// TestKeyReusedWithAnotherRequestIsRefused: a key already used is answered
// 422 when the request differs (Stripe's semantics), never with the first
// answer: whoever learnt a key cannot have their own charge taken for
// someone else's, nor ours for theirs. The same request still replays.
func TestKeyReusedWithAnotherRequestIsRefused(t *testing.T) {
	t.Parallel()
	base := startGateway(t)
	// The attacker charges 1 cent under the order's key first...
	attack := chargeReq("o-7000", gatewaysim.TokenVisa)
	attack.AmountCents = 1
	first := do(t, nil, http.MethodPost, base+"/charges", "o-7000", attack)
	if first.status != http.StatusCreated {
		t.Fatalf("first charge = %d %s", first.status, first.body)
	}
	// ...and the real charge of 7000 under the same key is refused, not
	// answered with the 1-cent charge.
	real := chargeReq("o-7000", gatewaysim.TokenVisa)
	real.AmountCents = 7000
	other := real
	other.OrderID = "o-other"
	otherToken := attack
	otherToken.Token = gatewaysim.TokenAmex
	otherCurrency := attack
	otherCurrency.Currency = "EUR"
	for name, body := range map[string]gatewaysim.ChargeRequest{
		"another amount": real, "another order": other, "another token": otherToken, "another currency": otherCurrency,
	} {
		r := do(t, nil, http.MethodPost, base+"/charges", "o-7000", body)
		if r.header.Get(gatewaysim.HeaderIdempotentReplayed) != "" {
			t.Errorf("%s: answered as a replay", name)
		}
		assertProblem(t, r, http.StatusUnprocessableEntity, "idempotency-key-reused")
	}
	if oc := charges(t, base, "o-7000"); len(oc.Charges) != 1 || oc.Charges[0].AmountCents != 1 {
		t.Fatalf("charges = %+v, want only the first", oc)
	}
	if r := do(t, nil, http.MethodPost, base+"/charges", "o-7000", attack); r.status != http.StatusCreated ||
		r.header.Get(gatewaysim.HeaderIdempotentReplayed) != "true" || string(r.body) != string(first.body) {
		t.Fatalf("same request again = %d %s, want the first answer replayed", r.status, r.body)
	}

	// Refunds too: the key of a refund cannot be reused for another one.
	ch := charge(t, base, "o-r", gatewaysim.TokenVisa, http.StatusCreated)
	if r := do(t, nil, http.MethodPost, base+"/refunds", "rk", refundReq(ch.ID, 1)); r.status != http.StatusCreated {
		t.Fatalf("refund = %d %s", r.status, r.body)
	}
	assertProblem(t, do(t, nil, http.MethodPost, base+"/refunds", "rk", refundReq(ch.ID, ch.AmountCents)),
		http.StatusUnprocessableEntity, "idempotency-key-reused")
}

// TestRoutesNeedCredentials: charges and refunds need the payment service's
// API key, the listing and the outage switches the admin token; anything
// else is 401 and changes nothing.
func TestRoutesNeedCredentials(t *testing.T) {
	t.Parallel()
	base := startGateway(t)
	ch := charge(t, base, "o-victim", gatewaysim.TokenVisa, http.StatusCreated)
	routes := []struct {
		name, method, path, key string
		body                    any
		cred                    string // the one credential that opens it
	}{
		{name: "charge", method: http.MethodPost, path: "/charges", key: "k-new", body: chargeReq("o-new", gatewaysim.TokenVisa), cred: apiKey},
		{name: "refund", method: http.MethodPost, path: "/refunds", key: "k-refund", body: refundReq(ch.ID, ch.AmountCents), cred: apiKey},
		{name: "list charges", method: http.MethodGet, path: "/charges?order_id=o-victim", cred: adminToken},
		{name: "read mode", method: http.MethodGet, path: "/admin/mode", cred: adminToken},
		{name: "switch down", method: http.MethodPut, path: "/admin/mode", body: gatewaysim.Settings{Mode: gatewaysim.ModeDown}, cred: adminToken},
	}
	for _, rt := range routes {
		wrong := apiKey
		if rt.cred == apiKey {
			wrong = adminToken
		}
		for _, cred := range []string{"", "guess", wrong, rt.cred + "x", rt.cred[:len(rt.cred)-1]} {
			t.Run(fmt.Sprintf("%s with %q", rt.name, cred), func(t *testing.T) {
				assertProblem(t, doAs(t, nil, cred, rt.method, base+rt.path, rt.key, rt.body), http.StatusUnauthorized, "unauthorized")
			})
		}
	}
	// Nothing happened: no new charge, no refund, still healthy.
	if oc := charges(t, base, "o-victim"); oc.Refunded != 0 || len(oc.Charges) != 1 {
		t.Fatalf("an unauthenticated refund went through: %+v", oc)
	}
	if oc := charges(t, base, "o-new"); len(oc.Charges) != 0 {
		t.Fatalf("an unauthenticated charge went through: %+v", oc)
	}
	if r := do(t, nil, http.MethodGet, base+"/admin/mode", "", nil); string(r.body) != `{"mode":"healthy","latency_ms":0,"error_rate":0}` {
		t.Fatalf("mode = %s, want still healthy", r.body)
	}
	// The right credential opens each route.
	for _, rt := range routes {
		if r := doAs(t, nil, rt.cred, rt.method, base+rt.path, rt.key, rt.body); r.status >= 300 {
			t.Errorf("%s with its credential = %d %s", rt.name, r.status, r.body)
		}
	}
	if oc := charges(t, base, "o-victim"); oc.Refunded != 1 {
		t.Fatalf("the authenticated refund did not go through: %+v", oc)
	}
}

// TestNewServerNeedsAnAPIKey: a simulator that anyone could charge through
// does not start.
func TestNewServerNeedsAnAPIKey(t *testing.T) {
	t.Parallel()
	sim, err := gatewaysim.New()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := gatewaysim.NewServer("127.0.0.1:0", sim, gatewaysim.Credentials{AdminToken: "a"}, zap.NewNop(),
		metrics.NewRegistry(gatewaysim.ServiceName)); !errors.Is(err, gatewaysim.ErrInvalidOption) {
		t.Fatalf("NewServer without an API key err = %v, want ErrInvalidOption", err)
	}
	if _, err := gatewaysim.LoadConfig(func(string) (string, bool) { return "", false }); err == nil {
		t.Fatal("LoadConfig without GATEWAY_API_KEY succeeded")
	}
}

// TestStateIsBounded: the simulator keeps at most max charges and max
// refund keys, forgetting the oldest first, and refused requests leave
// nothing behind, however many keys a caller invents.
func TestStateIsBounded(t *testing.T) {
	t.Parallel()
	const max = 3
	base, sim := startSim(t, gatewaysim.WithMaxCharges(max))
	var kept []gatewaysim.Charge
	for i := range 2 * max {
		id := fmt.Sprintf("o-%d", i)
		kept = append(kept, charge(t, base, id, gatewaysim.TokenVisa, http.StatusCreated))
	}
	// Refusals: unknown charges under ever new keys, and refunds above the
	// charge's amount.
	for i := range 50 {
		do(t, nil, http.MethodPost, base+"/refunds", fmt.Sprintf("junk-%d", i), refundReq(fmt.Sprintf("ch_nope-%d", i), 1))
	}
	nCharges, chargeKeys, refundKeys, orders := sim.Kept()
	if nCharges != max || chargeKeys != max || refundKeys != 0 || orders != max {
		t.Fatalf("kept %d charges, %d charge keys, %d refund keys, %d orders; want %d, %d, 0, %d",
			nCharges, chargeKeys, refundKeys, orders, max, max, max)
	}
	// The oldest are forgotten, the newest remembered.
	if oc := charges(t, base, "o-0"); len(oc.Charges) != 0 {
		t.Fatalf("oldest order still listed: %+v", oc)
	}
	newest := fmt.Sprintf("o-%d", 2*max-1)
	if r := do(t, nil, http.MethodPost, base+"/charges", newest, chargeReq(newest, gatewaysim.TokenVisa)); r.header.Get(gatewaysim.HeaderIdempotentReplayed) != "true" {
		t.Fatalf("newest key not replayed: %d %v", r.status, r.header)
	}
	// Refund keys are bounded too.
	for i, ch := range kept[max:] {
		if r := do(t, nil, http.MethodPost, base+"/refunds", fmt.Sprintf("rk-%d", i), refundReq(ch.ID, 1)); r.status != http.StatusCreated {
			t.Fatalf("refund = %d %s", r.status, r.body)
		}
	}
	extra := charge(t, base, "o-extra", gatewaysim.TokenVisa, http.StatusCreated)
	if r := do(t, nil, http.MethodPost, base+"/refunds", "rk-extra", refundReq(extra.ID, 1)); r.status != http.StatusCreated {
		t.Fatalf("refund = %d %s", r.status, r.body)
	}
	if _, _, refundKeys, _ := sim.Kept(); refundKeys != max {
		t.Fatalf("kept %d refund keys, want %d", refundKeys, max)
	}
}
