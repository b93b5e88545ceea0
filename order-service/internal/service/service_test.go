package service_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/eventshop/order-service/internal/app"
	"github.com/eventshop/order-service/internal/consumer"
	"github.com/eventshop/order-service/internal/order"
	"github.com/eventshop/order-service/internal/store"
	"github.com/eventshop/shared/api/apitest"
	"github.com/eventshop/shared/api/openapi"
	"github.com/eventshop/shared/events"
	"github.com/eventshop/shared/platform/deadletter"
	"github.com/eventshop/shared/platform/natstest"
	"github.com/eventshop/shared/platform/trace"
)

func TestCreateThenGetPending(t *testing.T) {
	h := start(t)
	tp := trace.New().String()
	status, hdr, out := h.do(http.MethodPost, "/orders", []byte(validBody), map[string]string{"traceparent": tp})
	if status != http.StatusAccepted {
		t.Fatalf("POST = %d %s", status, out)
	}
	var c created
	if err := json.Unmarshal(out, &c); err != nil {
		t.Fatal(err)
	}
	if hdr.Get("traceparent") != tp || hdr.Get("Location") != "/orders/"+c.OrderID || c.Status != "PENDING" {
		t.Fatalf("POST answered %s with traceparent %q, Location %q", out, hdr.Get("traceparent"), hdr.Get("Location"))
	}
	code, v := h.get(c.OrderID)
	if code != http.StatusOK || v.Status != "PENDING" || v.CustomerID != "c-42" || len(v.Items) != 1 || v.Items[0].Quantity != 2 {
		t.Fatalf("GET = %d %+v", code, v)
	}
	if v.TotalCents != nil || v.Currency != "" || len(v.Lines) != 0 {
		t.Fatalf("a PENDING order shows a total before inventory priced it: %+v", v)
	}
	subject := "orders." + c.OrderID + ".created"
	if n := h.count(events.StreamOrders, subject); n != 1 {
		t.Fatalf("%d created events, want 1", n)
	}
	env := h.last(events.StreamOrders, subject)
	var d events.OrderCreatedData
	if err := env.DecodeData(&d); err != nil {
		t.Fatal(err)
	}
	if env.Source != "order-service" || env.TraceID() != trace.TraceID(tp) || d.PaymentToken != "tok_visa" || d.CreatedAt.IsZero() {
		t.Fatalf("created event = %+v %+v", env, d)
	}
	if strings.Contains(string(out), "tok_visa") {
		t.Fatal("the payment token leaked into the response")
	}

	// Without a valid incoming traceparent the service starts a trace.
	_, hdr, _ = h.do(http.MethodPost, "/orders", []byte(validBody), map[string]string{"traceparent": "garbage"})
	if _, err := trace.Parse(hdr.Get("traceparent")); err != nil {
		t.Fatalf("response traceparent: %v", err)
	}
}

func TestHappyPathConfirmsOnce(t *testing.T) {
	h := start(t)
	id := h.create(validBody)
	h.reserve(id)
	v := h.waitStatus(id, "RESERVED")
	if v.TotalCents == nil || *v.TotalCents != 2598 || v.Currency != "USD" || len(v.Lines) != 1 || v.Lines[0].Name != "Mug" {
		t.Fatalf("reserved order = %+v", v)
	}
	h.paid(id)
	v = h.waitStatus(id, "CONFIRMED")
	if *v.TotalCents != 2598 || !v.UpdatedAt.After(v.CreatedAt) {
		t.Fatalf("confirmed order = %+v", v)
	}
	subject := "orders." + id + ".confirmed"
	natstest.Eventually(t, "confirmed event", func() bool { return h.count(events.StreamOrders, subject) == 1 })
	env := h.last(events.StreamOrders, subject)
	var d events.OrderConfirmedData
	if err := env.DecodeData(&d); err != nil {
		t.Fatal(err)
	}
	if d != (events.OrderConfirmedData{OrderID: id, CustomerID: "c-42", TotalCents: 2598, Currency: "USD"}) {
		t.Fatalf("confirmed data = %+v", d)
	}
	if n := h.count(events.StreamOrders, "orders."+id+".cancelled"); n != 0 {
		t.Fatalf("%d cancelled events for a confirmed order", n)
	}
}

func TestInventoryRejectionCancels(t *testing.T) {
	h := start(t)
	id := h.create(validBody)
	h.mustPublish(h.inv, events.InventoryRejected, id, events.InventoryRejectedData{
		OrderID: id, Reason: events.ReasonInsufficientStock, SKU: "SKU-1", Detail: "SKU-1: 2 requested, 1 available",
	})
	v := h.waitStatus(id, "CANCELLED")
	if v.CancelReason != "insufficient_stock" || v.CancelDetail != "SKU-1: 2 requested, 1 available" {
		t.Fatalf("cancelled order = %+v", v)
	}
	subject := "orders." + id + ".cancelled"
	natstest.Eventually(t, "cancelled event", func() bool { return h.count(events.StreamOrders, subject) == 1 })
	var d events.OrderCancelledData
	if err := h.last(events.StreamOrders, subject).DecodeData(&d); err != nil {
		t.Fatal(err)
	}
	if d.Reason != "insufficient_stock" || d.CustomerID != "c-42" {
		t.Fatalf("cancelled data = %+v", d)
	}

	// A payment for the rejected order cannot come from the payment
	// service (it charges reserved orders only): it is refused, and the
	// order stays cancelled. (A payment for an order cancelled after its
	// reservation is acknowledged and refunded: TestOrderWithoutAnswerTimesOut.)
	h.paid(id)
	seq := h.lastSeq(events.StreamPayments)
	h.wantDeadLetter("order-payments", events.StreamPayments, seq, "never reserved")
	if _, v := h.get(id); v.Status != "CANCELLED" {
		t.Fatalf("paid cancelled order = %+v", v)
	}
	if n := h.count(events.StreamOrders, "orders."+id+".confirmed"); n != 0 {
		t.Fatalf("%d confirmed events for a cancelled order", n)
	}
}

func TestPaymentDeclineCancels(t *testing.T) {
	h := start(t)
	id := h.create(validBody)
	h.reserve(id)
	h.waitStatus(id, "RESERVED")
	h.mustPublish(h.pay, events.PaymentFailed, id, events.PaymentFailedData{
		OrderID: id, Reason: events.ReasonCardDeclined, DeclineCode: "insufficient_funds", AmountCents: 2598, Currency: "USD",
	})
	v := h.waitStatus(id, "CANCELLED")
	if v.CancelReason != "payment_declined" || v.CancelDetail != "insufficient_funds" || len(v.Lines) != 1 {
		t.Fatalf("cancelled order = %+v", v)
	}
	subject := "orders." + id + ".cancelled"
	natstest.Eventually(t, "cancelled event", func() bool { return h.count(events.StreamOrders, subject) == 1 })
	var d events.OrderCancelledData
	if err := h.last(events.StreamOrders, subject).DecodeData(&d); err != nil {
		t.Fatal(err)
	}
	if d.Reason != "payment_declined" || d.Detail != "insufficient_funds" {
		t.Fatalf("cancelled data = %+v", d)
	}
}

func TestRedeliveryDoesNotDoublePublish(t *testing.T) {
	h := start(t)
	id := h.create(validBody)
	h.reserve(id)
	h.waitStatus(id, "RESERVED")
	h.paid(id)
	before := h.waitStatus(id, "CONFIRMED")
	for range 2 {
		h.redeliver(events.StreamPayments, "order-payments", "payments."+id+".succeeded")
	}
	_, after := h.get(id)
	if after.Status != "CONFIRMED" || !after.UpdatedAt.Equal(before.UpdatedAt) || *after.TotalCents != 2598 {
		t.Fatalf("redelivery changed the order: before %+v after %+v", before, after)
	}
	if n := h.count(events.StreamOrders, "orders."+id+".confirmed"); n != 1 {
		t.Fatalf("%d confirmed events, want 1", n)
	}
}

// seedOrder writes what an earlier version left of a reserved order: its
// created and reserved events and, if status is not empty, its order.<id>
// record (the decision of the versions before issue 8), and, with
// published, the final event it published after the record.
func seedOrder(t *testing.T, js jetstream.JetStream, id string, status order.Status, published bool) {
	t.Helper()
	ctx := context.Background()
	for _, name := range []string{events.StreamOrders, events.StreamInventory} {
		if _, err := events.EnsureStream(ctx, js, name, events.StreamOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	kv, err := store.EnsureBucket(ctx, js, 1)
	if err != nil {
		t.Fatal(err)
	}
	ord, err := events.NewPublisher(js, "order-service")
	if err != nil {
		t.Fatal(err)
	}
	inv, err := events.NewPublisher(js, "inventory-service")
	if err != nil {
		t.Fatal(err)
	}
	tp := trace.New().String()
	if _, err := ord.Publish(ctx, events.OrderCreated, id, tp, events.OrderCreatedData{
		OrderID: id, CustomerID: "c-42", Items: []events.Item{{SKU: "SKU-1", Quantity: 2}}, PaymentToken: "tok_visa", CreatedAt: time.Now().UTC(),
	}); err != nil {
		t.Fatal(err)
	}
	if _, err := inv.Publish(ctx, events.InventoryReserved, id, tp, reservedData(id)); err != nil {
		t.Fatal(err)
	}
	if status == "" {
		return
	}
	orders, err := store.NewOrders(kv, js)
	if err != nil {
		t.Fatal(err)
	}
	st, err := orders.Current(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	o := st.Order
	o.Status, o.UpdatedAt = status, time.Now().UTC()
	if status == order.StatusConfirmed {
		o.ChargeID = "ch_" + id
	} else {
		o.CancelReason, o.CancelDetail = order.ReasonTimeout, "no final outcome within 2m0s (was RESERVED)"
	}
	raw, _ := json.Marshal(o)
	if _, err := kv.Create(ctx, store.OrderKey(id), raw); err != nil {
		t.Fatal(err)
	}
	if !published {
		return
	}
	if status == order.StatusConfirmed {
		_, err = ord.Publish(ctx, events.OrderConfirmed, id, tp, events.OrderConfirmedData{OrderID: id, CustomerID: "c-42", TotalCents: 2598, Currency: "USD"})
	} else {
		_, err = ord.Publish(ctx, events.OrderCancelled, id, tp, events.OrderCancelledData{OrderID: id, CustomerID: "c-42", Reason: o.CancelReason, Detail: o.CancelDetail})
	}
	if err != nil {
		t.Fatal(err)
	}
}

// TestOrderRecordOfAnEarlierVersionIsHonoured: an earlier version decided
// an order by creating its order.<id> record, then published its final
// event. Its orders read as their records say, and one whose handler died
// between the two (the record stored, the event not published) gets its
// event published by the redelivered message: the record's decision, not
// a new one.
func TestOrderRecordOfAnEarlierVersionIsHonoured(t *testing.T) {
	h := startAfter(t, func(js jetstream.JetStream) {
		seedOrder(t, js, "old-crashed", order.StatusConfirmed, false)
		seedOrder(t, js, "old-done", order.StatusConfirmed, true)
		seedOrder(t, js, "old-undecided", "", false)
	})
	for _, id := range []string{"old-crashed", "old-done"} {
		if code, v := h.get(id); code != http.StatusOK || v.Status != "CONFIRMED" || *v.TotalCents != 2598 || len(v.Lines) != 1 {
			t.Fatalf("GET %s = %d %+v, want CONFIRMED as its record says", id, code, v)
		}
	}
	if n := h.count(events.StreamOrders, "orders.old-crashed.confirmed"); n != 0 {
		t.Fatalf("%d confirmed events before redelivery", n)
	}
	// The record says CONFIRMED: a decline now (not from the saga: payment
	// answers once) must not cancel it.
	h.mustPublish(h.pay, events.PaymentFailed, "old-crashed", events.PaymentFailedData{
		OrderID: "old-crashed", Reason: events.ReasonCardDeclined, AmountCents: 2598, Currency: "USD"})
	h.wantDeadLetter("order-payments", events.StreamPayments, h.lastSeq(events.StreamPayments), "refused (illegal_transition)")
	h.paid("old-crashed") // the delivery the crashed handler never acknowledged
	natstest.Eventually(t, "confirmation published", func() bool {
		return h.count(events.StreamOrders, "orders.old-crashed.confirmed") == 1
	})
	h.paid("old-done") // a redelivery: the event is there already
	h.waitAcked(events.StreamPayments, "order-payments", h.lastSeq(events.StreamPayments))
	for _, id := range []string{"old-crashed", "old-done"} {
		if n := h.count(events.StreamOrders, "orders."+id+".*"); n != 2 {
			t.Fatalf("order %s has %d events, want created and confirmed", id, n)
		}
		if _, v := h.get(id); v.Status != "CONFIRMED" {
			t.Fatalf("GET %s = %+v", id, v)
		}
	}
	// An order the earlier version left undecided is decided by its event.
	h.paid("old-undecided")
	h.waitStatus("old-undecided", "CONFIRMED")
	ctx := context.Background()
	kv, err := h.js.KeyValue(ctx, store.OrdersBucket)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := kv.Get(ctx, store.OrderKey("old-undecided")); !errors.Is(err, jetstream.ErrKeyNotFound) {
		t.Fatalf("order.old-undecided = %v, want no record", err)
	}
}

func TestIdempotencyKey(t *testing.T) {
	h := start(t)
	key := map[string]string{"Idempotency-Key": "checkout-7f3a"}
	status, _, out := h.do(http.MethodPost, "/orders", []byte(validBody), key)
	if status != http.StatusAccepted {
		t.Fatalf("first POST = %d %s", status, out)
	}
	var first created
	_ = json.Unmarshal(out, &first)

	// Same body, other key order and spacing: the same order.
	same := `{ "payment_token":"tok_visa", "items":[{"quantity":2,"sku":"SKU-1"}], "customer_id":"c-42" }`
	status, hdr, out := h.do(http.MethodPost, "/orders", []byte(same), key)
	var second created
	_ = json.Unmarshal(out, &second)
	if status != http.StatusAccepted || second.OrderID != first.OrderID || hdr.Get("Location") != "/orders/"+first.OrderID {
		t.Fatalf("replay = %d %s, want 202 with order %s", status, out, first.OrderID)
	}
	if n := h.count(events.StreamOrders, "orders."+first.OrderID+".created"); n != 1 {
		t.Fatalf("%d created events, want 1", n)
	}
	// A replay answers the order's current status.
	h.reserve(first.OrderID)
	h.waitStatus(first.OrderID, "RESERVED")
	_, _, out = h.do(http.MethodPost, "/orders", []byte(validBody), key)
	if err := json.Unmarshal(out, &second); err != nil || second.OrderID != first.OrderID || second.Status != "RESERVED" {
		t.Fatalf("replay after reservation = %s", out)
	}

	other := `{"customer_id":"c-42","items":[{"sku":"SKU-1","quantity":3}],"payment_token":"tok_visa"}`
	status, hdr, out = h.do(http.MethodPost, "/orders", []byte(other), key)
	wantProblem(t, status, hdr, out, http.StatusUnprocessableEntity, "idempotency-key-reused")

	status, hdr, out = h.do(http.MethodPost, "/orders", []byte(validBody), map[string]string{"Idempotency-Key": strings.Repeat("k", 256)})
	wantProblem(t, status, hdr, out, http.StatusBadRequest, "invalid-idempotency-key")
}

// TestIdempotentRetryAfterCrashBeforeIndex: a first attempt published the
// created event and died before listing the order under its customer; the
// retry with the same key answers that order and lists it. No claim is
// written anywhere: the key names the order.
func TestIdempotentRetryAfterCrashBeforeIndex(t *testing.T) {
	h := start(t)
	id := app.KeyedOrderID("retry-me")
	h.mustPublish(h.ord, events.OrderCreated, id, events.OrderCreatedData{
		OrderID: id, CustomerID: "c-42", Items: []events.Item{{SKU: "SKU-1", Quantity: 2}}, PaymentToken: "tok_visa",
		CreatedAt: time.Now().UTC(),
	})
	status, _, out := h.do(http.MethodPost, "/orders", []byte(validBody), map[string]string{"Idempotency-Key": "retry-me"})
	if status != http.StatusAccepted || !strings.Contains(string(out), `"`+id+`"`) {
		t.Fatalf("retry = %d %s, want 202 with order %s", status, out, id)
	}
	if n := h.count(events.StreamOrders, "orders."+id+".created"); n != 1 {
		t.Fatalf("%d created events, want 1", n)
	}
	_, _, out = h.do(http.MethodGet, "/orders?customer_id=c-42", nil, nil)
	if !strings.Contains(string(out), id) {
		t.Fatalf("the retried order is not listed: %s", out)
	}
	// The same key with another card is another request: refused.
	other := strings.Replace(validBody, "tok_visa", "tok_mastercard", 1)
	status, hdr, out := h.do(http.MethodPost, "/orders", []byte(other), map[string]string{"Idempotency-Key": "retry-me"})
	wantProblem(t, status, hdr, out, http.StatusUnprocessableEntity, "idempotency-key-reused")
}

// TestPendingOrderIsNotStored: POST /orders writes the created event and
// the customer index, not the order; nor does any later step: an order is
// its events.
func TestPendingOrderIsNotStored(t *testing.T) {
	h := start(t)
	id := h.create(validBody)
	h.waitStatus(id, "PENDING")
	ctx := context.Background()
	kv, err := h.js.KeyValue(ctx, store.OrdersBucket)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := kv.Get(ctx, store.OrderKey(id)); !errors.Is(err, jetstream.ErrKeyNotFound) {
		t.Fatalf("PENDING order stored (err = %v), want it read from its created event", err)
	}
	// Nor is a RESERVED one: the reservation is read from its event.
	h.reserve(id)
	v := h.waitStatus(id, "RESERVED")
	if v.TotalCents == nil || *v.TotalCents != 2598 || len(v.Lines) != 1 {
		t.Fatalf("reserved order = %+v, want its lines and total from inventory.%s.reserved", v, id)
	}
	if _, err := kv.Get(ctx, store.OrderKey(id)); !errors.Is(err, jetstream.ErrKeyNotFound) {
		t.Fatalf("RESERVED order stored (err = %v)", err)
	}
	// The decision is its final event; the order shows the reservation's
	// lines and total.
	h.paid(id)
	v = h.waitStatus(id, "CONFIRMED")
	if _, err := kv.Get(ctx, store.OrderKey(id)); !errors.Is(err, jetstream.ErrKeyNotFound) {
		t.Fatalf("CONFIRMED order stored (err = %v)", err)
	}
	if len(v.Lines) != 1 || *v.TotalCents != 2598 {
		t.Fatalf("confirmed order = %+v, want the reservation's lines and total", v)
	}
}

func TestBadRequests(t *testing.T) {
	h := start(t)
	tests := []struct {
		name       string
		method     string
		path       string
		body       string
		wantStatus int
		wantType   string
		wantErrors bool
	}{
		{name: "client sets a price", method: http.MethodPost, path: "/orders", wantStatus: 400, wantType: "invalid-request", wantErrors: true,
			body: `{"customer_id":"c","items":[{"sku":"S","quantity":1,"price_cents":1}],"payment_token":"t"}`},
		{name: "no items", method: http.MethodPost, path: "/orders", wantStatus: 400, wantType: "invalid-request", wantErrors: true,
			body: `{"customer_id":"c","items":[],"payment_token":"t"}`},
		{name: "missing fields", method: http.MethodPost, path: "/orders", wantStatus: 400, wantType: "invalid-request", wantErrors: true,
			body: `{"items":[{"sku":"S","quantity":0}]}`},
		{name: "shipping address without a city", method: http.MethodPost, path: "/orders", wantStatus: 400, wantType: "invalid-request", wantErrors: true,
			body: `{"customer_id":"c","items":[{"sku":"S","quantity":1}],"payment_token":"t","shipping_address":{"name":"A","line1":"1 Road","postal_code":"1","country":"FR"}}`},
		{name: "shipping address with a country that is not a code", method: http.MethodPost, path: "/orders", wantStatus: 400, wantType: "invalid-request", wantErrors: true,
			body: `{"customer_id":"c","items":[{"sku":"S","quantity":1}],"payment_token":"t","shipping_address":{"name":"A","line1":"1 Road","city":"Lyon","postal_code":"1","country":"France"}}`},
		{name: "not json", method: http.MethodPost, path: "/orders", body: `{nope`, wantStatus: 400, wantType: "invalid-request", wantErrors: true},
		{name: "unknown order", method: http.MethodGet, path: "/orders/no-such-order", wantStatus: 404, wantType: "order-not-found"},
		{name: "invalid order id", method: http.MethodGet, path: "/orders/bad.id", wantStatus: 400, wantType: "invalid-order-id"},
		{name: "list without customer", method: http.MethodGet, path: "/orders", wantStatus: 400, wantType: "missing-customer-id"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var body []byte
			if tt.body != "" {
				body = []byte(tt.body)
			}
			status, hdr, out := h.do(tt.method, tt.path, body, nil)
			p := wantProblem(t, status, hdr, out, tt.wantStatus, tt.wantType)
			if tt.wantErrors && len(p.Errors) == 0 {
				t.Fatalf("problem lists no errors: %s", out)
			}
		})
	}
}

func TestListByCustomer(t *testing.T) {
	h := start(t)
	if _, _, out := h.do(http.MethodGet, "/orders?customer_id=alice@example.com", nil, nil); strings.TrimSpace(string(out)) != `{"orders":[]}` {
		t.Fatalf("list on an empty store = %s", out)
	}
	var ids []string
	for i := range 3 {
		ids = append(ids, h.create(fmt.Sprintf(`{"customer_id":"alice@example.com","items":[{"sku":"SKU-%d","quantity":1}],"payment_token":"t"}`, i)))
	}
	h.create(`{"customer_id":"bob","items":[{"sku":"SKU-1","quantity":1}],"payment_token":"t"}`)
	h.reserve(ids[1])
	h.waitStatus(ids[1], "RESERVED")

	status, _, out := h.do(http.MethodGet, "/orders?customer_id=alice@example.com", nil, nil)
	var list struct {
		Orders []orderView `json:"orders"`
	}
	if err := json.Unmarshal(out, &list); status != http.StatusOK || err != nil {
		t.Fatalf("list = %d %s %v", status, out, err)
	}
	var got []string
	for _, o := range list.Orders {
		got = append(got, o.OrderID+":"+o.Status)
	}
	want := []string{ids[2] + ":PENDING", ids[1] + ":RESERVED", ids[0] + ":PENDING"}
	if strings.Join(got, ",") != strings.Join(want, ",") {
		t.Fatalf("list = %v, want newest first %v", got, want)
	}
	_, _, out = h.do(http.MethodGet, "/orders?customer_id=nobody", nil, nil)
	if strings.TrimSpace(string(out)) != `{"orders":[]}` {
		t.Fatalf("empty list = %s", out)
	}
}

// TestOrderMaterializedFromCreatedEvent covers an order known only by its
// created event (published before the POST died): it goes through the
// saga like any other.
func TestOrderMaterializedFromCreatedEvent(t *testing.T) {
	h := start(t)
	id := "crashed-post-1"
	// Recent: an order created long ago would be past its deadline.
	createdAt := time.Now().UTC().Truncate(time.Millisecond)
	h.mustPublish(h.ord, events.OrderCreated, id, events.OrderCreatedData{
		OrderID: id, CustomerID: "carol", Items: []events.Item{{SKU: "SKU-1", Quantity: 2}}, PaymentToken: "t", CreatedAt: createdAt,
	})
	code, v := h.get(id)
	if code != http.StatusOK || v.Status != "PENDING" || v.CustomerID != "carol" {
		t.Fatalf("GET before materialization = %d %+v", code, v)
	}
	h.reserve(id)
	v = h.waitStatus(id, "RESERVED")
	if *v.TotalCents != 2598 || !v.CreatedAt.Equal(createdAt) {
		t.Fatalf("materialized order = %+v", v)
	}
	h.paid(id)
	h.waitStatus(id, "CONFIRMED")
	if n := h.count(events.StreamOrders, "orders."+id+".confirmed"); n != 1 {
		t.Fatalf("%d confirmed events, want 1", n)
	}
}

// TestIndexWithoutOrderIsNotListed: POST /orders lists the order under its
// customer before it publishes the created event, so every order is listed;
// a POST that died between the two leaves an entry that names no order,
// and the list leaves it out.
func TestIndexWithoutOrderIsNotListed(t *testing.T) {
	h := start(t)
	ctx := context.Background()
	kv, _ := h.js.KeyValue(ctx, store.OrdersBucket)
	if _, err := kv.Create(ctx, store.CustomerPrefix("erin")+".never-published", []byte(`{"order_id":"never-published"}`)); err != nil {
		t.Fatal(err)
	}
	id := h.create(`{"customer_id":"erin","items":[{"sku":"SKU-1","quantity":1}],"payment_token":"t"}`)
	status, _, out := h.do(http.MethodGet, "/orders?customer_id=erin", nil, nil)
	if status != http.StatusOK || !strings.Contains(string(out), id) || strings.Contains(string(out), "never-published") {
		t.Fatalf("list = %d %s, want %s only", status, out, id)
	}
}

func TestPoisonEventsAreDeadLettered(t *testing.T) {
	h := start(t)
	ctx := context.Background()
	// Valid JSON, invalid schema: no envelope at all.
	ack, err := h.js.Publish(ctx, "inventory.x-1.rejected", []byte(`{"order_id":"x-1","reason":1.5}`))
	if err != nil {
		t.Fatal(err)
	}
	h.wantDeadLetter("order-inventory", events.StreamInventory, ack.Sequence, "invalid event")

	// A well-formed event about an order that never existed.
	h.mustPublish(h.inv, events.InventoryRejected, "ghost-1", events.InventoryRejectedData{OrderID: "ghost-1", Reason: events.ReasonInsufficientStock})
	ghost := h.lastSeq(events.StreamInventory)
	h.wantDeadLetter("order-inventory", events.StreamInventory, ghost, "order not found")

	// A well-formed event on a subject of another order.
	env, raw, err := h.pay.Build(events.PaymentSucceeded, "o-a", trace.New().String(),
		events.PaymentSucceededData{OrderID: "o-a", ChargeID: "ch", AmountCents: 1, Currency: "USD"})
	if err != nil {
		t.Fatal(err)
	}
	msg := nats.NewMsg("payments.o-b.succeeded")
	msg.Data = raw
	msg.Header.Set("Nats-Msg-Id", env.ID)
	pa, err := h.js.PublishMsg(ctx, msg)
	if err != nil {
		t.Fatal(err)
	}
	h.wantDeadLetter("order-payments", events.StreamPayments, pa.Sequence, "arrived on")

	// The poison did not block the consumers.
	id := h.create(validBody)
	h.reserve(id)
	h.waitStatus(id, "RESERVED")
	h.paid(id)
	h.waitStatus(id, "CONFIRMED")
}

func (h *harness) lastSeq(stream string) uint64 {
	h.t.Helper()
	s, err := h.js.Stream(context.Background(), stream)
	if err != nil {
		h.t.Fatal(err)
	}
	info, err := s.Info(context.Background())
	if err != nil {
		h.t.Fatal(err)
	}
	return info.State.LastSeq
}

func (h *harness) wantDeadLetter(durable, stream string, seq uint64, reason string) {
	h.t.Helper()
	m := natstest.DeadLetter(h.t, h.js, durable, stream, seq)
	if e := m.Header.Get(deadletter.HeaderError); !strings.Contains(e, reason) {
		h.t.Fatalf("Dlq-Error = %q, want it to mention %q", e, reason)
	}
}

func TestNATSDownAnswers503(t *testing.T) {
	h := start(t)
	h.in.ShutdownMayFail() // nothing can be drained with NATS gone
	h.nats.Stop()
	natstest.EventuallyNil(t, "/ready to fail while NATS is down", func() error {
		if status, _, out := h.do(http.MethodGet, "/ready", nil, nil); status != http.StatusServiceUnavailable {
			return fmt.Errorf("/ready = %d %s", status, out)
		}
		return nil
	})
	status, hdr, out := h.do(http.MethodPost, "/orders", []byte(validBody), nil)
	wantProblem(t, status, hdr, out, http.StatusServiceUnavailable, "unavailable")
	status, hdr, out = h.do(http.MethodGet, "/orders/some-id", nil, nil)
	wantProblem(t, status, hdr, out, http.StatusServiceUnavailable, "unavailable")
}

// TestConcurrentOutcomesConverge runs twenty orders through the saga at
// once, each payment published right after its reservation (the payment
// service charges a reservation it has read), so the consumers handle
// them concurrently: every order must end CONFIRMED with its lines and
// exactly one event. (A payment outcome ahead of its reservation is not
// from the saga and is refused: TestPaymentForAnOrderNeverReservedIsRefused.)
func TestConcurrentOutcomesConverge(t *testing.T) {
	h := start(t)
	var ids []string
	for range 20 {
		ids = append(ids, h.create(validBody))
	}
	var wg sync.WaitGroup
	for _, id := range ids {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for _, ev := range []struct {
				p    *events.Publisher
				typ  events.Type
				data any
			}{{h.inv, events.InventoryReserved, reservedData(id)}, {h.pay, events.PaymentSucceeded, paidData(id)}} {
				if _, err := ev.p.Publish(context.Background(), ev.typ, id, trace.New().String(), ev.data); err != nil {
					t.Error(err) // not Fatal: this is not the test goroutine
				}
			}
		}()
	}
	wg.Wait()
	if t.Failed() {
		t.FailNow()
	}
	for _, id := range ids {
		natstest.EventuallyNil(t, id+" confirmed with lines", func() error {
			if _, v := h.get(id); v.Status != "CONFIRMED" || len(v.Lines) != 1 || v.TotalCents == nil || *v.TotalCents != 2598 {
				return fmt.Errorf("order = %+v", v)
			}
			return nil
		})
		if n := h.count(events.StreamOrders, "orders."+id+".confirmed"); n != 1 {
			t.Fatalf("order %s has %d confirmed events, want 1", id, n)
		}
	}
}

// TestNoOrderRecordIsWritten (issue 8): an order is decided by its final
// event alone. A confirmed order stores two ORDERS events (created,
// confirmed) and one KV_orders message (its customer index entry), and a
// cancelled one likewise; no order.<id> record is written.
func TestNoOrderRecordIsWritten(t *testing.T) {
	h := start(t, withDeadline(time.Second))
	confirmed := h.create(validBody)
	h.reserve(confirmed)
	h.paid(confirmed)
	h.waitStatus(confirmed, "CONFIRMED")
	timedOut := h.create(validBody)
	created := h.lastSeq(events.StreamOrders)
	h.wantTimedOut(timedOut)
	h.waitAcked(events.StreamOrders, consumer.DeadlinesDurable, created) // both timers looked at for the last time
	for _, id := range []string{confirmed, timedOut} {
		if n := h.count(events.StreamOrders, "orders."+id+".*"); n != 2 {
			t.Errorf("order %s: %d ORDERS events, want created and its decision", id, n)
		}
		if n := h.count("KV_"+store.OrdersBucket, "$KV."+store.OrdersBucket+".*.*."+id); n != 1 {
			t.Errorf("order %s: %d KV_orders messages, want its index entry alone", id, n)
		}
	}
	if n := h.count("KV_"+store.OrdersBucket, "$KV."+store.OrdersBucket+"."+store.OrderKey(">")); n != 0 {
		t.Fatalf("%d order.<id> records written", n)
	}
}

// A shipping address (order.created and order.confirmed v2) goes from the
// request to the created event, the order, and the confirmation the
// customer is notified from.
func TestShippingAddressReachesTheConfirmation(t *testing.T) {
	h := start(t)
	want := events.Address{Name: "Ada Lovelace", Line1: "12 St James's Square", City: "London", PostalCode: "SW1Y 4JH", Country: "GB"}
	id := h.create(`{"customer_id":"c-42","items":[{"sku":"SKU-1","quantity":2}],"payment_token":"tok_visa",` +
		`"shipping_address":{"name":"Ada Lovelace","line1":"12 St James's Square","city":"London","postal_code":"SW1Y 4JH","country":"GB"}}`)
	created := h.last(events.StreamOrders, "orders."+id+".created")
	var cd events.OrderCreatedData
	if err := created.DecodeData(&cd); err != nil {
		t.Fatal(err)
	}
	if created.DataSchema != events.SchemaURI(events.OrderCreated, 2) || cd.ShippingAddress == nil || *cd.ShippingAddress != want {
		t.Fatalf("created event %s carries %+v, want v2 with %+v", created.DataSchema, cd.ShippingAddress, want)
	}
	h.reserve(id)
	h.paid(id)
	v := h.waitStatus(id, "CONFIRMED")
	if v.ShipTo == nil || *v.ShipTo != want {
		t.Fatalf("GET shows shipping address %+v, want %+v", v.ShipTo, want)
	}
	subject := "orders." + id + ".confirmed"
	natstest.Eventually(t, "confirmed event", func() bool { return h.count(events.StreamOrders, subject) == 1 })
	confirmed := h.last(events.StreamOrders, subject)
	var d events.OrderConfirmedData
	if err := confirmed.DecodeData(&d); err != nil {
		t.Fatal(err)
	}
	if confirmed.DataSchema != events.SchemaURI(events.OrderConfirmed, 2) || d.ShippingAddress == nil || *d.ShippingAddress != want {
		t.Fatalf("confirmed event %s carries %+v, want v2 with %+v", confirmed.DataSchema, d.ShippingAddress, want)
	}
}

func TestServesItsOpenAPIDocument(t *testing.T) {
	t.Parallel()
	apitest.ServesDocument(t, start(t).in.URL, openapi.Order)
}
