package app_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest"

	"github.com/eventshop/order-service/internal/app"
	"github.com/eventshop/order-service/internal/order"
	"github.com/eventshop/order-service/internal/store"
	"github.com/eventshop/shared/events"
	"github.com/eventshop/shared/platform/natstest"
	"github.com/eventshop/shared/platform/trace"
)

// deciders is the order service's use cases over a real nats-server, run
// by hand (no consumer runs them): a test hands them the messages.
type deciders struct {
	t        *testing.T
	js       jetstream.JetStream
	orders   *store.Orders
	app      *app.App
	ord, inv *events.Publisher
	pay      *events.Publisher
	metrics  *prometheus.Registry
}

// newDeciders wires the app; opts are its options (its metrics are always
// on, registered with d.metrics; every order is past its deadline).
func newDeciders(t *testing.T, opts ...app.Option) *deciders {
	t.Helper()
	_, js := natstest.Connect(t, natstest.Start(t))
	ctx := context.Background()
	for _, name := range []string{events.StreamOrders, events.StreamInventory, events.StreamPayments} {
		if _, err := events.EnsureStream(ctx, js, name, events.StreamOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	kv, err := store.EnsureBucket(ctx, js, 1)
	if err != nil {
		t.Fatal(err)
	}
	orders, err := store.NewOrders(kv, js)
	if err != nil {
		t.Fatal(err)
	}
	d := &deciders{t: t, js: js, orders: orders}
	for _, p := range []struct {
		pub    **events.Publisher
		source string
	}{{&d.ord, "order-service"}, {&d.inv, "inventory-service"}, {&d.pay, "payment-service"}} {
		if *p.pub, err = events.NewPublisher(js, p.source); err != nil {
			t.Fatal(err)
		}
	}
	log := zaptest.NewLogger(t, zaptest.Level(zap.ErrorLevel))
	d.metrics = prometheus.NewRegistry()
	m := app.NewMetrics(d.metrics)
	if d.app, err = newApp(d.orders, d.ord, log, m, opts...); err != nil {
		t.Fatal(err)
	}
	return d
}

// newApp is the app over orders whose deadline has passed for every order
// here.
func newApp(orders app.Orders, pub app.Publisher, log *zap.Logger, m *app.Metrics, opts ...app.Option) (*app.App, error) {
	return app.New(orders, pub, log, append(opts, app.WithMetrics(m), app.WithDeadline(time.Millisecond))...)
}

// deliver hands the message to the app's handler of its event, as the
// order service's consumers do.
func deliver(ctx context.Context, a *app.App, msg jetstream.Msg) error {
	env, err := events.Decode(msg.Subject(), msg.Data())
	if err != nil {
		return err
	}
	switch env.Type {
	case events.OrderCreated:
		var data events.OrderCreatedData
		if err := env.DecodeData(&data); err != nil {
			return err
		}
		return a.OrderCreated(ctx, env, data)
	case events.PaymentSucceeded:
		var data events.PaymentSucceededData
		if err := env.DecodeData(&data); err != nil {
			return err
		}
		return a.PaymentSucceeded(ctx, env, data)
	case events.PaymentFailed:
		var data events.PaymentFailedData
		if err := env.DecodeData(&data); err != nil {
			return err
		}
		return a.PaymentFailed(ctx, env, data)
	}
	return fmt.Errorf("no handler of %s", env.Type)
}

func (d *deciders) publish(p *events.Publisher, t events.Type, id string, data any) {
	d.t.Helper()
	if _, err := p.Publish(context.Background(), t, id, trace.New().String(), data); err != nil {
		d.t.Fatal(err)
	}
}

// reserved places order id (a second ago) and reserves its stock, and
// returns its created event's stream sequence.
func (d *deciders) reserved(id string) uint64 {
	d.t.Helper()
	res, err := d.ord.Publish(context.Background(), events.OrderCreated, id, trace.New().String(), events.OrderCreatedData{
		OrderID: id, CustomerID: "c-42", Items: []events.Item{{SKU: "SKU-1", Quantity: 2}}, PaymentToken: "tok_visa",
		CreatedAt: time.Now().UTC().Add(-time.Second),
	})
	if err != nil {
		d.t.Fatal(err)
	}
	d.publish(d.inv, events.InventoryReserved, id, events.InventoryReservedData{
		OrderID:    id,
		Lines:      []events.PricedLine{{SKU: "SKU-1", Name: "Mug", Quantity: 2, UnitPriceCents: 1299, LineTotalCents: 2598}},
		TotalCents: 2598, Currency: "USD",
	})
	return res.Sequence
}

func (d *deciders) paid(id string) {
	d.t.Helper()
	d.publish(d.pay, events.PaymentSucceeded, id, events.PaymentSucceededData{OrderID: id, ChargeID: "ch_" + id, AmountCents: 2598, Currency: "USD"})
}

// msg fetches the last message on subject as a consumer would receive it.
func (d *deciders) msg(stream, subject string) jetstream.Msg {
	d.t.Helper()
	ctx := context.Background()
	c, err := d.js.OrderedConsumer(ctx, stream, jetstream.OrderedConsumerConfig{
		FilterSubjects: []string{subject}, DeliverPolicy: jetstream.DeliverLastPolicy,
	})
	if err != nil {
		d.t.Fatal(err)
	}
	m, err := c.Next(jetstream.FetchMaxWait(5 * time.Second))
	if err != nil {
		d.t.Fatalf("fetch %s: %v", subject, err)
	}
	return m
}

// finals returns the order's confirmed and cancelled events.
func (d *deciders) finals(id string) (confirmed, cancelled uint64) {
	d.t.Helper()
	s, err := d.js.Stream(context.Background(), events.StreamOrders)
	if err != nil {
		d.t.Fatal(err)
	}
	info, err := s.Info(context.Background(), jetstream.WithSubjectFilter("orders."+id+".*"))
	if err != nil {
		d.t.Fatal(err)
	}
	return info.State.Subjects["orders."+id+".confirmed"], info.State.Subjects["orders."+id+".cancelled"]
}

// get reads the order as GET /orders/<id> does.
func (d *deciders) get(id string) (order.Order, error) {
	d.t.Helper()
	return d.app.Get(context.Background(), id)
}

// TestRacingDecidersLeaveOneDecision: a payment success and the deadline
// decide the same order at the same moment, for many orders. Each order
// gets exactly one final event, both handlers acknowledge (the payment of
// an order the deadline cancelled is the payment service's to refund),
// and GET shows the decision that was stored.
func TestRacingDecidersLeaveOneDecision(t *testing.T) {
	d := newDeciders(t)
	const orders = 100
	type msgs struct{ created, paid jetstream.Msg }
	race := make(map[string]msgs, orders)
	for i := range orders {
		id := fmt.Sprintf("race-%d", i)
		d.reserved(id)
		d.paid(id)
		race[id] = msgs{d.msg(events.StreamOrders, "orders."+id+".created"), d.msg(events.StreamPayments, "payments."+id+".succeeded")}
	}
	ctx := context.Background()
	var (
		wg    sync.WaitGroup
		start = make(chan struct{})
		mu    sync.Mutex
		errs  []error
	)
	for id, m := range race {
		for _, handle := range []func() error{
			func() error { return deliver(ctx, d.app, m.paid) },
			func() error { return deliver(ctx, d.app, m.created) },
		} {
			wg.Go(func() {
				<-start
				if err := handle(); err != nil {
					mu.Lock()
					errs = append(errs, fmt.Errorf("%s: %w", id, err))
					mu.Unlock()
				}
			})
		}
	}
	close(start)
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		t.Fatalf("a decider did not acknowledge: %v", err)
	}
	won := map[string]int{}
	for id := range race {
		confirmed, cancelled := d.finals(id)
		if confirmed+cancelled != 1 {
			t.Errorf("order %s has %d confirmed and %d cancelled events, want one decision", id, confirmed, cancelled)
			continue
		}
		v, err := d.get(id)
		switch {
		case err != nil || !v.TotalKnown() || v.TotalCents != 2598 || len(v.Lines) != 1:
			t.Errorf("GET %s = %v %+v", id, err, v)
		case confirmed == 1 && v.Status != "CONFIRMED":
			t.Errorf("GET %s = %+v, but its decision is the confirmation", id, v)
		case cancelled == 1 && (v.Status != "CANCELLED" || v.CancelReason != "timeout"):
			t.Errorf("GET %s = %+v, but its decision is the cancellation for timeout", id, v)
		}
		won[string(v.Status)]++
	}
	t.Logf("decisions: %v", won)
	// Each decision observed once, by the decider that stored it: not by
	// the one it overtook.
	if n, _ := d.final(app.OutcomeConfirmed, ""); n != uint64(won["CONFIRMED"]) {
		t.Errorf("eventshop_order_final_seconds{confirmed} counts %d, want the %d confirmations stored", n, won["CONFIRMED"])
	}
	if n, _ := d.final(app.OutcomeCancelled, "timeout"); n != uint64(won["CANCELLED"]) {
		t.Errorf("eventshop_order_final_seconds{cancelled,timeout} counts %d, want the %d cancellations stored", n, won["CANCELLED"])
	}
}

// TestCrashAfterDecisionIsRecoveredByRedelivery: the decision is the only
// write; a handler that published it and died before acknowledging is
// redelivered, finds the order decided and acknowledges, publishing
// nothing more. So does every other decider of the order.
func TestCrashAfterDecisionIsRecoveredByRedelivery(t *testing.T) {
	d := newDeciders(t)
	id := "crashed-1"
	created := d.reserved(id)
	d.paid(id)
	// What the handler did before it died: the decision, after the
	// order's created event.
	if _, err := d.ord.PublishAfter(context.Background(), events.OrderConfirmed, id, trace.New().String(),
		events.OrderConfirmedData{OrderID: id, CustomerID: "c-42", TotalCents: 2598, Currency: "USD"}, created); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	for range 2 {
		if err := deliver(ctx, d.app, d.msg(events.StreamPayments, "payments."+id+".succeeded")); err != nil {
			t.Fatalf("redelivered payment = %v, want it acknowledged", err)
		}
	}
	if err := deliver(ctx, d.app, d.msg(events.StreamOrders, "orders."+id+".created")); err != nil {
		t.Fatalf("the deadline of a decided order = %v, want it acknowledged", err)
	}
	if confirmed, cancelled := d.finals(id); confirmed != 1 || cancelled != 0 {
		t.Fatalf("%d confirmed and %d cancelled events, want the one confirmation", confirmed, cancelled)
	}
	if v, err := d.get(id); err != nil || v.Status != "CONFIRMED" || v.TotalCents != 2598 {
		t.Fatalf("GET = %v %+v", err, v)
	}
	// The decision was stored before these handlers ran: none of them
	// decided it.
	if n, _ := d.final(app.OutcomeConfirmed, ""); n != 0 {
		t.Fatalf("eventshop_order_final_seconds counts %d, want 0: no handler here stored the decision", n)
	}
}

// final returns the count and sum of eventshop_order_final_seconds with
// the labels outcome and reason.
func (d *deciders) final(outcome, reason string) (uint64, float64) {
	d.t.Helper()
	mfs, err := d.metrics.Gather()
	if err != nil {
		d.t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != "eventshop_order_final_seconds" {
			continue
		}
		for _, m := range mf.GetMetric() {
			labels := map[string]string{}
			for _, l := range m.GetLabel() {
				labels[l.GetName()] = l.GetValue()
			}
			if labels["outcome"] == outcome && labels["reason"] == reason {
				return m.GetHistogram().GetSampleCount(), m.GetHistogram().GetSampleSum()
			}
		}
	}
	return 0, 0
}

// staleStates is the order store as a decider sees it that read the
// order before another decider published after it: its next read of an
// order (Current or Undecided) is the one given.
type staleStates struct {
	*store.Orders
	mu     sync.Mutex
	states map[string]app.State
}

// stale returns the order's given state, once.
func (s *staleStates) stale(orderID string) (app.State, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	st, ok := s.states[orderID]
	delete(s.states, orderID)
	return st, ok
}

func (s *staleStates) Current(ctx context.Context, orderID string) (app.State, error) {
	if st, ok := s.stale(orderID); ok {
		return st, nil
	}
	return s.Orders.Current(ctx, orderID)
}

func (s *staleStates) Undecided(ctx context.Context, orderID string) (app.State, bool, error) {
	if st, ok := s.stale(orderID); ok {
		return st, true, nil
	}
	return s.Orders.Undecided(ctx, orderID)
}

// TestDecisionObservedOnceByWhoStoredIt: the time from created_at to the
// decision is observed by the decider whose final event was stored, with
// the decision's outcome and reason, and by nobody else: not by a
// redelivery of the same payment, not by a decider that read the order
// before the decision and publishes the same decision (a duplicate) or
// another one (overtaken).
func TestDecisionObservedOnceByWhoStoredIt(t *testing.T) {
	var now time.Time
	clock := func() time.Time { return now }
	d := newDeciders(t, app.WithClock(clock))
	ctx := context.Background()

	// late is a second decider, whose store gives it the order as read
	// before the first decider decided it.
	stale := &staleStates{Orders: d.orders, states: map[string]app.State{}}
	log := zaptest.NewLogger(t, zaptest.Level(zap.ErrorLevel))
	reg := prometheus.NewRegistry()
	lateMetrics := app.NewMetrics(reg)
	late, err := newApp(stale, d.ord, log, lateMetrics, app.WithClock(clock))
	if err != nil {
		t.Fatal(err)
	}

	id := "observed-1"
	now = time.Now().UTC()
	d.reserved(id) // placed a second before now
	d.paid(id)
	read, undecided, err := d.orders.Undecided(ctx, id)
	if err != nil || !undecided {
		t.Fatalf("order %+v, %v: want its last event the created one", read, err)
	}
	now = now.Add(1500 * time.Millisecond) // decided 2.5 s after it was placed
	paid := d.msg(events.StreamPayments, "payments."+id+".succeeded")
	if err := deliver(ctx, d.app, paid); err != nil {
		t.Fatal(err)
	}
	n, sum := d.final(app.OutcomeConfirmed, "")
	if n != 1 || sum < 2.4 || sum > 2.6 {
		t.Fatalf("after the confirmation: %d observations summing %.3f s, want 1 of 2.5 s", n, sum)
	}
	// The same payment again (a redelivery), to the same decider.
	if err := deliver(ctx, d.app, paid); err != nil {
		t.Fatal(err)
	}
	// The same payment to a decider that read the order before the
	// confirmation: its publish finds the same decision (a duplicate).
	stale.states[id] = read
	if err := deliver(ctx, late, paid); err != nil {
		t.Fatal(err)
	}
	// The deadline of a decider that read the order before: its
	// cancellation is overtaken by the confirmation.
	stale.states[id] = read
	if err := deliver(ctx, late, d.msg(events.StreamOrders, "orders."+id+".created")); err != nil {
		t.Fatal(err)
	}
	if confirmed, cancelled := d.finals(id); confirmed != 1 || cancelled != 0 {
		t.Fatalf("%d confirmed and %d cancelled events, want the one confirmation", confirmed, cancelled)
	}
	if n, _ := d.final(app.OutcomeConfirmed, ""); n != 1 {
		t.Errorf("the decider that stored the confirmation observed it %d times, want once", n)
	}
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			if c := m.GetHistogram().GetSampleCount(); c != 0 {
				t.Errorf("the late deciders observed %d decisions (%v), want none: they stored none", c, m.GetLabel())
			}
		}
	}

	// A cancellation is observed with its reason.
	declined := "observed-2"
	d.reserved(declined)
	d.publish(d.pay, events.PaymentFailed, declined, events.PaymentFailedData{
		OrderID: declined, Reason: "card_declined", DeclineCode: "card_declined", AmountCents: 2598, Currency: "USD",
	})
	if err := deliver(ctx, d.app, d.msg(events.StreamPayments, "payments."+declined+".failed")); err != nil {
		t.Fatal(err)
	}
	if n, _ := d.final(app.OutcomeCancelled, "payment_declined"); n != 1 {
		t.Fatalf("a declined order: %d observations with reason payment_declined, want 1", n)
	}
}
