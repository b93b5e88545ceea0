package service_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest"

	"github.com/eventshop/inventory-service/internal/config"
	"github.com/eventshop/inventory-service/internal/consumer"
	"github.com/eventshop/inventory-service/internal/service"
	"github.com/eventshop/inventory-service/internal/stock"
	"github.com/eventshop/shared/api/apitest"
	"github.com/eventshop/shared/api/openapi"
	"github.com/eventshop/shared/events"
	"github.com/eventshop/shared/events/contracttest"
	platformconfig "github.com/eventshop/shared/platform/config"
	"github.com/eventshop/shared/platform/kit/kittest"
	"github.com/eventshop/shared/platform/natstest"
	"github.com/eventshop/shared/platform/trace"
)

const adminToken = "admin-secret"

// harness runs the whole service in-process against a real embedded
// nats-server, and plays the order service's part of the saga.
type harness struct {
	t   *testing.T
	js  jetstream.JetStream
	in  *kittest.Instance[*service.Service]
	pub *events.Publisher
}

func start(t *testing.T, tune ...func(*config.Config)) *harness {
	t.Helper()
	b := kittest.StartBroker(t)
	// Every event the service produces in a test must pass its schema.
	t.Cleanup(func() { contracttest.Check(t, b.JS, events.StreamInventory, service.Name) })
	// ORDERS belongs to the order service; the test stands in for it.
	if _, err := events.EnsureStream(context.Background(), b.JS, events.StreamOrders, events.StreamOptions{}); err != nil {
		t.Fatal(err)
	}
	base := b.Base()
	base.AdminToken = adminToken
	cfg := kittest.Config(t, config.Config{Base: base, Consumers: platformconfig.Consumers{ConsumerConcurrency: 8}}, tune...)
	log := zaptest.NewLogger(t, zaptest.Level(zap.WarnLevel))
	in := kittest.Start(t, func(ctx context.Context) (*service.Service, error) { return service.New(ctx, cfg, log) }, kittest.WithFront(func(addr string) string { return apitest.Proxy(t, openapi.Inventory, addr) }))
	contracttest.CheckConsumers(t, service.Name, in.Service.FilterSubjects())
	pub, err := events.NewPublisher(b.JS, "order-service")
	if err != nil {
		t.Fatal(err)
	}
	return &harness{t: t, js: b.JS, in: in, pub: pub}
}

// eventually polls cond until it holds or 15s pass.
func (h *harness) eventually(what string, cond func() (bool, string)) {
	h.t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for {
		ok, state := cond()
		if ok {
			return
		}
		if time.Now().After(deadline) {
			h.t.Fatalf("timed out waiting for %s; last state: %s", what, state)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func (h *harness) do(method, path, token, body string) (int, string) {
	h.t.Helper()
	var r io.Reader
	if body != "" {
		r = strings.NewReader(body)
	}
	status, header, raw := h.in.Request(method, path, r, kittest.Bearer(token)...)
	if status >= 400 && path != "/ready" { // /ready reports its checks as plain JSON
		if ct := header.Get("Content-Type"); !strings.HasPrefix(ct, "application/problem+json") {
			h.t.Errorf("%s %s -> %d with Content-Type %q, want problem+json", method, path, status, ct)
		}
	}
	return status, string(raw)
}

// setStock PUTs a SKU as an administrator.
func (h *harness) setStock(sku, name string, price int64, currency string, available int64) {
	h.t.Helper()
	body := fmt.Sprintf(`{"name":%q,"price_cents":%d,"currency":%q,"available":%d}`, name, price, currency, available)
	code, resp := h.do(http.MethodPut, "/inventory/"+sku, adminToken, body)
	if code != http.StatusOK && code != http.StatusCreated {
		h.t.Fatalf("PUT %s = %d %s", sku, code, resp)
	}
}

// item is sku as readers see it (app.Get): a committed order's units
// sold, a released one's available, whether or not a write stored it so.
func (h *harness) item(sku string) stock.Item {
	h.t.Helper()
	it, err := h.in.Service.App().Get(context.Background(), sku)
	if err != nil {
		h.t.Fatalf("item %s: %v", sku, err)
	}
	return it
}

func (h *harness) reservation(orderID string) (stock.Reservation, error) {
	r, _, err := h.in.Service.Store().Reservation(context.Background(), orderID)
	return r, err
}

func items(kv ...any) []events.Item {
	var out []events.Item
	for i := 0; i < len(kv); i += 2 {
		out = append(out, events.Item{SKU: kv[i].(string), Quantity: int64(kv[i+1].(int))})
	}
	return out
}

func createdData(orderID string, lines []events.Item) events.OrderCreatedData {
	return events.OrderCreatedData{OrderID: orderID, CustomerID: "c-1", Items: lines, PaymentToken: "tok_visa",
		CreatedAt: time.Date(2026, 11, 23, 10, 0, 0, 0, time.UTC)}
}

// created publishes orders.<id>.created as the order service does and
// returns its traceparent.
func (h *harness) created(orderID string, lines []events.Item) string {
	h.t.Helper()
	tp := trace.New().String()
	if _, err := h.pub.Publish(context.Background(), events.OrderCreated, orderID, tp, createdData(orderID, lines)); err != nil {
		h.t.Errorf("publish created %s: %v", orderID, err)
	}
	return tp
}

func (h *harness) cancelled(orderID, reason string) {
	h.t.Helper()
	d := events.OrderCancelledData{OrderID: orderID, CustomerID: "c-1", Reason: reason}
	if _, err := h.pub.Publish(context.Background(), events.OrderCancelled, orderID, trace.New().String(), d); err != nil {
		h.t.Errorf("publish cancelled %s: %v", orderID, err)
	}
}

func (h *harness) confirmed(orderID string, total int64, currency string) {
	h.t.Helper()
	d := events.OrderConfirmedData{OrderID: orderID, CustomerID: "c-1", TotalCents: total, Currency: currency}
	if _, err := h.pub.Publish(context.Background(), events.OrderConfirmed, orderID, trace.New().String(), d); err != nil {
		h.t.Errorf("publish confirmed %s: %v", orderID, err)
	}
}

// redeliver publishes an event again under a new Nats-Msg-Id and without
// the create-once expectation, as a producer retrying after a lost ack
// would: the stream stores it a second time and the consumer sees both.
func (h *harness) redeliver(t events.Type, orderID string, data any) {
	h.t.Helper()
	env, raw, err := h.pub.Build(t, orderID, trace.New().String(), data)
	if err != nil {
		h.t.Fatal(err)
	}
	subj, _ := events.Subject(t, orderID)
	msg := nats.NewMsg(subj)
	msg.Data = raw
	msg.Header.Set(events.HeaderTraceparent, env.TraceParent)
	if _, err := h.js.PublishMsg(context.Background(), msg, jetstream.WithMsgID(uuid.NewString())); err != nil {
		h.t.Fatal(err)
	}
}

// event waits for the inventory event of type t about orderID.
func (h *harness) event(t events.Type, orderID string) events.Envelope {
	h.t.Helper()
	subj, _ := events.Subject(t, orderID)
	s, err := h.js.Stream(context.Background(), events.StreamInventory)
	if err != nil {
		h.t.Fatal(err)
	}
	var env events.Envelope
	h.eventually(subj, func() (bool, string) {
		m, err := s.GetLastMsgForSubject(context.Background(), subj)
		if err != nil {
			return false, err.Error()
		}
		env, err = events.DefaultRegistry().Parse(m.Data)
		if err != nil {
			h.t.Fatalf("stored %s is invalid: %v", subj, err)
		}
		return true, ""
	})
	return env
}

// count returns how many inventory events match filter (e.g. inventory.*.reserved).
func (h *harness) count(filter string) int {
	h.t.Helper()
	s, err := h.js.Stream(context.Background(), events.StreamInventory)
	if err != nil {
		h.t.Fatal(err)
	}
	info, err := s.Info(context.Background(), jetstream.WithSubjectFilter(filter))
	if err != nil {
		h.t.Fatal(err)
	}
	n := 0
	for _, c := range info.State.Subjects {
		n += int(c)
	}
	return n
}

// settled waits until the consumer has acknowledged (or dead-lettered)
// everything on ORDERS: nothing pending, nothing awaiting an ack.
func (h *harness) settled() {
	h.t.Helper()
	h.eventually("orders consumer to settle", func() (bool, string) {
		c, err := h.js.Consumer(context.Background(), events.StreamOrders, consumer.Durable)
		if err != nil {
			return false, err.Error()
		}
		info, err := c.Info(context.Background())
		if err != nil {
			return false, err.Error()
		}
		s, _ := h.js.Stream(context.Background(), events.StreamOrders)
		sinfo, _ := s.Info(context.Background())
		return info.NumPending == 0 && info.NumAckPending == 0 && info.Delivered.Stream >= sinfo.State.LastSeq,
			fmt.Sprintf("pending=%d ack_pending=%d delivered=%d last=%d", info.NumPending, info.NumAckPending, info.Delivered.Stream, sinfo.State.LastSeq)
	})
}

// deadLetter waits for the dead letter of the ORDERS message at seq.
func (h *harness) deadLetter(seq uint64) *jetstream.RawStreamMsg {
	h.t.Helper()
	return natstest.DeadLetter(h.t, h.js, consumer.Durable, events.StreamOrders, seq)
}

func (h *harness) lastOrdersSeq() uint64 {
	h.t.Helper()
	s, err := h.js.Stream(context.Background(), events.StreamOrders)
	if err != nil {
		h.t.Fatal(err)
	}
	info, err := s.Info(context.Background())
	if err != nil {
		h.t.Fatal(err)
	}
	return info.State.LastSeq
}

func decode[T any](t *testing.T, env events.Envelope) T {
	t.Helper()
	var v T
	if err := env.DecodeData(&v); err != nil {
		t.Fatal(err)
	}
	return v
}

func jsonBody[T any](t *testing.T, body string) T {
	t.Helper()
	var v T
	if err := json.NewDecoder(bytes.NewReader([]byte(body))).Decode(&v); err != nil {
		t.Fatalf("decode %q: %v", body, err)
	}
	return v
}

func isNoReservation(err error) bool { return errors.Is(err, stock.ErrNoReservation) }
