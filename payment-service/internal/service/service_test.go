package service_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest"

	"github.com/eventshop/payment-service/internal/breaker"
	"github.com/eventshop/payment-service/internal/config"
	"github.com/eventshop/payment-service/internal/consumer"
	"github.com/eventshop/payment-service/internal/gatewaysim"
	"github.com/eventshop/payment-service/internal/httpapi"
	"github.com/eventshop/payment-service/internal/payment"
	"github.com/eventshop/payment-service/internal/service"
	"github.com/eventshop/payment-service/internal/store"
	"github.com/eventshop/shared/api/apitest"
	"github.com/eventshop/shared/api/openapi"
	"github.com/eventshop/shared/events"
	"github.com/eventshop/shared/events/contracttest"
	platformconfig "github.com/eventshop/shared/platform/config"
	"github.com/eventshop/shared/platform/deadletter"
	"github.com/eventshop/shared/platform/kit/kittest"
	"github.com/eventshop/shared/platform/metrics"
	"github.com/eventshop/shared/platform/natstest"
	"github.com/eventshop/shared/platform/trace"
)

// harness is one running payment service with its real NATS server and real
// gateway simulator, plus the publishers of the upstream services.
type harness struct {
	t         *testing.T
	js        jetstream.JetStream
	in        *kittest.Instance[*service.Service]
	gwURL     string
	orders    *events.Publisher
	inventory *events.Publisher
}

var orderSeq atomic.Int64

func newOrderID(prefix string) string {
	return fmt.Sprintf("%s-%d-%d", prefix, time.Now().UnixNano()%1e6, orderSeq.Add(1))
}

func start(t *testing.T) *harness {
	t.Helper()
	b := kittest.StartBroker(t)
	// Every event the service produces in a test must pass its schema.
	t.Cleanup(func() { contracttest.Check(t, b.JS, events.StreamPayments, service.Name) })
	for _, s := range []string{events.StreamOrders, events.StreamInventory} {
		if _, err := events.EnsureStream(context.Background(), b.JS, s, events.StreamOptions{}); err != nil {
			t.Fatal(err)
		}
	}

	sim, err := gatewaysim.New()
	if err != nil {
		t.Fatal(err)
	}
	gsrv, err := gatewaysim.NewServer("127.0.0.1:0", sim, gatewaysim.Credentials{APIKey: gatewayKey, AdminToken: adminToken},
		zap.NewNop(), metrics.NewRegistry(gatewaysim.ServiceName))
	if err != nil {
		t.Fatal(err)
	}
	gw := httptest.NewServer(gsrv.Engine)
	t.Cleanup(gw.Close)

	base := b.Base()
	base.AdminToken = adminToken
	base.BrokerMetricsInterval = 100 * time.Millisecond // the lag in /metrics follows within a test's patience
	cfg := kittest.Config(t, config.Config{
		Base:           base,
		Consumers:      platformconfig.Consumers{ConsumerConcurrency: 4},
		GatewayURL:     gw.URL,
		GatewayTimeout: time.Second,
		GatewayAPIKey:  gatewayKey,
		Breaker:        breaker.Config{FailureThreshold: 2, OpenTimeout: 300 * time.Millisecond},
	})
	log := zaptest.NewLogger(t, zaptest.Level(zap.WarnLevel))
	h := &harness{t: t, js: b.JS, gwURL: gw.URL}
	h.in = kittest.Start(t, func(ctx context.Context) (*service.Service, error) { return service.New(ctx, cfg, log) }, kittest.WithFront(func(addr string) string { return apitest.Proxy(t, openapi.Payment, addr) }))
	contracttest.CheckConsumers(t, service.Name, h.in.Service.FilterSubjects())
	if h.orders, err = events.NewPublisher(b.JS, "order-service"); err != nil {
		t.Fatal(err)
	}
	if h.inventory, err = events.NewPublisher(b.JS, "inventory-service"); err != nil {
		t.Fatal(err)
	}
	return h
}

// gatewayKey is the payment service's API key at the test gateways.
const gatewayKey = "test-gateway-api-key"

// get GETs path of the service.
func (h *harness) get(path string) (int, []byte) {
	h.t.Helper()
	status, _, body := h.in.Get(path)
	return status, body
}

// gatewayGet GETs path of the gateway with "Authorization: Bearer token".
func (h *harness) gatewayGet(path, token string) (int, []byte) {
	h.t.Helper()
	req, err := http.NewRequest(http.MethodGet, h.gwURL+path, nil)
	if err != nil {
		h.t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		h.t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		h.t.Fatal(err)
	}
	return resp.StatusCode, body
}

func (h *harness) getJSON(path string, v any) int {
	h.t.Helper()
	status, body := h.get(path)
	if status == http.StatusOK {
		if err := json.Unmarshal(body, v); err != nil {
			h.t.Fatalf("GET %s: %v in %s", path, err, body)
		}
	}
	return status
}

func (h *harness) setGatewayMode(s gatewaysim.Settings) {
	h.t.Helper()
	raw, _ := json.Marshal(s)
	req, _ := http.NewRequest(http.MethodPut, h.gwURL+"/admin/mode", bytes.NewReader(raw))
	req.Header.Set("Authorization", "Bearer "+adminToken)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		h.t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		h.t.Fatalf("PUT /admin/mode = %d", resp.StatusCode)
	}
}

const total = 2598

// placeOrder publishes what the order and inventory services would:
// orders.<id>.created with the token, then inventory.<id>.reserved. It
// returns the reserved event's publish result.
func (h *harness) placeOrder(orderID, token string, totalCents int64) events.Published {
	h.t.Helper()
	ctx := context.Background()
	tp := trace.New().String()
	if token != "" {
		if _, err := h.orders.Publish(ctx, events.OrderCreated, orderID, tp, events.OrderCreatedData{
			OrderID: orderID, CustomerID: "c-42", Items: []events.Item{{SKU: "MUG-1", Quantity: 2}},
			PaymentToken: token, CreatedAt: time.Now().UTC(),
		}); err != nil {
			h.t.Fatal(err)
		}
	}
	unit := totalCents / 2
	p, err := h.inventory.Publish(ctx, events.InventoryReserved, orderID, trace.Child(tp).String(), events.InventoryReservedData{
		OrderID:    orderID,
		Lines:      []events.PricedLine{{SKU: "MUG-1", Name: "Mug", Quantity: 2, UnitPriceCents: unit, LineTotalCents: 2 * unit}},
		TotalCents: 2 * unit, Currency: "USD",
	})
	if err != nil {
		h.t.Fatal(err)
	}
	return p
}

// paymentEvent waits for payments.<id>.<verb> and returns it.
func (h *harness) paymentEvent(orderID, verb string) events.Envelope {
	h.t.Helper()
	var env events.Envelope
	natstest.EventuallyNil(h.t, "payments."+orderID+"."+verb, func() error {
		msg, err := h.lastMsg(events.StreamPayments, "payments."+orderID+"."+verb)
		if err != nil {
			return err
		}
		env, err = events.DefaultRegistry().Parse(msg.Data)
		return err
	})
	return env
}

func (h *harness) lastMsg(stream, subject string) (*jetstream.RawStreamMsg, error) {
	ctx := context.Background()
	s, err := h.js.Stream(ctx, stream)
	if err != nil {
		return nil, err
	}
	return s.GetLastMsgForSubject(ctx, subject)
}

// countMsgs counts the messages of stream under subject filter.
func (h *harness) countMsgs(stream, filter string) uint64 {
	h.t.Helper()
	ctx := context.Background()
	s, err := h.js.Stream(ctx, stream)
	if errors.Is(err, jetstream.ErrStreamNotFound) {
		return 0
	}
	if err != nil {
		h.t.Fatal(err)
	}
	info, err := s.Info(ctx, jetstream.WithSubjectFilter(filter))
	if err != nil {
		h.t.Fatal(err)
	}
	var n uint64
	for _, c := range info.State.Subjects {
		n += c
	}
	return n
}

func (h *harness) charges(orderID string) gatewaysim.OrderCharges {
	h.t.Helper()
	var oc gatewaysim.OrderCharges
	status, body := h.gatewayGet("/charges?order_id="+orderID, adminToken)
	if status != http.StatusOK {
		h.t.Fatalf("GET /charges = %d %s", status, body)
	}
	if err := json.Unmarshal(body, &oc); err != nil {
		h.t.Fatal(err)
	}
	return oc
}

func (h *harness) record(orderID string) (payment.Record, int) {
	h.t.Helper()
	var rec payment.Record
	status := h.getJSON("/payments/"+orderID, &rec)
	return rec, status
}

func (h *harness) breakerState() string {
	h.t.Helper()
	var v httpapi.BreakerView
	if status := h.getJSON("/breaker", &v); status != http.StatusOK {
		h.t.Fatalf("GET /breaker = %d", status)
	}
	return v.State
}

// waitSettled waits until the payment consumer has acknowledged every
// message up to stream sequence seq.
func (h *harness) waitSettled(seq uint64) {
	h.t.Helper()
	natstest.EventuallyNil(h.t, fmt.Sprintf("consumer settled up to %d", seq), func() error {
		c, err := h.js.Consumer(context.Background(), events.StreamInventory, consumer.ReservedDurable)
		if err != nil {
			return err
		}
		info, err := c.Info(context.Background())
		if err != nil {
			return err
		}
		if info.AckFloor.Stream < seq || info.NumAckPending > 0 || info.NumPending > 0 {
			return fmt.Errorf("ack floor %d, pending %d/%d", info.AckFloor.Stream, info.NumAckPending, info.NumPending)
		}
		return nil
	})
}

func TestPaysReservedOrders(t *testing.T) {
	h := start(t)
	tests := []struct {
		name        string
		token       string
		total       int64
		wantVerb    string
		wantDecline string
		wantCharges int // successful charges at the gateway
	}{
		{name: "visa is charged once", token: gatewaysim.TokenVisa, total: total, wantVerb: "succeeded", wantCharges: 1},
		{name: "amex is charged once", token: gatewaysim.TokenAmex, total: total, wantVerb: "succeeded", wantCharges: 1},
		{name: "declined card fails the payment", token: gatewaysim.TokenDeclined, total: total, wantVerb: "failed", wantDecline: "card_declined"},
		{name: "insufficient funds fails the payment", token: gatewaysim.TokenInsufficientFunds, total: total, wantVerb: "failed", wantDecline: "insufficient_funds"},
		{name: "unknown token fails the payment", token: "tok_stolen", total: total, wantVerb: "failed", wantDecline: "invalid_token"},
		{name: "free order needs no charge", token: gatewaysim.TokenVisa, total: 0, wantVerb: "succeeded"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			orderID := newOrderID("o")
			reserved := h.placeOrder(orderID, tt.token, tt.total)
			env := h.paymentEvent(orderID, tt.wantVerb)
			if env.Source != service.Name || env.TraceID() != reserved.Envelope.TraceID() {
				t.Fatalf("event source %q trace %q, want %q and the order's trace %q",
					env.Source, env.TraceID(), service.Name, reserved.Envelope.TraceID())
			}
			rec, status := h.record(orderID)
			if status != http.StatusOK {
				t.Fatalf("GET /payments/%s = %d", orderID, status)
			}
			if string(rec.Status) != tt.wantVerb || rec.AmountCents != tt.total || rec.Currency != "USD" || rec.DeclineCode != tt.wantDecline {
				t.Fatalf("record = %+v", rec)
			}
			switch tt.wantVerb {
			case "succeeded":
				var d events.PaymentSucceededData
				if err := env.DecodeData(&d); err != nil || d.ChargeID != rec.ChargeID || d.AmountCents != tt.total {
					t.Fatalf("succeeded data = %+v (%v), record %+v", d, err, rec)
				}
			case "failed":
				var d events.PaymentFailedData
				if err := env.DecodeData(&d); err != nil || d.Reason != events.ReasonCardDeclined || d.DeclineCode != tt.wantDecline {
					t.Fatalf("failed data = %+v (%v)", d, err)
				}
				if n := h.countMsgs(events.StreamPayments, "payments."+orderID+".succeeded"); n != 0 {
					t.Fatalf("a declined order also has %d succeeded events", n)
				}
			}
			if oc := h.charges(orderID); oc.Succeeded != tt.wantCharges {
				t.Fatalf("gateway charges = %+v, want %d succeeded", oc, tt.wantCharges)
			}
		})
	}
}

func TestGatewayOutageWaitsThenCompletes(t *testing.T) {
	h := start(t)
	h.setGatewayMode(gatewaysim.Settings{Mode: gatewaysim.ModeDown})
	orderID := newOrderID("outage")
	h.placeOrder(orderID, gatewaysim.TokenVisa, total)

	natstest.EventuallyNil(t, "breaker open", func() error {
		if s := h.breakerState(); s != "open" {
			return fmt.Errorf("breaker %s", s)
		}
		return nil
	})
	// While it is open, the server stops delivering to the consumers that
	// need the gateway: they are paused until the breaker lets a probe by.
	natstest.EventuallyNil(t, "payment consumers paused", func() error {
		for _, c := range [][2]string{{events.StreamInventory, "payment-inventory"}, {events.StreamOrders, "payment-orders"}} {
			cons, err := h.js.Consumer(context.Background(), c[0], c[1])
			if err != nil {
				return err
			}
			info, err := cons.Info(context.Background())
			if err != nil {
				return err
			}
			if !info.Paused {
				return fmt.Errorf("%s not paused", c[1])
			}
		}
		return nil
	})
	// Stay down across a few probe cycles: the order must keep waiting.
	time.Sleep(800 * time.Millisecond)
	if n := h.countMsgs(events.StreamPayments, "payments."+orderID+".>"); n != 0 {
		t.Fatalf("%d payment events during the outage, want none", n)
	}
	// The record says a charge is under way, and nothing more.
	if rec, status := h.record(orderID); status != http.StatusOK || rec.Status != payment.StatusCharging {
		t.Fatalf("GET /payments during the outage = %d %+v, want the charging record", status, rec)
	}
	if n := h.countMsgs(deadletter.DefaultStream, "dlq.>"); n != 0 {
		t.Fatalf("%d dead letters during the outage, want none", n)
	}
	if oc := h.charges(orderID); len(oc.Charges) != 0 {
		t.Fatalf("gateway recorded %+v while down", oc)
	}
	// An open breaker does not make the service unready: it is waiting.
	if status, body := h.get("/ready"); status != http.StatusOK || !strings.Contains(string(body), `"gateway_breaker":"open"`) {
		t.Fatalf("ready while the breaker is open = %d %s; want 200 naming the open breaker", status, body)
	}

	h.setGatewayMode(gatewaysim.Settings{Mode: gatewaysim.ModeHealthy})
	h.paymentEvent(orderID, "succeeded")
	if oc := h.charges(orderID); oc.Succeeded != 1 || len(oc.Charges) != 1 {
		t.Fatalf("gateway charges after recovery = %+v, want exactly one", oc)
	}
	if s := h.breakerState(); s != "closed" {
		t.Fatalf("breaker %s after recovery, want closed", s)
	}
	_, body := h.get("/metrics")
	for _, want := range []string{
		`eventshop_payment_breaker_transitions_total{from="closed",service="payment-service",to="open"}`,
		`eventshop_payment_breaker_transitions_total{from="half-open",service="payment-service",to="closed"} 1`,
		`eventshop_payment_breaker_state{service="payment-service"} 0`,
		`eventshop_consumer_messages_total{consumer="payment-inventory",outcome="wait",service="payment-service"}`,
		`eventshop_payment_consumer_pauses_total{outcome="paused",service="payment-service"}`,
	} {
		if !bytes.Contains(body, []byte(want)) {
			t.Errorf("metrics lack %s", want)
		}
	}
}

func TestRedeliveryChargesOnce(t *testing.T) {
	h := start(t)
	ctx := context.Background()
	orderID := newOrderID("redeliver")
	h.placeOrder(orderID, gatewaysim.TokenVisa, total)
	msg, err := h.lastMsg(events.StreamInventory, "inventory."+orderID+".reserved")
	if err != nil {
		t.Fatal(err)
	}
	// Two more deliveries of the same event, concurrent with the first.
	var last uint64
	for range 2 {
		ack, err := h.js.Publish(ctx, msg.Subject, msg.Data)
		if err != nil {
			t.Fatal(err)
		}
		last = ack.Sequence
	}
	h.waitSettled(last)
	first := h.paymentEvent(orderID, "succeeded")
	// And one more after the payment is recorded.
	ack, err := h.js.Publish(ctx, msg.Subject, msg.Data)
	if err != nil {
		t.Fatal(err)
	}
	h.waitSettled(ack.Sequence)

	if oc := h.charges(orderID); oc.Succeeded != 1 || len(oc.Charges) != 1 {
		t.Fatalf("gateway charges = %+v, want exactly one", oc)
	}
	if n := h.countMsgs(events.StreamPayments, "payments."+orderID+".>"); n != 1 {
		t.Fatalf("%d payment events, want 1", n)
	}
	var d events.PaymentSucceededData
	if err := first.DecodeData(&d); err != nil {
		t.Fatal(err)
	}
	rec, _ := h.record(orderID)
	if rec.ChargeID != d.ChargeID || rec.ChargeID != h.charges(orderID).Charges[0].ID {
		t.Fatalf("record charge %s, event charge %s: want the gateway's one charge", rec.ChargeID, d.ChargeID)
	}
}

// TestChargeBeforeCrashIsReplayed: a previous incarnation wrote the
// charging record with its secret key, charged the card under that key and
// crashed before recording the outcome. The redelivered reservation charges
// again under the key read back from the record: the gateway replays the
// first charge, and the customer is charged once.
func TestChargeBeforeCrashIsReplayed(t *testing.T) {
	h := start(t)
	ctx := context.Background()
	orderID := newOrderID("crash")
	key := "pay_" + rand.Text()
	intent := payment.NewIntent(payment.ChargeRequest{OrderID: orderID, AmountCents: total, Currency: "USD", IdempotencyKey: key}, time.Now())
	raw, _ := json.Marshal(intent)
	kv, err := h.js.KeyValue(ctx, store.PaymentsBucket)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := kv.Create(ctx, orderID, raw); err != nil {
		t.Fatal(err)
	}
	first := h.gatewayPost("/charges", key, gatewaysim.ChargeRequest{OrderID: orderID, AmountCents: total, Currency: "USD", Token: gatewaysim.TokenVisa})

	h.placeOrder(orderID, gatewaysim.TokenVisa, total)
	h.paymentEvent(orderID, "succeeded")
	rec, _ := h.record(orderID)
	if rec.ChargeID != first["id"] {
		t.Fatalf("recorded charge %s, want the earlier charge %s replayed", rec.ChargeID, first["id"])
	}
	oc := h.charges(orderID)
	if oc.Succeeded != 1 || oc.Charges[0].IdempotencyKey != key {
		t.Fatalf("gateway charges = %+v, want exactly one, under the stored key", oc)
	}
}

func TestPoisonMessagesAreDeadLettered(t *testing.T) {
	h := start(t)
	ctx := context.Background()
	wrongType := func(orderID string) []byte {
		_, raw, err := h.inventory.Build(events.InventoryRejected, orderID, trace.New().String(),
			events.InventoryRejectedData{OrderID: orderID, Reason: events.ReasonUnknownSKU})
		if err != nil {
			t.Fatal(err)
		}
		return raw
	}
	tests := []struct {
		name    string
		publish func(orderID string) uint64
		wantErr string
	}{
		{
			name: "not json",
			publish: func(orderID string) uint64 {
				ack, err := h.js.Publish(ctx, "inventory."+orderID+".reserved", []byte("{not json"))
				if err != nil {
					t.Fatal(err)
				}
				return ack.Sequence
			},
			wantErr: "invalid event",
		},
		{
			name: "wrong event type on the reserved subject",
			publish: func(orderID string) uint64 {
				ack, err := h.js.Publish(ctx, "inventory."+orderID+".reserved", wrongType(orderID))
				if err != nil {
					t.Fatal(err)
				}
				return ack.Sequence
			},
			wantErr: "invalid event",
		},
		{
			name:    "no order created event, so no payment token",
			publish: func(orderID string) uint64 { return h.placeOrder(orderID, "", total).Sequence },
			wantErr: "no payment token",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			orderID := newOrderID("poison")
			seq := tt.publish(orderID)
			dl := natstest.DeadLetter(t, h.js, consumer.ReservedDurable, events.StreamInventory, seq)
			if got := dl.Header.Get(deadletter.HeaderError); !strings.Contains(got, tt.wantErr) {
				t.Fatalf("Dlq-Error = %q, want it to mention %q", got, tt.wantErr)
			}
			if oc := h.charges(orderID); len(oc.Charges) != 0 {
				t.Fatalf("poison message charged: %+v", oc)
			}
			if n := h.countMsgs(events.StreamPayments, "payments."+orderID+".>"); n != 0 {
				t.Fatalf("poison message produced %d payment events", n)
			}
		})
	}
}

func TestHTTPProblems(t *testing.T) {
	h := start(t)
	tests := []struct {
		name     string
		path     string
		want     int
		wantType string
	}{
		{name: "unknown order", path: "/payments/nope", want: http.StatusNotFound, wantType: "payment-not-found"},
		{name: "invalid order id", path: "/payments/bad.id", want: http.StatusBadRequest, wantType: "invalid-order-id"},
		{name: "no route", path: "/charges", want: http.StatusNotFound, wantType: "not-found"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			status, header, body := h.in.Get(tt.path)
			var p struct {
				Type   string `json:"type"`
				Status int    `json:"status"`
			}
			if err := json.Unmarshal(body, &p); err != nil {
				t.Fatal(err)
			}
			if status != tt.want || header.Get("Content-Type") != "application/problem+json" ||
				p.Type != "urn:eventshop:problem:"+tt.wantType || p.Status != tt.want {
				t.Fatalf("GET %s = %d %q %+v, want %d %s", tt.path, status, header.Get("Content-Type"), p, tt.want, tt.wantType)
			}
		})
	}
}

func TestServesItsOpenAPIDocument(t *testing.T) {
	t.Parallel()
	apitest.ServesDocument(t, start(t).in.URL, openapi.Payment)
}
