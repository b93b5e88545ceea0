package app

import (
	"context"
	"errors"
	"fmt"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest"

	"github.com/eventshop/payment-service/internal/gateway"
	"github.com/eventshop/payment-service/internal/gatewaysim"
	"github.com/eventshop/payment-service/internal/payment"
	"github.com/eventshop/payment-service/internal/store"
	"github.com/eventshop/shared/events"
	platformmetrics "github.com/eventshop/shared/platform/metrics"
	"github.com/eventshop/shared/platform/natstest"
	"github.com/eventshop/shared/platform/trace"
)

// rig is the use cases' world: a real NATS server (PAYMENTS, ORDERS, the
// payments bucket) and the real gateway simulator behind the real client.
type rig struct {
	t        *testing.T
	js       jetstream.JetStream
	sim      *gatewaysim.Simulator
	gw       *gateway.Client
	payments *store.Payments
	pub      *events.Publisher
}

const apiKey = "app-test-key"

func newRig(t *testing.T) *rig {
	t.Helper()
	ctx := context.Background()
	_, js := natstest.Connect(t, natstest.Start(t))
	for _, s := range []string{events.StreamOrders, events.StreamPayments} {
		if _, err := events.EnsureStream(ctx, js, s, events.StreamOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	payments, err := store.EnsurePayments(ctx, js, 1)
	if err != nil {
		t.Fatal(err)
	}
	sim, err := gatewaysim.New()
	if err != nil {
		t.Fatal(err)
	}
	srv, err := gatewaysim.NewServer("127.0.0.1:0", sim, gatewaysim.Credentials{APIKey: apiKey, AdminToken: "admin-token-for-tests-0123456789"},
		zap.NewNop(), platformmetrics.NewRegistry(gatewaysim.ServiceName))
	if err != nil {
		t.Fatal(err)
	}
	hs := httptest.NewServer(srv.Engine)
	t.Cleanup(hs.Close)
	gw, err := gateway.New(hs.URL, apiKey, gateway.WithTimeout(5*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	pub, err := events.NewPublisher(js, "payment-service")
	if err != nil {
		t.Fatal(err)
	}
	return &rig{t: t, js: js, sim: sim, gw: gw, payments: payments, pub: pub}
}

// app returns an App instance (as in one process) over gw.
func (r *rig) app(gw Gateway) *App {
	r.t.Helper()
	p, err := New(r.payments, store.NewPaymentEvents(r.js), store.NewOrderTokens(r.js), store.NewOrderHistory(r.js), gw, r.pub,
		zaptest.NewLogger(r.t, zaptest.Level(zap.WarnLevel)))
	if err != nil {
		r.t.Fatal(err)
	}
	return p
}

// created publishes orders.<id>.created with the card token, as the order
// service does.
func (r *rig) created(orderID, token string) {
	r.t.Helper()
	orders, err := events.NewPublisher(r.js, "order-service")
	if err != nil {
		r.t.Fatal(err)
	}
	if _, err := orders.Publish(context.Background(), events.OrderCreated, orderID, trace.New().String(), events.OrderCreatedData{
		OrderID: orderID, CustomerID: "c-1", Items: []events.Item{{SKU: "MUG-1", Quantity: 1}}, PaymentToken: token, CreatedAt: time.Now().UTC(),
	}); err != nil {
		r.t.Fatal(err)
	}
}

// kvWrites is how many writes the payments bucket has stored in all.
func (r *rig) kvWrites() uint64 {
	r.t.Helper()
	s, err := r.js.Stream(context.Background(), "KV_"+store.PaymentsBucket)
	if err != nil {
		r.t.Fatal(err)
	}
	info, err := s.Info(context.Background())
	if err != nil {
		r.t.Fatal(err)
	}
	return info.State.LastSeq
}

// paid is what a payment left behind: its events by verb (with the stream
// sequence of the last of each), and the gateway's view of the order.
type paid struct {
	events map[string]uint64 // verb -> count
	seq    map[string]uint64 // verb -> stream sequence of the last one
	gw     gatewaysim.OrderCharges
}

func (r *rig) paid(orderID string) paid {
	r.t.Helper()
	ctx := context.Background()
	s, err := r.js.Stream(ctx, events.StreamPayments)
	if err != nil {
		r.t.Fatal(err)
	}
	info, err := s.Info(ctx, jetstream.WithSubjectFilter("payments."+orderID+".*"))
	if err != nil {
		r.t.Fatal(err)
	}
	p := paid{events: map[string]uint64{}, seq: map[string]uint64{}, gw: r.sim.Charges(orderID)}
	for _, verb := range []string{"succeeded", "failed", "refunded"} {
		subject := "payments." + orderID + "." + verb
		if n := info.State.Subjects[subject]; n > 0 {
			p.events[verb] = n
			msg, err := s.GetLastMsgForSubject(ctx, subject)
			if err != nil {
				r.t.Fatal(err)
			}
			p.seq[verb] = msg.Sequence
		}
	}
	return p
}

// pausingGateway is the real gateway client, holding the caller after the
// gateway answered a charge or a refund until the test lets it go on: a
// process that is slow (or dies) between the gateway and its event.
type pausingGateway struct {
	Gateway
	afterCharge, afterRefund func()
}

func (g pausingGateway) Charge(ctx context.Context, req payment.ChargeRequest) (payment.ChargeResult, error) {
	res, err := g.Gateway.Charge(ctx, req)
	if g.afterCharge != nil {
		g.afterCharge()
	}
	return res, err
}

func (g pausingGateway) Refund(ctx context.Context, req payment.RefundRequest) (payment.RefundResult, error) {
	res, err := g.Gateway.Refund(ctx, req)
	if g.afterRefund != nil {
		g.afterRefund()
	}
	return res, err
}

// pause returns a hook that signals reached and waits for resume.
func pause() (hook func(), reached, resume chan struct{}) {
	reached, resume = make(chan struct{}), make(chan struct{})
	var once sync.Once
	return func() {
		once.Do(func() {
			close(reached)
			<-resume
		})
	}, reached, resume
}

const amount = 2598

func reservedOrder(orderID string, cents int64) request {
	return request{OrderID: orderID, AmountCents: cents, Currency: "USD", TraceParent: trace.New().String()}
}

func cancelledOrder(orderID string) cancellation {
	return cancellation{OrderID: orderID, Reason: events.ReasonTimeout, TraceParent: trace.New().String()}
}

type result struct {
	rec payment.Record
	err error
}

// TestCancellationSettlesFirst: the charge path has charged but not yet
// announced (slow, or about to die) when the order is cancelled. The
// cancellation settles the same charge (a replay), refunds it and publishes
// the refund as the order's first payment event; the charge path then
// loses its publish, reads the refund and announces nothing. One charge,
// one refund, one event, one write to the bucket, whatever is repeated.
func TestCancellationSettlesFirst(t *testing.T) {
	r := newRig(t)
	ctx := context.Background()
	orderID := "o-cancel-first"
	r.created(orderID, gatewaysim.TokenVisa)
	hook, charged, resume := pause()
	slow := r.app(pausingGateway{Gateway: r.gw, afterCharge: hook})
	other := r.app(r.gw)

	done := make(chan result, 1)
	go func() {
		rec, err := slow.process(ctx, reservedOrder(orderID, amount))
		done <- result{rec, err}
	}()
	<-charged
	rec, err := other.cancel(ctx, cancelledOrder(orderID))
	if err != nil || rec.Status != payment.StatusRefunded {
		t.Fatalf("Cancel = %+v, %v; want refunded", rec, err)
	}
	close(resume)
	res := <-done
	if res.err != nil || res.rec.Status != payment.StatusRefunded || res.rec.RefundID != rec.RefundID {
		t.Fatalf("the charge path after the cancellation = %+v, %v; want the refund %s read back", res.rec, res.err, rec.RefundID)
	}
	// Every delivery again, on either process: nothing moves.
	for _, p := range []*App{slow, other} {
		if got, err := p.cancel(ctx, cancelledOrder(orderID)); err != nil || got.Status != payment.StatusRefunded {
			t.Fatalf("repeated Cancel = %+v, %v", got, err)
		}
		if got, err := p.process(ctx, reservedOrder(orderID, amount)); err != nil || got.Status != payment.StatusRefunded {
			t.Fatalf("repeated Process = %+v, %v", got, err)
		}
	}
	got := r.paid(orderID)
	if got.gw.Succeeded != 1 || got.gw.Refunded != 1 || len(got.gw.Charges) != 1 || got.gw.Charges[0].RefundID != rec.RefundID {
		t.Fatalf("gateway = %+v, want one charge refunded once by %s", got.gw, rec.RefundID)
	}
	if want := map[string]uint64{"refunded": 1}; fmt.Sprint(got.events) != fmt.Sprint(want) {
		t.Fatalf("payment events = %v, want %v (a charge refunded before it was announced is never announced)", got.events, want)
	}
	if n := r.kvWrites(); n != 1 {
		t.Fatalf("%d writes to the payments bucket, want 1 (the charging intent)", n)
	}
	if view, err := other.Get(ctx, orderID); err != nil || view.Status != payment.StatusRefunded || view.RefundID != rec.RefundID {
		t.Fatalf("Get = %+v, %v; want refunded", view, err)
	}
}

// TestChargeAnnouncedFirstRefundFollows: the cancellation has refunded but
// not yet announced when the charge path announces the charge. The refund
// then follows the succeeded event: one charge, one refund, succeeded then
// refunded, each once.
func TestChargeAnnouncedFirstRefundFollows(t *testing.T) {
	r := newRig(t)
	ctx := context.Background()
	orderID := "o-charge-first"
	r.created(orderID, gatewaysim.TokenVisa)
	chargeHook, charged, chargeResume := pause()
	refundHook, refunded, refundResume := pause()
	payer := r.app(pausingGateway{Gateway: r.gw, afterCharge: chargeHook})
	canceller := r.app(pausingGateway{Gateway: r.gw, afterRefund: refundHook})

	paying := make(chan result, 1)
	go func() {
		rec, err := payer.process(ctx, reservedOrder(orderID, amount))
		paying <- result{rec, err}
	}()
	<-charged // the charging record exists, the charge is made
	cancelling := make(chan result, 1)
	go func() {
		rec, err := canceller.cancel(ctx, cancelledOrder(orderID))
		cancelling <- result{rec, err}
	}()
	<-refunded // the cancellation has settled and refunded, not announced
	close(chargeResume)
	if p := <-paying; p.err != nil || p.rec.Status != payment.StatusSucceeded {
		t.Fatalf("Process = %+v, %v; want succeeded (announced first)", p.rec, p.err)
	}
	close(refundResume)
	c := <-cancelling
	if c.err != nil || c.rec.Status != payment.StatusRefunded {
		t.Fatalf("Cancel = %+v, %v; want refunded", c.rec, c.err)
	}
	got := r.paid(orderID)
	if got.gw.Succeeded != 1 || got.gw.Refunded != 1 || len(got.gw.Charges) != 1 {
		t.Fatalf("gateway = %+v, want one charge refunded once", got.gw)
	}
	if got.events["succeeded"] != 1 || got.events["refunded"] != 1 || len(got.events) != 2 || got.seq["refunded"] < got.seq["succeeded"] {
		t.Fatalf("payment events = %v at %v, want succeeded then refunded, once each", got.events, got.seq)
	}
	if n := r.kvWrites(); n != 1 {
		t.Fatalf("%d writes to the payments bucket, want 1", n)
	}
}

// TestRacingDeliveriesPublishOneOutcome: the same reservation delivered
// to two processes eight times at once is charged once and announced once,
// and every delivery answers the same outcome.
func TestRacingDeliveriesPublishOneOutcome(t *testing.T) {
	tests := []struct {
		name     string
		token    string
		cents    int64
		want     payment.Status
		wantPaid int // successful charges at the gateway
	}{
		{name: "charged", token: gatewaysim.TokenVisa, cents: amount, want: payment.StatusSucceeded, wantPaid: 1},
		{name: "declined", token: gatewaysim.TokenDeclined, cents: amount, want: payment.StatusFailed},
		{name: "nothing to charge", token: gatewaysim.TokenVisa, cents: 0, want: payment.StatusSucceeded},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			r := newRig(t)
			orderID := "o-race"
			r.created(orderID, tt.token)
			procs := []*App{r.app(r.gw), r.app(r.gw)}
			results := make([]result, 8)
			var wg sync.WaitGroup
			for i := range results {
				wg.Go(func() {
					rec, err := procs[i%2].process(context.Background(), reservedOrder(orderID, tt.cents))
					results[i] = result{rec, err}
				})
			}
			wg.Wait()
			for i, res := range results {
				if res.err != nil || res.rec.Status != tt.want || res.rec.ChargeID != results[0].rec.ChargeID {
					t.Fatalf("delivery %d = %+v, %v; want %s with charge %s", i, res.rec, res.err, tt.want, results[0].rec.ChargeID)
				}
			}
			got := r.paid(orderID)
			if want := map[string]uint64{string(tt.want): 1}; fmt.Sprint(got.events) != fmt.Sprint(want) {
				t.Fatalf("payment events = %v, want %v", got.events, want)
			}
			if got.gw.Succeeded != tt.wantPaid {
				t.Fatalf("gateway = %+v, want %d successful charges", got.gw, tt.wantPaid)
			}
			if n := r.kvWrites(); n != 1 {
				t.Fatalf("%d writes to the payments bucket, want 1", n)
			}
		})
	}
}

// TestPaymentAndCancellationRace: deliveries of an order's reservation and
// of its cancellation all at once, on two processes, for many orders. The
// order ends charged nothing: voided (no charge, no event), or charged once
// and refunded once, with one refunded event and never a failed one.
func TestPaymentAndCancellationRace(t *testing.T) {
	r := newRig(t)
	ctx := context.Background()
	procs := []*App{r.app(r.gw), r.app(r.gw)}
	for n := range 12 {
		orderID := fmt.Sprintf("o-mixed-%d", n)
		r.created(orderID, gatewaysim.TokenVisa)
		var wg sync.WaitGroup
		errs := make(chan error, 8)
		for i := range 8 {
			wg.Go(func() {
				var err error
				if i%2 == 0 {
					_, err = procs[i/2%2].process(ctx, reservedOrder(orderID, amount))
				} else {
					_, err = procs[i/2%2].cancel(ctx, cancelledOrder(orderID))
				}
				errs <- err
			})
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			if err != nil {
				t.Fatalf("order %s: %v", orderID, err)
			}
		}
		got := r.paid(orderID)
		switch {
		case len(got.gw.Charges) == 0 && len(got.events) == 0:
			if rec, err := procs[0].Get(ctx, orderID); err != nil || rec.Status != payment.StatusVoid {
				t.Fatalf("order %s: nothing charged, record %+v, %v; want void", orderID, rec, err)
			}
		case got.gw.Succeeded == 1 && got.gw.Refunded == 1 && len(got.gw.Charges) == 1 &&
			got.events["refunded"] == 1 && got.events["failed"] == 0 && got.events["succeeded"] <= 1:
			if got.events["succeeded"] == 1 && got.seq["refunded"] < got.seq["succeeded"] {
				t.Fatalf("order %s: refunded before succeeded: %v", orderID, got.seq)
			}
			if rec, err := procs[1].Get(ctx, orderID); err != nil || rec.Status != payment.StatusRefunded {
				t.Fatalf("order %s: record %+v, %v; want refunded", orderID, rec, err)
			}
		default:
			t.Fatalf("order %s: gateway %+v, events %v: want voided, or charged and refunded once", orderID, got.gw, got.events)
		}
	}
	if n, orders := r.kvWrites(), uint64(12); n != orders {
		t.Fatalf("%d writes to the payments bucket for %d orders, want one each", n, orders)
	}
}

// TestEarlierRecordsStayReadable: records an earlier version wrote with
// the outcome in them are still followed: re-announced create-once, a
// succeeded one refunded on cancellation.
func TestEarlierRecordsStayReadable(t *testing.T) {
	r := newRig(t)
	ctx := context.Background()
	p := r.app(r.gw)
	orderID := "o-earlier"
	r.created(orderID, gatewaysim.TokenVisa)
	charge, err := r.gw.Charge(ctx, payment.ChargeRequest{OrderID: orderID, AmountCents: amount, Currency: "USD",
		Token: gatewaysim.TokenVisa, IdempotencyKey: "pay_EARLIER"})
	if err != nil {
		t.Fatal(err)
	}
	old := payment.NewRecord(payment.ChargeRequest{OrderID: orderID, AmountCents: amount, Currency: "USD", IdempotencyKey: "pay_EARLIER"}, charge, time.Now())
	if _, err := r.payments.Create(ctx, old); err != nil {
		t.Fatal(err)
	}
	// The earlier version died before announcing: the redelivery does.
	if rec, err := p.process(ctx, reservedOrder(orderID, amount)); err != nil || rec.Status != payment.StatusSucceeded || rec.ChargeID != charge.ChargeID {
		t.Fatalf("Process = %+v, %v", rec, err)
	}
	if rec, err := p.Get(ctx, orderID); err != nil || rec.Status != payment.StatusSucceeded {
		t.Fatalf("Get = %+v, %v", rec, err)
	}
	for range 2 {
		if rec, err := p.cancel(ctx, cancelledOrder(orderID)); err != nil || rec.Status != payment.StatusRefunded {
			t.Fatalf("Cancel = %+v, %v", rec, err)
		}
	}
	got := r.paid(orderID)
	if got.gw.Succeeded != 1 || got.gw.Refunded != 1 || got.events["succeeded"] != 1 || got.events["refunded"] != 1 {
		t.Fatalf("gateway %+v, events %v: want one charge refunded once, each announced once", got.gw, got.events)
	}
	if rec, err := p.Get(ctx, orderID); err != nil || rec.Status != payment.StatusRefunded {
		t.Fatalf("Get = %+v, %v", rec, err)
	}
}

// TestForeignOutcomeIsAConflict: a payment event for another amount on the
// order's subjects is not this payment's outcome: refused as a conflict,
// not believed.
func TestForeignOutcomeIsAConflict(t *testing.T) {
	r := newRig(t)
	ctx := context.Background()
	p := r.app(r.gw)
	orderID := "o-foreign"
	r.created(orderID, gatewaysim.TokenVisa)
	if _, err := r.pub.Publish(ctx, events.PaymentSucceeded, orderID, trace.New().String(),
		events.PaymentSucceededData{OrderID: orderID, ChargeID: "ch_forged", AmountCents: 1, Currency: "USD"}); err != nil {
		t.Fatal(err)
	}
	for i := range 2 { // the first delivery, then one that reads the event first
		if _, err := p.process(ctx, reservedOrder(orderID, amount)); !errors.Is(err, events.ErrConflictingDuplicate) {
			t.Fatalf("Process %d err = %v, want ErrConflictingDuplicate", i, err)
		}
	}
	if _, err := p.Get(ctx, orderID); !errors.Is(err, events.ErrConflictingDuplicate) {
		t.Fatalf("Get err = %v, want ErrConflictingDuplicate", err)
	}
}

// TestACopyOfTheChargeAfterItsRefund: a copy of the succeeded event stored
// after the refund (a replayed dead letter, republished under another
// message id) does not make the payment charged again: it reads as
// refunded, and a redelivered cancellation refunds nothing more.
func TestACopyOfTheChargeAfterItsRefund(t *testing.T) {
	r := newRig(t)
	ctx := context.Background()
	orderID := "o-copied-charge"
	r.created(orderID, gatewaysim.TokenVisa)
	p := r.app(r.gw)
	if rec, err := p.process(ctx, reservedOrder(orderID, amount)); err != nil || rec.Status != payment.StatusSucceeded {
		t.Fatalf("Process = %+v, %v; want succeeded", rec, err)
	}
	if rec, err := p.cancel(ctx, cancelledOrder(orderID)); err != nil || rec.Status != payment.StatusRefunded {
		t.Fatalf("Cancel = %+v, %v; want refunded", rec, err)
	}
	s, err := r.js.Stream(ctx, events.StreamPayments)
	if err != nil {
		t.Fatal(err)
	}
	orig, err := s.GetLastMsgForSubject(ctx, "payments."+orderID+".succeeded")
	if err != nil {
		t.Fatal(err)
	}
	cp := nats.NewMsg(orig.Subject)
	cp.Data = orig.Data
	if _, err := r.js.PublishMsg(ctx, cp, jetstream.WithMsgID("replayed-copy-1")); err != nil {
		t.Fatal(err)
	}

	if rec, err := p.Get(ctx, orderID); err != nil || rec.Status != payment.StatusRefunded {
		t.Fatalf("Get after the copy = %+v, %v; want refunded", rec, err)
	}
	if rec, err := p.cancel(ctx, cancelledOrder(orderID)); err != nil || rec.Status != payment.StatusRefunded {
		t.Fatalf("redelivered Cancel = %+v, %v; want refunded", rec, err)
	}
	if rec, err := p.process(ctx, reservedOrder(orderID, amount)); err != nil || rec.Status != payment.StatusRefunded {
		t.Fatalf("redelivered Process = %+v, %v; want refunded", rec, err)
	}
	got := r.paid(orderID)
	if got.events["refunded"] != 1 || got.events["succeeded"] != 2 {
		t.Fatalf("payment events = %v, want the succeeded event and its copy, one refund", got.events)
	}
	if got.gw.Succeeded != 1 || got.gw.Refunded != 1 {
		t.Fatalf("gateway = %+v, want one charge refunded once", got.gw)
	}
}
