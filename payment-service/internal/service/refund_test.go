package service_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/eventshop/payment-service/internal/consumer"
	"github.com/eventshop/payment-service/internal/gatewaysim"
	"github.com/eventshop/payment-service/internal/payment"
	"github.com/eventshop/payment-service/internal/store"
	"github.com/eventshop/shared/events"
	"github.com/eventshop/shared/platform/deadletter"
	"github.com/eventshop/shared/platform/natstest"
	"github.com/eventshop/shared/platform/trace"
)

// cancel publishes orders.<id>.cancelled as the order service would (the
// order missed its deadline) and returns its stream sequence.
func (h *harness) cancel(orderID string) uint64 {
	h.t.Helper()
	p, err := h.orders.Publish(context.Background(), events.OrderCancelled, orderID, trace.New().String(),
		events.OrderCancelledData{OrderID: orderID, CustomerID: "c-42", Reason: events.ReasonTimeout})
	if err != nil || p.Duplicate {
		h.t.Fatalf("publish cancelled: %+v, %v", p, err)
	}
	return p.Sequence
}

// redeliver appends a stored event again (bypassing create-once), as a
// lost ack would deliver it once more, and returns the copy's sequence.
func (h *harness) redeliver(stream, subject string) uint64 {
	h.t.Helper()
	msg, err := h.lastMsg(stream, subject)
	if err != nil {
		h.t.Fatal(err)
	}
	ack, err := h.js.Publish(context.Background(), subject, msg.Data)
	if err != nil {
		h.t.Fatal(err)
	}
	return ack.Sequence
}

// settled waits until durable has acknowledged every message of stream up
// to seq and holds nothing pending.
func (h *harness) settled(stream, durable string, seq uint64) {
	h.t.Helper()
	natstest.EventuallyNil(h.t, fmt.Sprintf("%s settled up to %d", durable, seq), func() error {
		c, err := h.js.Consumer(context.Background(), stream, durable)
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

// waitRecord waits until the order's payment record has status.
func (h *harness) waitRecord(orderID string, status payment.Status) payment.Record {
	h.t.Helper()
	var rec payment.Record
	natstest.EventuallyNil(h.t, "payment of "+orderID+" "+string(status), func() error {
		var code int
		if rec, code = h.record(orderID); code != http.StatusOK || rec.Status != status {
			return fmt.Errorf("GET /payments = %d %+v", code, rec)
		}
		return nil
	})
	return rec
}

// wantRefundedOnce checks the end state of a cancelled order that had been
// charged: one charge, refunded once at the gateway, a refunded record and
// exactly one refunded event that matches them.
func (h *harness) wantRefundedOnce(orderID string) payment.Record {
	h.t.Helper()
	env := h.paymentEvent(orderID, "refunded")
	rec := h.waitRecord(orderID, payment.StatusRefunded)
	oc := h.charges(orderID)
	if oc.Succeeded != 1 || oc.Refunded != 1 || len(oc.Charges) != 1 || oc.Charges[0].RefundID != rec.RefundID {
		h.t.Fatalf("gateway = %+v, record %+v: want one charge, refunded once by the recorded refund", oc, rec)
	}
	var d events.PaymentRefundedData
	if err := env.DecodeData(&d); err != nil {
		h.t.Fatal(err)
	}
	want := events.PaymentRefundedData{OrderID: orderID, ChargeID: oc.Charges[0].ID, RefundID: rec.RefundID,
		AmountCents: total, Currency: "USD", Reason: events.ReasonTimeout}
	if d != want {
		h.t.Fatalf("refunded event = %+v, want %+v", d, want)
	}
	if n := h.countMsgs(events.StreamPayments, "payments."+orderID+".refunded"); n != 1 {
		h.t.Fatalf("%d refunded events, want 1", n)
	}
	return rec
}

// TestLateChargeIsRefundedOnce: an order cancelled after it was charged
// (the payment arrived after its deadline) is refunded through the gateway,
// once, however often the cancellation is delivered.
func TestLateChargeIsRefundedOnce(t *testing.T) {
	h := start(t)
	orderID := newOrderID("late")
	h.placeOrder(orderID, gatewaysim.TokenVisa, total)
	h.paymentEvent(orderID, "succeeded")

	h.cancel(orderID)
	h.wantRefundedOnce(orderID)

	// The cancellation again, as after a lost ack: nothing more happens.
	seq := h.redeliver(events.StreamOrders, "orders."+orderID+".cancelled")
	h.settled(events.StreamOrders, consumer.OrdersDurable, seq)
	h.wantRefundedOnce(orderID)
	// And the reserved event again: the refunded payment is not charged anew.
	seq = h.redeliver(events.StreamInventory, "inventory."+orderID+".reserved")
	h.settled(events.StreamInventory, consumer.ReservedDurable, seq)
	h.wantRefundedOnce(orderID)
	if n := h.countMsgs(deadletter.DefaultStream, "dlq.>"); n != 0 {
		t.Fatalf("%d dead letters, want none", n)
	}
}

// TestCancelledBeforeReservedChargesNothing: a cancellation that overtakes
// the reservation voids the payment, and the late reserved event charges
// nothing.
func TestCancelledBeforeReservedChargesNothing(t *testing.T) {
	h := start(t)
	orderID := newOrderID("void")
	ctx := context.Background()
	if _, err := h.orders.Publish(ctx, events.OrderCreated, orderID, trace.New().String(), events.OrderCreatedData{
		OrderID: orderID, CustomerID: "c-42", Items: []events.Item{{SKU: "MUG-1", Quantity: 2}},
		PaymentToken: gatewaysim.TokenVisa, CreatedAt: time.Now().UTC(),
	}); err != nil {
		t.Fatal(err)
	}
	seq := h.cancel(orderID)
	h.settled(events.StreamOrders, consumer.OrdersDurable, seq)
	rec := h.waitRecord(orderID, payment.StatusVoid)
	if rec.CancelReason != events.ReasonTimeout {
		t.Fatalf("void record = %+v", rec)
	}

	reserved, err := h.inventory.Publish(ctx, events.InventoryReserved, orderID, trace.New().String(), events.InventoryReservedData{
		OrderID: orderID, Lines: []events.PricedLine{{SKU: "MUG-1", Name: "Mug", Quantity: 2, UnitPriceCents: 1299, LineTotalCents: total}},
		TotalCents: total, Currency: "USD",
	})
	if err != nil {
		t.Fatal(err)
	}
	h.settled(events.StreamInventory, consumer.ReservedDurable, reserved.Sequence)
	if oc := h.charges(orderID); len(oc.Charges) != 0 {
		t.Fatalf("a voided order was charged: %+v", oc)
	}
	if n := h.countMsgs(events.StreamPayments, "payments."+orderID+".>"); n != 0 {
		t.Fatalf("a voided order has %d payment events, want none", n)
	}
	if rec, _ := h.record(orderID); rec.Status != payment.StatusVoid {
		t.Fatalf("record after the late reservation = %+v, want void", rec)
	}
}

// TestChargeThatTimedOutIsRefunded: the gateway took the charge but answered
// too late (the client timed out), and the order was cancelled before the
// charge could be recorded. The charging record tells the cancellation a
// charge may exist: it is settled with the same key and refunded, never
// left charged and never voided over.
func TestChargeThatTimedOutIsRefunded(t *testing.T) {
	h := start(t)
	orderID := newOrderID("slow")
	h.setGatewayMode(gatewaysim.Settings{Mode: gatewaysim.ModeSlow, LatencyMS: 3000}) // past the 1s client timeout
	h.placeOrder(orderID, gatewaysim.TokenVisa, total)
	natstest.EventuallyNil(t, "charge taken by the gateway", func() error {
		if oc := h.charges(orderID); oc.Succeeded != 1 {
			return fmt.Errorf("gateway %+v", oc)
		}
		return nil
	})
	h.waitRecord(orderID, payment.StatusCharging)

	h.cancel(orderID)
	// While the gateway is slow nothing can be settled; the record must
	// not turn void meanwhile.
	time.Sleep(500 * time.Millisecond)
	if rec, _ := h.record(orderID); rec.Status != payment.StatusCharging {
		t.Fatalf("record while the charge is unsettled = %+v, want charging", rec)
	}
	h.setGatewayMode(gatewaysim.Settings{Mode: gatewaysim.ModeHealthy})
	h.wantRefundedOnce(orderID)
}

// TestCrashAfterChargeBeforeRecordIsRefunded: a previous incarnation wrote
// the charging record, charged the card and died before recording the
// outcome; then the order was cancelled. The cancellation replays the
// charge (same key: no second charge), refunds it, and announces only the
// refund.
func TestCrashAfterChargeBeforeRecordIsRefunded(t *testing.T) {
	h := start(t)
	ctx := context.Background()
	orderID := newOrderID("crash")
	if _, err := h.orders.Publish(ctx, events.OrderCreated, orderID, trace.New().String(), events.OrderCreatedData{
		OrderID: orderID, CustomerID: "c-42", Items: []events.Item{{SKU: "MUG-1", Quantity: 2}},
		PaymentToken: gatewaysim.TokenVisa, CreatedAt: time.Now().UTC(),
	}); err != nil {
		t.Fatal(err)
	}
	intent := payment.NewIntent(payment.ChargeRequest{OrderID: orderID, AmountCents: total, Currency: "USD"}, time.Now())
	raw, _ := json.Marshal(intent)
	kv, err := h.js.KeyValue(ctx, store.PaymentsBucket)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := kv.Create(ctx, orderID, raw); err != nil {
		t.Fatal(err)
	}
	first := h.gatewayPost("/charges", orderID, gatewaysim.ChargeRequest{OrderID: orderID, AmountCents: total, Currency: "USD", Token: gatewaysim.TokenVisa})

	h.cancel(orderID)
	rec := h.wantRefundedOnce(orderID)
	if rec.ChargeID != first["id"] {
		t.Fatalf("refunded charge %s, want the earlier charge %s replayed", rec.ChargeID, first["id"])
	}
	if n := h.countMsgs(events.StreamPayments, "payments."+orderID+".succeeded"); n != 0 {
		t.Fatalf("%d succeeded events for a charge refunded before it was recorded, want none", n)
	}
}

// TestRefundReplayedAfterCrash: a previous incarnation refunded the charge
// and died before recording it; the redelivered cancellation's refund is a
// gateway replay, not a second refund.
func TestRefundReplayedAfterCrash(t *testing.T) {
	h := start(t)
	orderID := newOrderID("rcrash")
	h.placeOrder(orderID, gatewaysim.TokenVisa, total)
	h.paymentEvent(orderID, "succeeded")
	rec := h.storedRecord(orderID)
	first := h.gatewayPost("/refunds", rec.RefundKey(), gatewaysim.RefundRequest{ChargeID: rec.ChargeID, AmountCents: total})

	h.cancel(orderID)
	rec = h.wantRefundedOnce(orderID)
	if rec.RefundID != first["id"] {
		t.Fatalf("recorded refund %s, want the earlier refund %s replayed", rec.RefundID, first["id"])
	}
}

// TestRefundWaitsOutGatewayOutage: while the gateway is down the refund
// waits in JetStream (never dead-lettered, never recorded as done) and
// completes once it is back.
func TestRefundWaitsOutGatewayOutage(t *testing.T) {
	h := start(t)
	orderID := newOrderID("rdown")
	h.placeOrder(orderID, gatewaysim.TokenVisa, total)
	h.paymentEvent(orderID, "succeeded")

	h.setGatewayMode(gatewaysim.Settings{Mode: gatewaysim.ModeDown})
	h.cancel(orderID)
	natstest.EventuallyNil(t, "breaker open", func() error {
		if s := h.breakerState(); s != "open" {
			return fmt.Errorf("breaker %s", s)
		}
		return nil
	})
	time.Sleep(800 * time.Millisecond) // a few probe cycles
	if rec, _ := h.record(orderID); rec.Status != payment.StatusSucceeded {
		t.Fatalf("record during the outage = %+v, want still succeeded", rec)
	}
	if n := h.countMsgs(events.StreamPayments, "payments."+orderID+".refunded"); n != 0 {
		t.Fatalf("refunded announced during the outage")
	}
	if n := h.countMsgs(deadletter.DefaultStream, "dlq.>"); n != 0 {
		t.Fatalf("%d dead letters during the outage, want none", n)
	}
	h.setGatewayMode(gatewaysim.Settings{Mode: gatewaysim.ModeHealthy})
	h.wantRefundedOnce(orderID)
	_, body := h.get("/metrics")
	for _, want := range []string{
		`eventshop_payment_refunds_total{outcome="succeeded",service="payment-service"} 1`,
		`eventshop_consumer_messages_total{consumer="payment-orders",outcome="wait",service="payment-service"}`,
	} {
		if !bytes.Contains(body, []byte(want)) {
			t.Errorf("metrics lack %s", want)
		}
	}
}

// TestCancelledPoisonIsDeadLettered: an unreadable cancellation is
// dead-lettered by the payment-orders consumer, not retried for ever.
func TestCancelledPoisonIsDeadLettered(t *testing.T) {
	h := start(t)
	ack, err := h.js.Publish(context.Background(), "orders.x-1.cancelled", []byte(`{"order_id":"x-1"}`))
	if err != nil {
		t.Fatal(err)
	}
	natstest.DeadLetter(t, h.js, consumer.OrdersDurable, events.StreamOrders, ack.Sequence)
}

// storedRecord returns the order's payment as GET /payments shows it, with
// the secret charge key it hides read from the bucket.
func (h *harness) storedRecord(orderID string) payment.Record {
	h.t.Helper()
	rec, status := h.record(orderID)
	if status != http.StatusOK {
		h.t.Fatalf("GET /payments/%s = %d", orderID, status)
	}
	rec.ChargeKey = h.bucketRecord(orderID).ChargeKey
	return rec
}

// bucketRecord reads the order's record from the payments bucket as stored
// (the outcome is not in it: it is the order's payment event).
func (h *harness) bucketRecord(orderID string) payment.Record {
	h.t.Helper()
	ctx := context.Background()
	kv, err := h.js.KeyValue(ctx, store.PaymentsBucket)
	if err != nil {
		h.t.Fatal(err)
	}
	e, err := kv.Get(ctx, orderID)
	if err != nil {
		h.t.Fatal(err)
	}
	var rec payment.Record
	if err := json.Unmarshal(e.Value(), &rec); err != nil {
		h.t.Fatal(err)
	}
	return rec
}

// gatewayPost calls the gateway directly, as a previous incarnation of the
// service did, and returns the decoded 201 answer.
func (h *harness) gatewayPost(path, key string, body any) map[string]any {
	h.t.Helper()
	raw, _ := json.Marshal(body)
	req, _ := http.NewRequest(http.MethodPost, h.gwURL+path, bytes.NewReader(raw))
	req.Header.Set(gatewaysim.HeaderIdempotencyKey, key)
	req.Header.Set("Authorization", "Bearer "+gatewayKey)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		h.t.Fatal(err)
	}
	defer resp.Body.Close()
	var out map[string]any
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil || resp.StatusCode != http.StatusCreated {
		h.t.Fatalf("POST %s = %d %v (%v)", path, resp.StatusCode, out, err)
	}
	return out
}

// TestFreeOrderCancelledRefundsNothing: an order with nothing to charge is
// "refunded" without a gateway call when it is cancelled.
func TestFreeOrderCancelledRefundsNothing(t *testing.T) {
	h := start(t)
	orderID := newOrderID("free")
	h.placeOrder(orderID, gatewaysim.TokenVisa, 0)
	h.paymentEvent(orderID, "succeeded")
	h.cancel(orderID)
	env := h.paymentEvent(orderID, "refunded")
	var d events.PaymentRefundedData
	if err := env.DecodeData(&d); err != nil || d.ChargeID != payment.NoChargeID || d.RefundID != payment.NoRefundID || d.AmountCents != 0 {
		t.Fatalf("refunded event = %+v (%v)", d, err)
	}
	if oc := h.charges(orderID); len(oc.Charges) != 0 {
		t.Fatalf("a free order reached the gateway: %+v", oc)
	}
}
