package gatewaysim_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/zap"

	"github.com/eventshop/payment-service/internal/gatewaysim"
	"github.com/eventshop/shared/platform/metrics"
)

// The credentials of the test simulators.
const (
	apiKey     = "test-gateway-api-key"
	adminToken = "test-admin-token"
)

// startGateway serves a real simulator over httptest.
func startGateway(t *testing.T, opts ...gatewaysim.Option) string {
	t.Helper()
	base, _ := startSim(t, opts...)
	return base
}

// startSim serves a real simulator over httptest and returns it too.
func startSim(t *testing.T, opts ...gatewaysim.Option) (string, *gatewaysim.Simulator) {
	t.Helper()
	sim, err := gatewaysim.New(opts...)
	if err != nil {
		t.Fatal(err)
	}
	srv, err := gatewaysim.NewServer("127.0.0.1:0", sim, gatewaysim.Credentials{APIKey: apiKey, AdminToken: adminToken},
		zap.NewNop(), metrics.NewRegistry(gatewaysim.ServiceName))
	if err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewServer(srv.Engine)
	t.Cleanup(ts.Close)
	return ts.URL, sim
}

type reply struct {
	status int
	header http.Header
	body   []byte
}

// do sends the request with the credential its route needs: the payment
// service's API key for POSTs, the admin token otherwise.
func do(t *testing.T, client *http.Client, method, url, key string, body any) reply {
	t.Helper()
	cred := adminToken
	if method == http.MethodPost {
		cred = apiKey
	}
	return doAs(t, client, cred, method, url, key, body)
}

// doAs sends the request with "Authorization: Bearer cred" (none if empty).
func doAs(t *testing.T, client *http.Client, cred, method, url, key string, body any) reply {
	t.Helper()
	var rd io.Reader
	if s, ok := body.(string); ok {
		rd = strings.NewReader(s)
	} else if body != nil {
		raw, err := json.Marshal(body)
		if err != nil {
			t.Fatal(err)
		}
		rd = bytes.NewReader(raw)
	}
	req, err := http.NewRequest(method, url, rd)
	if err != nil {
		t.Fatal(err)
	}
	if key != "" {
		req.Header.Set(gatewaysim.HeaderIdempotencyKey, key)
	}
	req.Header.Set("Content-Type", "application/json")
	if cred != "" {
		req.Header.Set("Authorization", "Bearer "+cred)
	}
	if client == nil {
		client = http.DefaultClient
	}
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return reply{status: resp.StatusCode, header: resp.Header, body: raw}
}

func chargeReq(orderID, token string) gatewaysim.ChargeRequest {
	return gatewaysim.ChargeRequest{OrderID: orderID, AmountCents: 2598, Currency: "USD", Token: token}
}

func charges(t *testing.T, base, orderID string) gatewaysim.OrderCharges {
	t.Helper()
	r := do(t, nil, http.MethodGet, base+"/charges?order_id="+orderID, "", nil)
	if r.status != http.StatusOK {
		t.Fatalf("GET /charges = %d %s", r.status, r.body)
	}
	var oc gatewaysim.OrderCharges
	if err := json.Unmarshal(r.body, &oc); err != nil {
		t.Fatal(err)
	}
	return oc
}

func setMode(t *testing.T, base string, s gatewaysim.Settings) {
	t.Helper()
	if r := do(t, nil, http.MethodPut, base+"/admin/mode", "", s); r.status != http.StatusOK {
		t.Fatalf("PUT /admin/mode = %d %s", r.status, r.body)
	}
}

func TestTokens(t *testing.T) {
	t.Parallel()
	base := startGateway(t)
	tests := []struct {
		name        string
		token       string
		wantStatus  int
		wantCharge  string
		wantDecline string
	}{
		{name: "visa", token: gatewaysim.TokenVisa, wantStatus: 201, wantCharge: gatewaysim.StatusSucceeded},
		{name: "mastercard", token: gatewaysim.TokenMastercard, wantStatus: 201, wantCharge: gatewaysim.StatusSucceeded},
		{name: "amex", token: gatewaysim.TokenAmex, wantStatus: 201, wantCharge: gatewaysim.StatusSucceeded},
		{name: "declined", token: gatewaysim.TokenDeclined, wantStatus: 402, wantCharge: gatewaysim.StatusDeclined, wantDecline: "card_declined"},
		{name: "insufficient funds", token: gatewaysim.TokenInsufficientFunds, wantStatus: 402, wantCharge: gatewaysim.StatusDeclined, wantDecline: "insufficient_funds"},
		{name: "unknown token", token: "tok_bogus", wantStatus: 402, wantCharge: gatewaysim.StatusDeclined, wantDecline: "invalid_token"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			orderID := "o-" + strings.ReplaceAll(tt.name, " ", "-")
			r := do(t, nil, http.MethodPost, base+"/charges", orderID, chargeReq(orderID, tt.token))
			if r.status != tt.wantStatus {
				t.Fatalf("status = %d %s, want %d", r.status, r.body, tt.wantStatus)
			}
			var ch gatewaysim.Charge
			if err := json.Unmarshal(r.body, &ch); err != nil {
				t.Fatal(err)
			}
			if ch.Status != tt.wantCharge || ch.DeclineCode != tt.wantDecline || !strings.HasPrefix(ch.ID, "ch_") ||
				ch.OrderID != orderID || ch.AmountCents != 2598 || ch.Currency != "USD" {
				t.Fatalf("charge = %+v", ch)
			}
			oc := charges(t, base, orderID)
			wantSucceeded := 0
			if tt.wantStatus == 201 {
				wantSucceeded = 1
			}
			if len(oc.Charges) != 1 || oc.Succeeded != wantSucceeded {
				t.Fatalf("GET /charges = %+v, want 1 attempt and %d succeeded", oc, wantSucceeded)
			}
		})
	}
}

func TestIdempotentReplay(t *testing.T) {
	t.Parallel()
	base := startGateway(t)
	first := do(t, nil, http.MethodPost, base+"/charges", "key-1", chargeReq("o-1", gatewaysim.TokenVisa))
	if first.status != 201 || first.header.Get(gatewaysim.HeaderIdempotentReplayed) != "" {
		t.Fatalf("first = %d %v", first.status, first.header)
	}
	// A replay of the same request returns the first answer.
	second := do(t, nil, http.MethodPost, base+"/charges", "key-1", chargeReq("o-1", gatewaysim.TokenVisa))
	if second.status != 201 || !bytes.Equal(second.body, first.body) || second.header.Get(gatewaysim.HeaderIdempotentReplayed) != "true" {
		t.Fatalf("replay = %d %s %v, want the first answer replayed", second.status, second.body, second.header)
	}
	if oc := charges(t, base, "o-1"); oc.Succeeded != 1 || len(oc.Charges) != 1 {
		t.Fatalf("charges = %+v, want exactly one", oc)
	}
	// A decline is replayed too.
	d1 := do(t, nil, http.MethodPost, base+"/charges", "key-2", chargeReq("o-2", gatewaysim.TokenDeclined))
	d2 := do(t, nil, http.MethodPost, base+"/charges", "key-2", chargeReq("o-2", gatewaysim.TokenDeclined))
	if d1.status != 402 || d2.status != 402 || !bytes.Equal(d1.body, d2.body) {
		t.Fatalf("declined replay = %d/%d", d1.status, d2.status)
	}
	if oc := charges(t, base, "o-2"); oc.Succeeded != 0 || len(oc.Charges) != 1 {
		t.Fatalf("charges = %+v, want one declined attempt", oc)
	}
}

func TestConcurrentSameKeyChargesOnce(t *testing.T) {
	t.Parallel()
	base := startGateway(t)
	const n = 32
	bodies := make([][]byte, n)
	statuses := make([]int, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := do(t, nil, http.MethodPost, base+"/charges", "o-race", chargeReq("o-race", gatewaysim.TokenVisa))
			statuses[i], bodies[i] = r.status, r.body
		}()
	}
	wg.Wait()
	for i := range n {
		if statuses[i] != 201 || !bytes.Equal(bodies[i], bodies[0]) {
			t.Fatalf("request %d = %d %s, want the same 201 as request 0", i, statuses[i], bodies[i])
		}
	}
	if oc := charges(t, base, "o-race"); oc.Succeeded != 1 || len(oc.Charges) != 1 {
		t.Fatalf("charges = %+v, want exactly one", oc)
	}
}

func TestBadRequests(t *testing.T) {
	t.Parallel()
	base := startGateway(t)
	tests := []struct {
		name     string
		key      string
		body     any
		wantType string
	}{
		{name: "no idempotency key", body: chargeReq("o-1", gatewaysim.TokenVisa), wantType: "missing-idempotency-key"},
		{name: "zero amount", key: "k", body: gatewaysim.ChargeRequest{OrderID: "o", Currency: "USD", Token: "tok_visa"}, wantType: "invalid-charge"},
		{name: "float amount", key: "k", body: `{"order_id":"o","amount_cents":1.5,"currency":"USD","token":"tok_visa"}`, wantType: "invalid-charge"},
		{name: "lower-case currency", key: "k", body: gatewaysim.ChargeRequest{OrderID: "o", AmountCents: 1, Currency: "usd", Token: "tok_visa"}, wantType: "invalid-charge"},
		{name: "no token", key: "k", body: gatewaysim.ChargeRequest{OrderID: "o", AmountCents: 1, Currency: "USD"}, wantType: "invalid-charge"},
		{name: "unknown field", key: "k", body: `{"order_id":"o","amount_cents":1,"currency":"USD","token":"t","x":1}`, wantType: "invalid-charge"},
		{name: "not json", key: "k", body: `{`, wantType: "invalid-charge"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			r := do(t, nil, http.MethodPost, base+"/charges", tt.key, tt.body)
			assertProblem(t, r, http.StatusBadRequest, tt.wantType)
		})
	}
	if oc := charges(t, base, "o"); len(oc.Charges) != 0 {
		t.Fatalf("invalid requests recorded charges: %+v", oc)
	}
	assertProblem(t, do(t, nil, http.MethodGet, base+"/charges", "", nil), http.StatusBadRequest, "invalid-charge")
}

func assertProblem(t *testing.T, r reply, status int, slug string) {
	t.Helper()
	var p struct {
		Type   string `json:"type"`
		Status int    `json:"status"`
	}
	if r.status != status || r.header.Get("Content-Type") != "application/problem+json" {
		t.Fatalf("got %d %q %s, want %d problem+json", r.status, r.header.Get("Content-Type"), r.body, status)
	}
	if err := json.Unmarshal(r.body, &p); err != nil || p.Type != "urn:eventshop:problem:"+slug || p.Status != status {
		t.Fatalf("problem = %+v (%v), want type %s", p, err, slug)
	}
}

func TestModes(t *testing.T) {
	t.Parallel()
	t.Run("down answers 503 and records nothing, then a retry charges", func(t *testing.T) {
		t.Parallel()
		base := startGateway(t)
		setMode(t, base, gatewaysim.Settings{Mode: gatewaysim.ModeDown})
		r := do(t, nil, http.MethodPost, base+"/charges", "o-down", chargeReq("o-down", gatewaysim.TokenVisa))
		assertProblem(t, r, http.StatusServiceUnavailable, "processor-unavailable")
		if oc := charges(t, base, "o-down"); len(oc.Charges) != 0 {
			t.Fatalf("down mode recorded %+v", oc)
		}
		setMode(t, base, gatewaysim.Settings{Mode: gatewaysim.ModeHealthy})
		r = do(t, nil, http.MethodPost, base+"/charges", "o-down", chargeReq("o-down", gatewaysim.TokenVisa))
		if r.status != 201 || r.header.Get(gatewaysim.HeaderIdempotentReplayed) != "" {
			t.Fatalf("after recovery = %d %v, want a fresh 201", r.status, r.header)
		}
	})
	t.Run("flaky fails the drawn fraction and records nothing for it", func(t *testing.T) {
		t.Parallel()
		draws := []float64{0.1, 0.9} // first below the error rate, then above
		var mu sync.Mutex
		base := startGateway(t, gatewaysim.WithRand(func() float64 {
			mu.Lock()
			defer mu.Unlock()
			d := draws[0]
			draws = draws[1:]
			return d
		}))
		setMode(t, base, gatewaysim.Settings{Mode: gatewaysim.ModeFlaky, ErrorRate: 0.5})
		r := do(t, nil, http.MethodPost, base+"/charges", "o-flaky", chargeReq("o-flaky", gatewaysim.TokenVisa))
		assertProblem(t, r, http.StatusInternalServerError, "processor-error")
		if oc := charges(t, base, "o-flaky"); len(oc.Charges) != 0 {
			t.Fatalf("flaky failure recorded %+v", oc)
		}
		r = do(t, nil, http.MethodPost, base+"/charges", "o-flaky", chargeReq("o-flaky", gatewaysim.TokenVisa))
		if r.status != 201 {
			t.Fatalf("second flaky draw = %d %s, want 201", r.status, r.body)
		}
	})
	t.Run("slow records the charge before answering late", func(t *testing.T) {
		t.Parallel()
		base := startGateway(t)
		setMode(t, base, gatewaysim.Settings{Mode: gatewaysim.ModeSlow, LatencyMS: 2000})
		ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
		defer cancel()
		raw, _ := json.Marshal(chargeReq("o-slow", gatewaysim.TokenVisa))
		req, _ := http.NewRequestWithContext(ctx, http.MethodPost, base+"/charges", bytes.NewReader(raw))
		req.Header.Set(gatewaysim.HeaderIdempotencyKey, "o-slow")
		req.Header.Set("Authorization", "Bearer "+apiKey)
		if resp, err := http.DefaultClient.Do(req); err == nil {
			resp.Body.Close()
			t.Fatalf("slow gateway answered %d before the client timeout", resp.StatusCode)
		}
		// The client gave up, but the charge happened: its retry replays it.
		setMode(t, base, gatewaysim.Settings{Mode: gatewaysim.ModeHealthy})
		r := do(t, nil, http.MethodPost, base+"/charges", "o-slow", chargeReq("o-slow", gatewaysim.TokenVisa))
		if r.status != 201 || r.header.Get(gatewaysim.HeaderIdempotentReplayed) != "true" {
			t.Fatalf("retry = %d %v, want a replayed 201", r.status, r.header)
		}
		if oc := charges(t, base, "o-slow"); oc.Succeeded != 1 {
			t.Fatalf("charges = %+v, want exactly one", oc)
		}
	})
	t.Run("mode round-trips and bad modes are refused", func(t *testing.T) {
		t.Parallel()
		base := startGateway(t)
		want := gatewaysim.Settings{Mode: gatewaysim.ModeSlow, LatencyMS: 250}
		setMode(t, base, want)
		var got gatewaysim.Settings
		r := do(t, nil, http.MethodGet, base+"/admin/mode", "", nil)
		if err := json.Unmarshal(r.body, &got); err != nil || got != want {
			t.Fatalf("GET /admin/mode = %s, want %+v", r.body, want)
		}
		for _, bad := range []gatewaysim.Settings{
			{Mode: "sideways"},
			{Mode: gatewaysim.ModeFlaky, ErrorRate: 1.5},
			{Mode: gatewaysim.ModeSlow},
			{Mode: gatewaysim.ModeHealthy, LatencyMS: -1},
		} {
			assertProblem(t, do(t, nil, http.MethodPut, base+"/admin/mode", "", bad), http.StatusBadRequest, "invalid-mode")
		}
		if r := do(t, nil, http.MethodGet, base+"/health", "", nil); r.status != http.StatusOK {
			t.Fatalf("GET /health = %d", r.status)
		}
	})
}
