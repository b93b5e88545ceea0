package service_test

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/eventshop/order-service/internal/store"
	"github.com/eventshop/shared/events"
	"github.com/eventshop/shared/platform/natstest"
	"github.com/eventshop/shared/platform/trace"
)

// Issue 9, finding 6: a consumer trusted any schema-valid event on its
// subject. Each test publishes what a stolen service credential can
// publish, and checks it is refused (dead-lettered with its reason,
// counted, never applied) and that the saga's real events still apply.

// wantRefusedMetric waits until /metrics counts n refusals of consumer for
// reason.
func (h *harness) wantRefusedMetric(consumer, reason string, n int) {
	h.t.Helper()
	want := fmt.Sprintf(`eventshop_events_refused_total{consumer=%q,reason=%q,service="order-service"} %d`, consumer, reason, n)
	natstest.EventuallyNil(h.t, "refused metric", func() error {
		_, _, out := h.do(http.MethodGet, "/metrics", nil, nil)
		if !strings.Contains(string(out), want) {
			return fmt.Errorf("metrics lack %s:\n%s", want, grep(string(out), "refused"))
		}
		return nil
	})
}

// TestForgedPaymentIsRefusedAndTheRealOutcomeApplies: a forged 1-cent
// payments.<id>.succeeded used to confirm a 2598-cent order whose real
// charge was then declined (the decline found a final order and changed
// nothing).
func TestForgedPaymentIsRefusedAndTheRealOutcomeApplies(t *testing.T) {
	h := start(t)
	id := h.create(validBody)
	h.reserve(id)
	h.waitStatus(id, "RESERVED")

	h.mustPublish(h.pay, events.PaymentSucceeded, id, events.PaymentSucceededData{OrderID: id, ChargeID: "ch_forged", AmountCents: 1, Currency: "USD"})
	h.wantDeadLetter("order-payments", events.StreamPayments, h.lastSeq(events.StreamPayments), "refused (amount_mismatch)")
	h.wantRefusedMetric("order-payments", "amount_mismatch", 1)
	if _, v := h.get(id); v.Status != "RESERVED" {
		t.Fatalf("order after a forged payment = %+v, want still RESERVED", v)
	}

	// The real outcome: the charge of the reserved total was declined.
	h.mustPublish(h.pay, events.PaymentFailed, id, events.PaymentFailedData{
		OrderID: id, Reason: events.ReasonCardDeclined, DeclineCode: "insufficient_funds", AmountCents: 2598, Currency: "USD"})
	v := h.waitStatus(id, "CANCELLED")
	if v.CancelReason != "payment_declined" {
		t.Fatalf("order after the real decline = %+v", v)
	}
	natstest.Eventually(t, "cancelled event", func() bool { return h.count(events.StreamOrders, "orders."+id+".cancelled") == 1 })
	if n := h.count(events.StreamOrders, "orders."+id+".confirmed"); n != 0 {
		t.Fatalf("%d confirmed events for an order whose charge was declined", n)
	}
}

// TestPaymentForAnOrderNeverReservedIsRefused: the payment service charges
// reserved orders only, for their reserved total; a payment outcome for an
// order with no reservation used to confirm it, taking the amount it
// claimed as the order's total.
func TestPaymentForAnOrderNeverReservedIsRefused(t *testing.T) {
	h := start(t)
	id := h.create(validBody)
	h.paid(id)
	h.wantDeadLetter("order-payments", events.StreamPayments, h.lastSeq(events.StreamPayments), "refused (not_reserved)")
	h.wantRefusedMetric("order-payments", "not_reserved", 1)
	h.reserve(id)
	v := h.waitStatus(id, "RESERVED")
	if *v.TotalCents != 2598 {
		t.Fatalf("order = %+v", v)
	}
	if n := h.count(events.StreamOrders, "orders."+id+".confirmed"); n != 0 {
		t.Fatalf("%d confirmed events for an order nobody paid", n)
	}
}

// TestIllegalTransitionsAreRefused: payment and inventory each answer an
// order once, so a decline or a stock rejection for a confirmed order is
// not from the saga. Both used to be acknowledged as no-ops, silently.
func TestIllegalTransitionsAreRefused(t *testing.T) {
	h := start(t)
	id := h.create(validBody)
	h.reserve(id)
	h.waitStatus(id, "RESERVED")
	h.paid(id)
	before := h.waitStatus(id, "CONFIRMED")

	h.mustPublish(h.pay, events.PaymentFailed, id, events.PaymentFailedData{
		OrderID: id, Reason: events.ReasonCardDeclined, AmountCents: 2598, Currency: "USD"})
	h.wantDeadLetter("order-payments", events.StreamPayments, h.lastSeq(events.StreamPayments), "refused (illegal_transition)")
	h.mustPublish(h.inv, events.InventoryRejected, id, events.InventoryRejectedData{OrderID: id, Reason: events.ReasonInsufficientStock})
	h.wantDeadLetter("order-inventory", events.StreamInventory, h.lastSeq(events.StreamInventory), "refused (illegal_transition)")
	h.wantRefusedMetric("order-payments", "illegal_transition", 1)
	h.wantRefusedMetric("order-inventory", "illegal_transition", 1)

	if _, after := h.get(id); after.Status != "CONFIRMED" || !after.UpdatedAt.Equal(before.UpdatedAt) {
		t.Fatalf("order after forged answers = %+v, want it as it was: %+v", after, before)
	}
	if n := h.count(events.StreamOrders, "orders."+id+".cancelled"); n != 0 {
		t.Fatalf("%d cancelled events for a confirmed order", n)
	}
}

// forgedEvent is an envelope around data, written by hand: the publisher
// refuses to build an event that fails its checks.
func forgedEvent(typ, schema, id, data string) []byte {
	return []byte(`{"specversion":"1.0","id":"forged-` + id + `","source":"inventory-service","type":"` + typ + `","subject":"` + id + `",` +
		`"time":"2026-11-23T10:00:00Z","datacontenttype":"application/json","dataschema":"https://schemas.eventshop.dev/events/` + schema + `/v1.json",` +
		`"traceparent":"` + trace.New().String() + `","data":` + data + `}`)
}

// TestForgedReservationIsNoReservation: a forged inventory.<id>.reserved
// whose total (1 cent) contradicts its lines (5 x 600) sold 5 units for a
// cent, and the real reservation was then taken for its duplicate. Now
// the order service reads it as no reservation (GET answered 500 for it,
// and the deadline could not cancel the order), a payment of its 1 cent
// is refused, the real reservation is refused by the publisher as a
// conflict, and the deadline cancels the order (which releases its stock).
func TestForgedReservationIsNoReservation(t *testing.T) {
	h := start(t, withDeadline(time.Second))
	id := h.create(`{"customer_id":"c-42","items":[{"sku":"SKU-1","quantity":5}],"payment_token":"tok_visa"}`)
	forged := forgedEvent("shop.inventory.reserved", "inventory.reserved", id,
		`{"order_id":"`+id+`","lines":[{"sku":"SKU-1","name":"Mug","quantity":5,"unit_price_cents":600,"line_total_cents":3000}],"total_cents":1,"currency":"USD"}`)
	if _, err := h.js.Publish(context.Background(), "inventory."+id+".reserved", forged); err != nil {
		t.Fatal(err)
	}
	code, v := h.get(id)
	if code != http.StatusOK || v.Status == "RESERVED" || v.TotalCents != nil {
		t.Fatalf("GET after a forged reservation = %d %+v, want the order without a reservation", code, v)
	}
	h.mustPublish(h.pay, events.PaymentSucceeded, id, events.PaymentSucceededData{OrderID: id, ChargeID: "ch_forged", AmountCents: 1, Currency: "USD"})
	h.wantDeadLetter("order-payments", events.StreamPayments, h.lastSeq(events.StreamPayments), "refused (not_reserved)")

	real := events.InventoryReservedData{OrderID: id, TotalCents: 3000, Currency: "USD",
		Lines: []events.PricedLine{{SKU: "SKU-1", Name: "Mug", Quantity: 5, UnitPriceCents: 600, LineTotalCents: 3000}}}
	if res, err := h.inv.Publish(context.Background(), events.InventoryReserved, id, trace.New().String(), real); !errors.Is(err, events.ErrConflictingDuplicate) {
		t.Fatalf("real reservation = %+v, %v; want ErrConflictingDuplicate", res, err)
	}
	h.wantTimedOut(id)
	if n := h.count(events.StreamOrders, "orders."+id+".confirmed"); n != 0 {
		t.Fatalf("%d confirmed events", n)
	}
}

// TestPoisonCreatedEventIsNotServed (finding 14): a created event that
// fails its checks made GET /orders/{id} answer 500, and one whose data
// names another order than its subject answered that other order's id.
// Now both answer 409 problem+json, and a customer's list leaves them out.
func TestPoisonCreatedEventIsNotServed(t *testing.T) {
	h := start(t)
	ctx := context.Background()
	createdData := func(id string) string {
		return `{"order_id":"` + id + `","customer_id":"mallory","items":[{"sku":"SKU-1","quantity":1}],"payment_token":"t","created_at":"` +
			time.Now().UTC().Format(time.RFC3339Nano) + `"}`
	}
	poison := map[string][]byte{
		"poison-other-id": forgedEvent("shop.order.created", "order.created", "poison-other-id", createdData("victim-order")),
		"poison-no-items": forgedEvent("shop.order.created", "order.created", "poison-no-items",
			`{"order_id":"poison-no-items","customer_id":"mallory","items":[],"payment_token":"t","created_at":"2026-11-23T10:00:00Z"}`),
		"poison-garbage": []byte(`{"specversion":"1.0","data":"nope"}`),
	}
	kv, err := h.js.KeyValue(ctx, store.OrdersBucket)
	if err != nil {
		t.Fatal(err)
	}
	for id, raw := range poison {
		if _, err := h.js.Publish(ctx, "orders."+id+".created", raw); err != nil {
			t.Fatal(err)
		}
		if _, err := kv.Create(ctx, store.CustomerPrefix("mallory")+"."+id, []byte(`{"order_id":"`+id+`"}`)); err != nil {
			t.Fatal(err)
		}
		status, hdr, out := h.do(http.MethodGet, "/orders/"+id, nil, nil)
		wantProblem(t, status, hdr, out, http.StatusConflict, "order-events-invalid")
		if strings.Contains(string(out), "victim-order") {
			t.Fatalf("GET %s answered another order's id: %s", id, out)
		}
	}
	real := h.create(`{"customer_id":"mallory","items":[{"sku":"SKU-1","quantity":1}],"payment_token":"t"}`)
	status, _, out := h.do(http.MethodGet, "/orders?customer_id=mallory", nil, nil)
	var list struct {
		Orders []orderView `json:"orders"`
	}
	if err := json.Unmarshal(out, &list); status != http.StatusOK || err != nil || len(list.Orders) != 1 || list.Orders[0].OrderID != real {
		t.Fatalf("list = %d %s, want only %s", status, out, real)
	}
}

// TestListIsPaginated (finding 13): GET /orders?customer_id= answered
// every order of the customer in one response, read one by one. Now a
// page holds at most limit orders (50 by default, at most 200), newest
// first, with an opaque cursor to the next page.
func TestListIsPaginated(t *testing.T) {
	h := start(t)
	const n = 53
	created := map[string]bool{}
	for i := range n {
		created[h.create(fmt.Sprintf(`{"customer_id":"paula","items":[{"sku":"SKU-%d","quantity":1}],"payment_token":"t"}`, i))] = true
	}
	h.create(`{"customer_id":"bob","items":[{"sku":"SKU-1","quantity":1}],"payment_token":"t"}`)
	type page struct {
		Orders []orderView `json:"orders"`
		Next   string      `json:"next"`
	}
	get := func(query string) page {
		t.Helper()
		status, _, out := h.do(http.MethodGet, "/orders?customer_id=paula"+query, nil, nil)
		var p page
		if err := json.Unmarshal(out, &p); status != http.StatusOK || err != nil {
			t.Fatalf("GET /orders?customer_id=paula%s = %d %s", query, status, out)
		}
		return p
	}
	first := get("")
	if len(first.Orders) != 50 || first.Next == "" {
		t.Fatalf("first page: %d orders, next %q; want the default 50 and a next cursor", len(first.Orders), first.Next)
	}
	// Walk the pages 20 at a time: every order once, newest first.
	var all []orderView
	cursor := ""
	for pages := 0; ; pages++ {
		q := "&limit=20"
		if cursor != "" {
			q += "&cursor=" + cursor
		}
		p := get(q)
		if len(p.Orders) > 20 || pages > 3 {
			t.Fatalf("page %d: %d orders", pages, len(p.Orders))
		}
		all = append(all, p.Orders...)
		if p.Next == "" {
			break
		}
		cursor = p.Next
	}
	if len(all) != n {
		t.Fatalf("pages hold %d orders, want %d", len(all), n)
	}
	seen := map[string]bool{}
	for i, o := range all {
		if !created[o.OrderID] || seen[o.OrderID] {
			t.Fatalf("order %d: %s is not one of paula's or is listed twice", i, o.OrderID)
		}
		seen[o.OrderID] = true
		if i > 0 && o.CreatedAt.After(all[i-1].CreatedAt) {
			t.Fatalf("order %d is newer than order %d: not newest first", i, i-1)
		}
	}
	for _, q := range []string{"&limit=0", "&limit=201", "&limit=ten", "&limit=-1"} {
		status, hdr, out := h.do(http.MethodGet, "/orders?customer_id=paula"+q, nil, nil)
		wantProblem(t, status, hdr, out, http.StatusBadRequest, "invalid-limit")
	}
	for _, c := range []string{"garbage!", base64.RawURLEncoding.EncodeToString([]byte(`{"t":"2026-01-01T00:00:00Z","o":"bad.id"}`)), "e30"} {
		status, hdr, out := h.do(http.MethodGet, "/orders?customer_id=paula&cursor="+c, nil, nil)
		wantProblem(t, status, hdr, out, http.StatusBadRequest, "invalid-cursor")
	}
}
