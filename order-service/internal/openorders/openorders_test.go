package openorders_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"

	"github.com/eventshop/order-service/internal/openorders"
	"github.com/eventshop/shared/events"
	"github.com/eventshop/shared/platform/natstest"
	"github.com/eventshop/shared/platform/trace"
)

const durable = "order-deadlines"

var t0 = time.Date(2026, 11, 23, 10, 0, 0, 0, time.UTC)

// gauge reads a gauge registered with reg.
func gauge(t *testing.T, reg *prometheus.Registry, name string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == name && len(mf.GetMetric()) == 1 {
			return mf.GetMetric()[0].GetGauge().GetValue()
		}
	}
	t.Fatalf("no gauge %s", name)
	return 0
}

// deadlineConsumer makes the deadline consumer of the created events, as
// the order service's runner does (explicit acks, created events only).
func deadlineConsumer(t *testing.T, js jetstream.JetStream) jetstream.Consumer {
	t.Helper()
	c, err := js.CreateOrUpdateConsumer(context.Background(), events.StreamOrders, jetstream.ConsumerConfig{
		Durable: durable, AckPolicy: jetstream.AckExplicitPolicy, FilterSubject: events.FilterSubject(events.OrderCreated),
	})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func place(t *testing.T, pub *events.Publisher, id string, at time.Time) {
	t.Helper()
	if _, err := pub.Publish(context.Background(), events.OrderCreated, id, trace.New().String(), events.OrderCreatedData{
		OrderID: id, CustomerID: "c-42", Items: []events.Item{{SKU: "SKU-1", Quantity: 1}}, PaymentToken: "tok_visa", CreatedAt: at,
	}); err != nil {
		t.Fatal(err)
	}
}

// TestOldestOpenOrderFollowsTheDeadlineConsumer: the gauge is the age of
// the first created event the deadline consumer has not acknowledged, by
// its created_at: delivered or not, whatever was acknowledged after it,
// skipping the other events of the stream; 0 once every one is.
func TestOldestOpenOrderFollowsTheDeadlineConsumer(t *testing.T) {
	t.Parallel()
	_, js := natstest.Connect(t, natstest.Start(t))
	ctx := context.Background()
	if _, err := events.EnsureStream(ctx, js, events.StreamOrders, events.StreamOptions{}); err != nil {
		t.Fatal(err)
	}
	pub, err := events.NewPublisher(js, "order-service")
	if err != nil {
		t.Fatal(err)
	}
	cons := deadlineConsumer(t, js)
	now := t0
	reg := prometheus.NewRegistry()
	w, err := openorders.New(js, durable, 2*time.Minute, zap.NewNop(), reg,
		openorders.WithClock(func() time.Time { return now }), openorders.WithInterval(5*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	oldest := func() float64 {
		t.Helper()
		if err := w.Poll(ctx); err != nil {
			t.Fatal(err)
		}
		return gauge(t, reg, "eventshop_order_oldest_open_age_seconds")
	}
	if got := gauge(t, reg, "eventshop_order_deadline_seconds"); got != 120 {
		t.Errorf("deadline gauge %v, want ORDER_DEADLINE's 120", got)
	}
	if got := oldest(); got != 0 {
		t.Fatalf("no order yet: oldest open age %v, want 0", got)
	}

	// a placed at t0, b 5 s later, and between them a's decision (not a
	// created event: the deadline consumer never sees it).
	place(t, pub, "a", t0)
	if _, err := pub.Publish(ctx, events.OrderConfirmed, "a", trace.New().String(),
		events.OrderConfirmedData{OrderID: "a", CustomerID: "c-42", TotalCents: 100, Currency: "USD"}); err != nil {
		t.Fatal(err)
	}
	place(t, pub, "b", t0.Add(5*time.Second))
	now = t0.Add(30 * time.Second)
	if got := oldest(); got != 30 {
		t.Fatalf("a and b not delivered yet: oldest open age %v, want a's 30", got)
	}
	now = t0.Add(40 * time.Second)
	if got := oldest(); got != 40 {
		t.Fatalf("10 s later: oldest open age %v, want 40 (it grows)", got)
	}

	batch, err := cons.Fetch(2, jetstream.FetchMaxWait(5*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	var msgs []jetstream.Msg
	for m := range batch.Messages() {
		msgs = append(msgs, m)
	}
	if len(msgs) != 2 || msgs[0].Subject() != "orders.a.created" || msgs[1].Subject() != "orders.b.created" {
		t.Fatalf("fetched %d messages, want a's and b's created events", len(msgs))
	}
	// b final first: a still holds the floor.
	if err := msgs[1].DoubleAck(ctx); err != nil {
		t.Fatal(err)
	}
	if got := oldest(); got != 40 {
		t.Fatalf("b acknowledged, a not: oldest open age %v, want a's 40", got)
	}
	// a final, b was already: nothing open.
	if err := msgs[0].DoubleAck(ctx); err != nil {
		t.Fatal(err)
	}
	if got := oldest(); got != 0 {
		t.Fatalf("every order acknowledged: oldest open age %v, want 0", got)
	}

	// c placed and delivered, not acknowledged: its age, from its created_at.
	place(t, pub, "c", t0.Add(35*time.Second))
	if _, err := cons.Fetch(1, jetstream.FetchMaxWait(5*time.Second)); err != nil {
		t.Fatal(err)
	}
	if got := oldest(); got != 5 {
		t.Fatalf("c delivered, not acknowledged: oldest open age %v, want 5", got)
	}
}

// TestOldestOpenOrderWithoutItsConsumer: before the deadline consumer
// exists, a poll fails and says so; the gauge keeps its value.
func TestOldestOpenOrderWithoutItsConsumer(t *testing.T) {
	t.Parallel()
	_, js := natstest.Connect(t, natstest.Start(t))
	if _, err := events.EnsureStream(context.Background(), js, events.StreamOrders, events.StreamOptions{}); err != nil {
		t.Fatal(err)
	}
	w, err := openorders.New(js, durable, time.Minute, zap.NewNop(), prometheus.NewRegistry())
	if err != nil {
		t.Fatal(err)
	}
	if err := w.Poll(context.Background()); !errors.Is(err, jetstream.ErrConsumerNotFound) {
		t.Fatalf("poll without the consumer = %v, want ErrConsumerNotFound", err)
	}
}

// TestOrderServiceMayReadItsOldestOpenOrder polls as the order service's
// NATS user under the production permissions (deployments/nats/auth.conf).
func TestOrderServiceMayReadItsOldestOpenOrder(t *testing.T) {
	s := natstest.StartAuth(t)
	_, admin := s.ConnectAs(t, "admin")
	ctx := context.Background()
	if _, err := events.EnsureStream(ctx, admin, events.StreamOrders, events.StreamOptions{}); err != nil {
		t.Fatal(err)
	}
	deadlineConsumer(t, admin)
	_, js := s.ConnectAs(t, "order-service")
	pub, err := events.NewPublisher(js, "order-service")
	if err != nil {
		t.Fatal(err)
	}
	place(t, pub, "a", t0)
	reg := prometheus.NewRegistry()
	w, err := openorders.New(js, durable, time.Minute, zap.NewNop(), reg,
		openorders.WithClock(func() time.Time { return t0.Add(time.Minute) }), openorders.WithInterval(2*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	if err := w.Poll(ctx); err != nil {
		t.Fatalf("poll as order-service: %v", err)
	}
	if got := gauge(t, reg, "eventshop_order_oldest_open_age_seconds"); got != 60 {
		t.Fatalf("oldest open age %v, want 60", got)
	}
}

func TestNewRefuses(t *testing.T) {
	t.Parallel()
	_, js := natstest.Connect(t, natstest.Start(t))
	tests := []struct {
		name     string
		durable  string
		deadline time.Duration
		opt      openorders.Option
	}{
		{name: "no durable", deadline: time.Minute},
		{name: "no deadline", durable: durable},
		{name: "zero interval", durable: durable, deadline: time.Minute, opt: openorders.WithInterval(0)},
		{name: "nil clock", durable: durable, deadline: time.Minute, opt: openorders.WithClock(nil)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var opts []openorders.Option
			if tt.opt != nil {
				opts = append(opts, tt.opt)
			}
			if _, err := openorders.New(js, tt.durable, tt.deadline, zap.NewNop(), prometheus.NewRegistry(), opts...); !errors.Is(err, openorders.ErrInvalidOption) {
				t.Fatalf("err = %v, want ErrInvalidOption", err)
			}
		})
	}
}
