package service_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest"

	"github.com/eventshop/order-service/internal/config"
	"github.com/eventshop/order-service/internal/service"
	"github.com/eventshop/shared/api/apitest"
	"github.com/eventshop/shared/api/openapi"
	"github.com/eventshop/shared/events"
	"github.com/eventshop/shared/events/contracttest"
	platformconfig "github.com/eventshop/shared/platform/config"
	"github.com/eventshop/shared/platform/kit/kittest"
	"github.com/eventshop/shared/platform/natstest"
	"github.com/eventshop/shared/platform/trace"
)

// harness is one order service running in-process against its own embedded
// nats-server, with publishers standing in for the other services.
type harness struct {
	t    *testing.T
	nats *natstest.Server
	js   jetstream.JetStream
	in   *kittest.Instance[*service.Service]
	inv  *events.Publisher
	pay  *events.Publisher
	ord  *events.Publisher
}

// start runs the service; configure adjusts its configuration first.
func start(t *testing.T, configure ...func(*config.Config)) *harness {
	t.Helper()
	return startAfter(t, nil, configure...)
}

// startAfter runs the service on a server where seed has written what an
// earlier version of the service left (nil: nothing).
func startAfter(t *testing.T, seed func(js jetstream.JetStream), configure ...func(*config.Config)) *harness {
	t.Helper()
	b := kittest.StartBroker(t)
	if seed != nil {
		seed(b.JS)
	}
	// Every event the service produces in a test must pass its schema.
	t.Cleanup(func() { contracttest.Check(t, b.JS, events.StreamOrders, service.Name) })
	// The streams the inventory and payment services own.
	for _, name := range []string{events.StreamInventory, events.StreamPayments} {
		if _, err := events.EnsureStream(context.Background(), b.JS, name, events.StreamOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	base := b.Base()
	base.ShutdownTimeout, base.AdminToken = 2*time.Second, adminToken
	cfg := kittest.Config(t, config.Config{
		Base:           base,
		Consumers:      platformconfig.Consumers{ConsumerConcurrency: 4},
		RequestTimeout: 2 * time.Second,
	}, configure...)
	log := zaptest.NewLogger(t, zaptest.Level(zap.WarnLevel))
	h := &harness{t: t, nats: b.Server, js: b.JS}
	h.in = kittest.Start(t, func(ctx context.Context) (*service.Service, error) { return service.New(ctx, cfg, log) }, kittest.WithFront(func(addr string) string { return apitest.Proxy(t, openapi.Order, addr) }))
	contracttest.CheckConsumers(t, service.Name, h.in.Service.FilterSubjects())
	h.inv = h.publisher("inventory-service")
	h.pay = h.publisher("payment-service")
	h.ord = h.publisher("order-service")
	return h
}

func (h *harness) publisher(source string) *events.Publisher {
	h.t.Helper()
	p, err := events.NewPublisher(h.js, source)
	if err != nil {
		h.t.Fatal(err)
	}
	return p
}

// do sends a request and returns the status, headers and body.
func (h *harness) do(method, path string, body []byte, header map[string]string) (int, http.Header, []byte) {
	h.t.Helper()
	var r io.Reader
	if body != nil {
		r = bytes.NewReader(body)
	}
	var hdr []string
	for k, v := range header {
		hdr = append(hdr, k, v)
	}
	return h.in.Request(method, path, r, hdr...)
}

type created struct {
	OrderID string `json:"order_id"`
	Status  string `json:"status"`
}

const validBody = `{"customer_id":"c-42","items":[{"sku":"SKU-1","quantity":2}],"payment_token":"tok_visa"}`

// create posts an order and returns its id, failing unless it is accepted.
func (h *harness) create(body string) string {
	h.t.Helper()
	status, hdr, out := h.do(http.MethodPost, "/orders", []byte(body), nil)
	if status != http.StatusAccepted {
		h.t.Fatalf("POST /orders = %d %s", status, out)
	}
	var c created
	if err := json.Unmarshal(out, &c); err != nil {
		h.t.Fatal(err)
	}
	if c.Status != "PENDING" || hdr.Get("Location") != "/orders/"+c.OrderID {
		h.t.Fatalf("POST /orders = %s, Location %q", out, hdr.Get("Location"))
	}
	return c.OrderID
}

type orderView struct {
	OrderID      string `json:"order_id"`
	CustomerID   string `json:"customer_id"`
	Status       string `json:"status"`
	Items        []events.Item
	Lines        []events.PricedLine `json:"lines"`
	TotalCents   *int64              `json:"total_cents"`
	Currency     string              `json:"currency"`
	CancelReason string              `json:"cancel_reason"`
	CancelDetail string              `json:"cancel_detail"`
	CreatedAt    time.Time           `json:"created_at"`
	UpdatedAt    time.Time           `json:"updated_at"`
	ShipTo       *events.Address     `json:"shipping_address"`
}

func (h *harness) get(id string) (int, orderView) {
	h.t.Helper()
	status, _, out := h.do(http.MethodGet, "/orders/"+id, nil, nil)
	var v orderView
	if status == http.StatusOK {
		if err := json.Unmarshal(out, &v); err != nil {
			h.t.Fatalf("GET /orders/%s: %v: %s", id, err, out)
		}
	}
	return status, v
}

// waitStatus polls GET /orders/<id> until the order reaches status.
func (h *harness) waitStatus(id, status string) orderView {
	h.t.Helper()
	var v orderView
	natstest.EventuallyNil(h.t, "order "+id+" "+status, func() error {
		var code int
		if code, v = h.get(id); code != http.StatusOK || v.Status != status {
			return fmt.Errorf("GET = %d, status %s", code, v.Status)
		}
		return nil
	})
	return v
}

func (h *harness) mustPublish(p *events.Publisher, t events.Type, id string, data any) {
	h.t.Helper()
	res, err := p.Publish(context.Background(), t, id, trace.New().String(), data)
	if err != nil || res.Duplicate {
		h.t.Fatalf("publish %s: %+v, %v", t, res, err)
	}
}

func reservedData(id string) events.InventoryReservedData {
	return events.InventoryReservedData{
		OrderID:    id,
		Lines:      []events.PricedLine{{SKU: "SKU-1", Name: "Mug", Quantity: 2, UnitPriceCents: 1299, LineTotalCents: 2598}},
		TotalCents: 2598, Currency: "USD",
	}
}

func paidData(id string) events.PaymentSucceededData {
	return events.PaymentSucceededData{OrderID: id, ChargeID: "ch_" + id, AmountCents: 2598, Currency: "USD"}
}

// reserve publishes inventory.<id>.reserved as the inventory service would.
func (h *harness) reserve(id string) {
	h.t.Helper()
	h.mustPublish(h.inv, events.InventoryReserved, id, reservedData(id))
}

// paid publishes payments.<id>.succeeded as the payment service would.
func (h *harness) paid(id string) {
	h.t.Helper()
	h.mustPublish(h.pay, events.PaymentSucceeded, id, paidData(id))
}

// count returns how many messages a stream holds on subject (a filter:
// wildcards add up every subject they match).
func (h *harness) count(stream, subject string) uint64 {
	h.t.Helper()
	ctx := context.Background()
	s, err := h.js.Stream(ctx, stream)
	if err != nil {
		h.t.Fatal(err)
	}
	info, err := s.Info(ctx, jetstream.WithSubjectFilter(subject))
	if err != nil {
		h.t.Fatal(err)
	}
	var n uint64
	for _, c := range info.State.Subjects {
		n += c
	}
	return n
}

// last returns the parsed last event on subject.
func (h *harness) last(stream, subject string) events.Envelope {
	h.t.Helper()
	ctx := context.Background()
	s, err := h.js.Stream(ctx, stream)
	if err != nil {
		h.t.Fatal(err)
	}
	msg, err := s.GetLastMsgForSubject(ctx, subject)
	if err != nil {
		h.t.Fatalf("last %s: %v", subject, err)
	}
	env, err := events.DefaultRegistry().Parse(msg.Data)
	if err != nil {
		h.t.Fatal(err)
	}
	return env
}

// redeliver appends a stored event again, bypassing create-once, so the
// consumer sees the very same envelope a second time (as after a lost ack),
// and waits until the consumer has acknowledged it.
func (h *harness) redeliver(stream, durable, subject string) {
	h.t.Helper()
	ctx := context.Background()
	s, err := h.js.Stream(ctx, stream)
	if err != nil {
		h.t.Fatal(err)
	}
	stored, err := s.GetLastMsgForSubject(ctx, subject)
	if err != nil {
		h.t.Fatal(err)
	}
	msg := nats.NewMsg(subject)
	msg.Data = stored.Data
	// Not the stored expectation headers: they would refuse the copy.
	msg.Header.Set(events.HeaderTraceparent, stored.Header.Get(events.HeaderTraceparent))
	ack, err := h.js.PublishMsg(ctx, msg)
	if err != nil {
		h.t.Fatal(err)
	}
	h.waitAcked(stream, durable, ack.Sequence)
}

// waitAcked waits until the durable consumer has acknowledged every message
// up to seq.
func (h *harness) waitAcked(stream, durable string, seq uint64) {
	h.t.Helper()
	natstest.EventuallyNil(h.t, durable+" acked "+stream, func() error {
		c, err := h.js.Consumer(context.Background(), stream, durable)
		if err != nil {
			return err
		}
		info, err := c.Info(context.Background())
		if err != nil {
			return err
		}
		if info.AckFloor.Stream < seq {
			return fmt.Errorf("ack floor %d", info.AckFloor.Stream)
		}
		return nil
	})
}

// problemBody is an RFC 9457 body.
type problemBody struct {
	Type   string   `json:"type"`
	Status int      `json:"status"`
	Errors []string `json:"errors"`
}

func wantProblem(t *testing.T, status int, hdr http.Header, body []byte, wantStatus int, wantType string) problemBody {
	t.Helper()
	if status != wantStatus {
		t.Fatalf("status = %d (%s), want %d", status, body, wantStatus)
	}
	if ct := hdr.Get("Content-Type"); !strings.HasPrefix(ct, "application/problem+json") {
		t.Fatalf("Content-Type = %q, want application/problem+json", ct)
	}
	var p problemBody
	if err := json.Unmarshal(body, &p); err != nil {
		t.Fatal(err)
	}
	if p.Status != wantStatus || p.Type != "urn:eventshop:problem:"+wantType {
		t.Fatalf("problem = %+v, want %d %s", p, wantStatus, wantType)
	}
	return p
}

func t0() time.Time { return time.Date(2026, 11, 23, 10, 0, 0, 0, time.UTC) }
