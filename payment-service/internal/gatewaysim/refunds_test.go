package gatewaysim_test

import (
	"bytes"
	"encoding/json"
	"net/http"
	"sync"
	"testing"

	"github.com/eventshop/payment-service/internal/gatewaysim"
)

// charge makes a charge and returns it, failing unless the answer is want.
func charge(t *testing.T, base, orderID, token string, want int) gatewaysim.Charge {
	t.Helper()
	r := do(t, nil, http.MethodPost, base+"/charges", orderID, chargeReq(orderID, token))
	if r.status != want {
		t.Fatalf("POST /charges = %d %s, want %d", r.status, r.body, want)
	}
	var ch gatewaysim.Charge
	if err := json.Unmarshal(r.body, &ch); err != nil {
		t.Fatal(err)
	}
	return ch
}

func refundReq(chargeID string, amount int64) gatewaysim.RefundRequest {
	return gatewaysim.RefundRequest{ChargeID: chargeID, AmountCents: amount}
}

func TestRefundAndReplay(t *testing.T) {
	t.Parallel()
	base := startGateway(t)
	ch := charge(t, base, "o-1", gatewaysim.TokenVisa, 201)

	first := do(t, nil, http.MethodPost, base+"/refunds", "refund-o-1", refundReq(ch.ID, ch.AmountCents))
	if first.status != 201 || first.header.Get(gatewaysim.HeaderIdempotentReplayed) != "" {
		t.Fatalf("first refund = %d %s %v", first.status, first.body, first.header)
	}
	var rf gatewaysim.Refund
	if err := json.Unmarshal(first.body, &rf); err != nil {
		t.Fatal(err)
	}
	if rf.ChargeID != ch.ID || rf.OrderID != "o-1" || rf.AmountCents != 2598 || rf.Currency != "USD" ||
		rf.Status != gatewaysim.StatusSucceeded || len(rf.ID) < 4 || rf.ID[:3] != "re_" {
		t.Fatalf("refund = %+v", rf)
	}
	// A replay of the key answers the first refund again, byte for byte.
	second := do(t, nil, http.MethodPost, base+"/refunds", "refund-o-1", refundReq(ch.ID, ch.AmountCents))
	if second.status != 201 || !bytes.Equal(second.body, first.body) || second.header.Get(gatewaysim.HeaderIdempotentReplayed) != "true" {
		t.Fatalf("replay = %d %s %v, want the first answer replayed", second.status, second.body, second.header)
	}
	// Another key cannot refund the same charge twice.
	assertProblem(t, do(t, nil, http.MethodPost, base+"/refunds", "other-key", refundReq(ch.ID, 1)), http.StatusConflict, "charge-not-refundable")

	oc := charges(t, base, "o-1")
	if oc.Succeeded != 1 || oc.Refunded != 1 || len(oc.Charges) != 1 || !oc.Charges[0].Refunded || oc.Charges[0].RefundID != rf.ID {
		t.Fatalf("GET /charges = %+v, want one succeeded charge, refunded by %s", oc, rf.ID)
	}
	// The charge's own answer is frozen as first given.
	if r := do(t, nil, http.MethodPost, base+"/charges", "o-1", chargeReq("o-1", gatewaysim.TokenVisa)); r.status != 201 ||
		bytes.Contains(r.body, []byte(`"refunded":true`)) {
		t.Fatalf("charge replay after the refund = %d %s", r.status, r.body)
	}
}

func TestConcurrentRefundsRefundOnce(t *testing.T) {
	t.Parallel()
	base := startGateway(t)
	ch := charge(t, base, "o-race", gatewaysim.TokenVisa, 201)
	const n = 16
	bodies := make([][]byte, n)
	statuses := make([]int, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			r := do(t, nil, http.MethodPost, base+"/refunds", "refund-o-race", refundReq(ch.ID, ch.AmountCents))
			statuses[i], bodies[i] = r.status, r.body
		})
	}
	wg.Wait()
	for i := range n {
		if statuses[i] != 201 || !bytes.Equal(bodies[i], bodies[0]) {
			t.Fatalf("request %d = %d %s, want the same 201 as request 0", i, statuses[i], bodies[i])
		}
	}
	if oc := charges(t, base, "o-race"); oc.Succeeded != 1 || oc.Refunded != 1 {
		t.Fatalf("charges = %+v, want one charge refunded once", oc)
	}
}

func TestRefundRefusals(t *testing.T) {
	t.Parallel()
	base := startGateway(t)
	paid := charge(t, base, "o-paid", gatewaysim.TokenVisa, 201)
	declined := charge(t, base, "o-declined", gatewaysim.TokenDeclined, 402)
	tests := []struct {
		name       string
		key        string
		body       any
		wantStatus int
		wantType   string
	}{
		{name: "unknown charge", key: "k1", body: refundReq("ch_nope", 1), wantStatus: http.StatusNotFound, wantType: "charge-not-found"},
		{name: "declined charge", key: "k2", body: refundReq(declined.ID, 1), wantStatus: http.StatusConflict, wantType: "charge-not-refundable"},
		{name: "more than was charged", key: "k3", body: refundReq(paid.ID, paid.AmountCents+1), wantStatus: http.StatusBadRequest, wantType: "invalid-refund"},
		{name: "no idempotency key", body: refundReq(paid.ID, 1), wantStatus: http.StatusBadRequest, wantType: "missing-idempotency-key"},
		{name: "zero amount", key: "k4", body: refundReq(paid.ID, 0), wantStatus: http.StatusBadRequest, wantType: "invalid-refund"},
		{name: "float amount", key: "k5", body: `{"charge_id":"` + paid.ID + `","amount_cents":1.5}`, wantStatus: http.StatusBadRequest, wantType: "invalid-refund"},
		{name: "unknown field", key: "k6", body: `{"charge_id":"` + paid.ID + `","amount_cents":1,"x":1}`, wantStatus: http.StatusBadRequest, wantType: "invalid-refund"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			assertProblem(t, do(t, nil, http.MethodPost, base+"/refunds", tt.key, tt.body), tt.wantStatus, tt.wantType)
		})
	}
	if oc := charges(t, base, "o-paid"); oc.Refunded != 0 || oc.Charges[0].Refunded {
		t.Fatalf("refused refunds refunded: %+v", oc)
	}
	// A refusal is not stored under its key: once the request is right,
	// the same key refunds.
	if r := do(t, nil, http.MethodPost, base+"/refunds", "k3", refundReq(paid.ID, paid.AmountCents)); r.status != 201 {
		t.Fatalf("refund after a refused one = %d %s", r.status, r.body)
	}
}

func TestRefundOutageModes(t *testing.T) {
	t.Parallel()
	base := startGateway(t)
	ch := charge(t, base, "o-out", gatewaysim.TokenVisa, 201)
	setMode(t, base, gatewaysim.Settings{Mode: gatewaysim.ModeDown})
	assertProblem(t, do(t, nil, http.MethodPost, base+"/refunds", "refund-o-out", refundReq(ch.ID, ch.AmountCents)),
		http.StatusServiceUnavailable, "processor-unavailable")
	if oc := charges(t, base, "o-out"); oc.Refunded != 0 {
		t.Fatalf("down mode refunded: %+v", oc)
	}
	setMode(t, base, gatewaysim.Settings{Mode: gatewaysim.ModeHealthy})
	r := do(t, nil, http.MethodPost, base+"/refunds", "refund-o-out", refundReq(ch.ID, ch.AmountCents))
	if r.status != 201 || r.header.Get(gatewaysim.HeaderIdempotentReplayed) != "" {
		t.Fatalf("after recovery = %d %v, want a fresh 201", r.status, r.header)
	}
}
