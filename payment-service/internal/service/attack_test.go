package service_test

import (
	"bytes"
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/eventshop/payment-service/internal/consumer"
	"github.com/eventshop/payment-service/internal/gatewaysim"
	"github.com/eventshop/payment-service/internal/payment"
	"github.com/eventshop/shared/events"
	"github.com/eventshop/shared/platform/deadletter"
	"github.com/eventshop/shared/platform/natstest"
	"github.com/eventshop/shared/platform/trace"
)

// publishCreated publishes orders.<id>.created with the card token, as the
// order service does; the customer then knows the order id (the 202).
func (h *harness) publishCreated(orderID, token string) {
	h.t.Helper()
	if _, err := h.orders.Publish(context.Background(), events.OrderCreated, orderID, trace.New().String(), events.OrderCreatedData{
		OrderID: orderID, CustomerID: "c-42", Items: []events.Item{{SKU: "MUG-1", Quantity: 2}},
		PaymentToken: token, CreatedAt: time.Now().UTC(),
	}); err != nil {
		h.t.Fatal(err)
	}
}

// TestCustomerCannotPreemptTheCharge reproduces finding 3: knowing the
// order id, a customer (holding a gateway credential) charges 1 cent under
// Idempotency-Key: <order id> before the payment service charges 7,000.
// The payment must be the 7,000 charge, made under a key the customer
// could not know, never the customer's 1-cent charge.
func TestCustomerCannotPreemptTheCharge(t *testing.T) {
	h := start(t)
	orderID := newOrderID("preempt")
	const orderTotal = 7000
	h.publishCreated(orderID, gatewaysim.TokenVisa)
	// Every key a customer could derive from what they see.
	for _, key := range []string{orderID, "refund-" + orderID, strings.ToLower(orderID)} {
		h.gatewayPost("/charges", key, gatewaysim.ChargeRequest{OrderID: orderID, AmountCents: 1, Currency: "USD", Token: gatewaysim.TokenVisa})
	}

	h.placeOrder(orderID, "", orderTotal) // the reservation of the 7,000 order
	env := h.paymentEvent(orderID, "succeeded")
	var d events.PaymentSucceededData
	if err := env.DecodeData(&d); err != nil {
		t.Fatal(err)
	}
	var ours *gatewaysim.Charge
	oc := h.charges(orderID)
	for i, c := range oc.Charges {
		if c.ID == d.ChargeID {
			ours = &oc.Charges[i]
		}
	}
	if ours == nil || ours.AmountCents != orderTotal || d.AmountCents != orderTotal {
		t.Fatalf("payment.succeeded names charge %s for %d cents; gateway holds %+v: want a charge of %d",
			d.ChargeID, d.AmountCents, oc.Charges, orderTotal)
	}
	// The key the gateway saw is the record's secret, not the order id nor
	// anything made of it.
	rec := h.storedRecord(orderID)
	if ours.IdempotencyKey != rec.ChargeKey || ours.IdempotencyKey == orderID || strings.Contains(ours.IdempotencyKey, orderID) ||
		len(ours.IdempotencyKey) < 20 {
		t.Fatalf("charge key %q (record %q): want the record's random key, unrelated to order %s", ours.IdempotencyKey, rec.ChargeKey, orderID)
	}
	// And nothing shows it: GET /payments hides it.
	if _, body := h.get("/payments/" + orderID); bytes.Contains(body, []byte(rec.ChargeKey)) {
		t.Fatalf("GET /payments reveals the charge key: %s", body)
	}
	// Another order gets another key.
	other := newOrderID("preempt")
	h.placeOrder(other, gatewaysim.TokenVisa, total)
	h.paymentEvent(other, "succeeded")
	if k := h.storedRecord(other).ChargeKey; k == rec.ChargeKey || k == "" {
		t.Fatalf("two orders share the key %q", k)
	}
}

// TestTimedOutChargeRetriesUnderTheSameKey: the gateway took the charge but
// answered after the timeout; the retries ask again with the key stored in
// the record (never a new one), so the customer is charged once.
func TestTimedOutChargeRetriesUnderTheSameKey(t *testing.T) {
	h := start(t)
	h.setGatewayMode(gatewaysim.Settings{Mode: gatewaysim.ModeSlow, LatencyMS: 1500}) // > GATEWAY_TIMEOUT 1s
	orderID := newOrderID("slow")
	h.placeOrder(orderID, gatewaysim.TokenVisa, total)
	natstest.EventuallyNil(t, "charge taken by the slow gateway", func() error {
		if n := len(h.charges(orderID).Charges); n != 1 {
			return fmt.Errorf("%d charges", n)
		}
		return nil
	})
	h.setGatewayMode(gatewaysim.Settings{Mode: gatewaysim.ModeHealthy})
	h.paymentEvent(orderID, "succeeded")
	rec := h.storedRecord(orderID)
	oc := h.charges(orderID)
	if oc.Succeeded != 1 || len(oc.Charges) != 1 || oc.Charges[0].ID != rec.ChargeID || oc.Charges[0].IdempotencyKey != rec.ChargeKey {
		t.Fatalf("gateway = %+v, record %+v: want one charge under the record's key", oc, rec)
	}
}

// TestCancellationOfConfirmedOrderIsRefused reproduces finding 6: a forged
// orders.<id>.cancelled for a CONFIRMED order is an illegal transition:
// dead-lettered with the reason, counted, and nothing is refunded.
func TestCancellationOfConfirmedOrderIsRefused(t *testing.T) {
	h := start(t)
	orderID := newOrderID("confirmed")
	h.placeOrder(orderID, gatewaysim.TokenVisa, total)
	h.paymentEvent(orderID, "succeeded")
	if _, err := h.orders.Publish(context.Background(), events.OrderConfirmed, orderID, trace.New().String(),
		events.OrderConfirmedData{OrderID: orderID, CustomerID: "c-42", TotalCents: total, Currency: "USD"}); err != nil {
		t.Fatal(err)
	}

	seq := h.cancel(orderID) // the forgery
	dl := natstest.DeadLetter(t, h.js, consumer.OrdersDurable, events.StreamOrders, seq)
	if got := dl.Header.Get(deadletter.HeaderError); !strings.Contains(got, "illegal order transition") || !strings.Contains(got, "confirmed") {
		t.Fatalf("Dlq-Error = %q, want an illegal transition of a confirmed order", got)
	}
	if rec, _ := h.record(orderID); rec.Status != payment.StatusSucceeded {
		t.Fatalf("record = %+v, want still succeeded", rec)
	}
	if oc := h.charges(orderID); oc.Succeeded != 1 || oc.Refunded != 0 {
		t.Fatalf("gateway = %+v, want the charge not refunded", oc)
	}
	if n := h.countMsgs(events.StreamPayments, "payments."+orderID+".refunded"); n != 0 {
		t.Fatalf("%d refunded events for a confirmed order", n)
	}
	_, body := h.get("/metrics")
	if want := `eventshop_events_refused_total{consumer="payment-orders",reason="illegal_transition",service="payment-service"} 1`; !bytes.Contains(body, []byte(want)) {
		t.Errorf("metrics lack %s", want)
	}
}

// TestReservedTotalsMustAddUp: a reservation whose total is not the sum of
// its priced lines (a forged 1-cent total for a 7,000 order) is never
// charged: the decode refuses it and it is dead-lettered.
func TestReservedTotalsMustAddUp(t *testing.T) {
	h := start(t)
	orderID := newOrderID("total")
	h.publishCreated(orderID, gatewaysim.TokenVisa)
	_, raw, err := h.inventory.Build(events.InventoryReserved, orderID, trace.New().String(), events.InventoryReservedData{
		OrderID:    orderID,
		Lines:      []events.PricedLine{{SKU: "MUG-1", Name: "Mug", Quantity: 2, UnitPriceCents: 3500, LineTotalCents: 7000}},
		TotalCents: 7000, Currency: "USD",
	})
	if err != nil {
		t.Fatal(err)
	}
	// The forger changes the total after the producer's checks.
	forged := bytes.Replace(raw, []byte(`"total_cents":7000`), []byte(`"total_cents":1`), 1)
	if bytes.Equal(forged, raw) {
		t.Fatalf("no total_cents in %s", raw)
	}
	raw = forged
	ack, err := h.js.Publish(context.Background(), "inventory."+orderID+".reserved", raw)
	if err != nil {
		t.Fatal(err)
	}
	natstest.DeadLetter(t, h.js, consumer.ReservedDurable, events.StreamInventory, ack.Sequence)
	if oc := h.charges(orderID); len(oc.Charges) != 0 {
		t.Fatalf("a reservation whose total does not add up was charged: %+v", oc)
	}
	if n := h.countMsgs(events.StreamPayments, "payments."+orderID+".>"); n != 0 {
		t.Fatalf("%d payment events for it", n)
	}
}

// A forged payment outcome already on the order's subject is not the
// payment's own: announcing the real one finds a conflicting event, which is
// refused (dead-lettered with the reason, at once), not taken as its
// duplicate and not retried for ever.
func TestForgedOutcomeOnTheSubjectIsAConflict(t *testing.T) {
	h := start(t)
	orderID := newOrderID("forged-outcome")
	forger, err := events.NewPublisher(h.js, "payment-service")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := forger.Publish(context.Background(), events.PaymentSucceeded, orderID, trace.New().String(),
		events.PaymentSucceededData{OrderID: orderID, ChargeID: "ch_forged", AmountCents: 1, Currency: "USD"}); err != nil {
		t.Fatal(err)
	}
	p := h.placeOrder(orderID, gatewaysim.TokenVisa, total)
	dl := natstest.DeadLetter(t, h.js, consumer.ReservedDurable, events.StreamInventory, p.Sequence)
	if got := dl.Header.Get(deadletter.HeaderError); !strings.Contains(got, "refused (conflicting_duplicate)") {
		t.Fatalf("%s = %q, want a refusal for a conflicting outcome", deadletter.HeaderError, got)
	}
}
