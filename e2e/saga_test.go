package e2e

import (
	"context"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/eventshop/shared/api"
	"github.com/eventshop/shared/events"
	"github.com/eventshop/tools/loadgen"
)

var (
	confirmedTypes = []string{"shop.order.created", "shop.inventory.reserved", "shop.payment.succeeded",
		"shop.order.confirmed", "shop.inventory.committed", "shop.notification.sent"}
	rejectedTypes = []string{"shop.order.created", "shop.inventory.rejected", "shop.order.cancelled", "shop.notification.sent"}
	declinedTypes = []string{"shop.order.created", "shop.inventory.reserved", "shop.payment.failed",
		"shop.order.cancelled", "shop.inventory.released", "shop.notification.sent"}
)

// TestSaga runs the saga scenarios in order against one running system; the
// last one checks the audit trail of everything before it.
func TestSaga(t *testing.T) {
	t.Run("successful order", testConfirmed)
	t.Run("a shipping address reaches the customer's confirmation", testShippingAddress)
	t.Run("unknown SKU", testUnknownSKU)
	t.Run("insufficient stock", testInsufficientStock)
	t.Run("declined card releases stock", testDeclined)
	t.Run("idempotent retry", testIdempotentRetry)
	t.Run("bad input gets problem details", testBadInput)
	t.Run("parallel orders for the last units never oversell", testNoOversell)
	t.Run("gateway outage waits then completes with one charge", testGatewayOutage)
	t.Run("services killed mid-flow lose nothing", testKillMidFlow)
	t.Run("graceful restart drains in-flight work", testGracefulRestart)
	t.Run("poison events are dead-lettered once with the reason", testPoisonIsDeadLettered)
	t.Run("a load mix keeps every business invariant", testLoadMixKeepsInvariants)
	t.Run("dead letters are listed, replayed and discarded by an operator", testDeadLetterOperations)
	t.Run("a payment after the order's deadline is refunded", testLatePaymentIsRefunded)
	t.Run("a failing receiver is retried on schedule, then notified once", testRetryScheduleRedelivers)
	t.Run("audit chain verifies and holds every event once", testAudit)
}

func testConfirmed(t *testing.T) {
	sku := uniq("MUG")
	putSKU(t, sku, 1299, 100)
	id := postOrder(t, api.CreateOrderRequest{CustomerID: uniq("c"), Items: []api.Item{{SKU: sku, Quantity: 2}}, PaymentToken: "tok_visa"}, uniq("key"))
	o := waitFinal(t, id, 20*time.Second)
	checkSaga(t, o, "CONFIRMED", confirmedTypes...)
	if o.TotalCents == nil || *o.TotalCents != 2598 || o.Currency != "USD" {
		t.Errorf("total = %v %s, want 2598 USD", o.TotalCents, o.Currency)
	}
	eventually(t, 10*time.Second, "stock committed", func() bool {
		s := getSKU(t, sku)
		return s.Available == 98 && s.Reserved == 0 && s.Sold == 2
	})
}

// testShippingAddress: the address of the request travels in the v2
// events (order.created, order.confirmed) to the confirmation the customer
// is sent.
func testShippingAddress(t *testing.T) {
	sku := uniq("MAP")
	putSKU(t, sku, 500, 10)
	to := &api.ShippingAddress{Name: "Ada Lovelace", Line1: "12 St James's Square", City: "London", PostalCode: "SW1Y 4JH", Country: "GB"}
	id := postOrder(t, api.CreateOrderRequest{CustomerID: uniq("c"), Items: []api.Item{{SKU: sku, Quantity: 1}}, PaymentToken: "tok_visa", ShippingAddress: to}, uniq("key"))
	o := waitFinal(t, id, 20*time.Second)
	checkSaga(t, o, "CONFIRMED", confirmedTypes...)
	if o.ShippingAddress == nil || *o.ShippingAddress != *to {
		t.Errorf("GET /orders/%s shipping address = %+v, want %+v", id, o.ShippingAddress, to)
	}
	n := notifications(t, id)
	if shipTo := n[0].Payload.ShippingAddress; shipTo == nil || *shipTo != *to {
		t.Errorf("the confirmation sent to the customer says it ships to %+v, want %+v", shipTo, to)
	}
}

func testUnknownSKU(t *testing.T) {
	id := postOrder(t, api.CreateOrderRequest{CustomerID: uniq("c"), Items: []api.Item{{SKU: uniq("NOPE"), Quantity: 1}}, PaymentToken: "tok_visa"}, "")
	o := waitFinal(t, id, 20*time.Second)
	if o.CancelReason != "unknown_sku" {
		t.Errorf("cancel reason = %q, want unknown_sku", o.CancelReason)
	}
	checkSaga(t, o, "CANCELLED", rejectedTypes...)
}

func testInsufficientStock(t *testing.T) {
	a, b := uniq("A"), uniq("B")
	putSKU(t, a, 100, 10)
	putSKU(t, b, 200, 1)
	id := postOrder(t, api.CreateOrderRequest{CustomerID: uniq("c"), Items: []api.Item{{SKU: a, Quantity: 3}, {SKU: b, Quantity: 2}}, PaymentToken: "tok_visa"}, "")
	o := waitFinal(t, id, 20*time.Second)
	if o.CancelReason != "insufficient_stock" {
		t.Errorf("cancel reason = %q, want insufficient_stock", o.CancelReason)
	}
	checkSaga(t, o, "CANCELLED", rejectedTypes...)
	// All-or-nothing: the line that fitted was not reserved either.
	if s := getSKU(t, a); s.Available != 10 || s.Reserved != 0 {
		t.Errorf("stock of %s = %+v, want untouched 10/0", a, s)
	}
}

func testDeclined(t *testing.T) {
	sku := uniq("HAT")
	putSKU(t, sku, 500, 5)
	id := postOrder(t, api.CreateOrderRequest{CustomerID: uniq("c"), Items: []api.Item{{SKU: sku, Quantity: 2}}, PaymentToken: "tok_chargeDeclined"}, "")
	o := waitFinal(t, id, 20*time.Second)
	if o.CancelReason != "payment_declined" {
		t.Errorf("cancel reason = %q, want payment_declined", o.CancelReason)
	}
	checkSaga(t, o, "CANCELLED", declinedTypes...)
	eventually(t, 10*time.Second, "stock released", func() bool {
		s := getSKU(t, sku)
		return s.Available == 5 && s.Reserved == 0 && s.Sold == 0
	})
}

func testIdempotentRetry(t *testing.T) {
	sku := uniq("PEN")
	putSKU(t, sku, 150, 10)
	cust := uniq("c")
	req := api.CreateOrderRequest{CustomerID: cust, Items: []api.Item{{SKU: sku, Quantity: 1}}, PaymentToken: "tok_visa"}
	key := uniq("key")
	first := postOrder(t, req, key)
	second := postOrder(t, req, key)
	if first != second {
		t.Fatalf("same key and body gave orders %s and %s", first, second)
	}
	o := waitFinal(t, first, 20*time.Second)
	if third := postOrder(t, req, key); third != first {
		t.Fatalf("retry after completion gave %s, want %s", third, first)
	}
	var p api.Problem
	changed := req
	changed.Items = []api.Item{{SKU: sku, Quantity: 2}}
	code, hdr := call(t, http.MethodPost, sys.urls["order-service"]+"/orders", changed, map[string]string{"Idempotency-Key": key}, &p)
	if code != http.StatusUnprocessableEntity || hdr.Get("Content-Type") != "application/problem+json" {
		t.Fatalf("same key, other body = %d %s %+v; want 422 problem+json", code, hdr.Get("Content-Type"), p)
	}
	checkSaga(t, o, "CONFIRMED", confirmedTypes...)
	var list api.OrderList
	if code, _ := call(t, http.MethodGet, sys.urls["order-service"]+"/orders?customer_id="+cust, nil, nil, &list); code != http.StatusOK || len(list.Orders) != 1 {
		t.Fatalf("customer's orders = %d %+v, want exactly one", code, list.Orders)
	}
	if s := getSKU(t, sku); s.Sold+s.Reserved != 1 {
		t.Errorf("stock %+v: the retried order was fulfilled more than once", s)
	}
}

func testBadInput(t *testing.T) {
	tests := []struct {
		name string
		body any
		want int
	}{
		{"empty items", map[string]any{"customer_id": "c", "items": []any{}, "payment_token": "tok_visa"}, http.StatusBadRequest},
		{"client sets a price", map[string]any{"customer_id": "c", "items": []any{map[string]any{"sku": "S", "quantity": 1, "price_cents": 1}}, "payment_token": "tok_visa"}, http.StatusBadRequest},
		{"not json", "}{", http.StatusBadRequest},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var p api.Problem
			code, hdr := call(t, http.MethodPost, sys.urls["order-service"]+"/orders", tt.body, nil, &p)
			if code != tt.want || hdr.Get("Content-Type") != "application/problem+json" || p.Status != tt.want || p.Type == "" {
				t.Fatalf("got %d %s %+v, want %d problem+json", code, hdr.Get("Content-Type"), p, tt.want)
			}
		})
	}
	if _, code := getOrder(t, "no-such-order"); code != http.StatusNotFound {
		t.Errorf("GET unknown order = %d, want 404", code)
	}
	code, _ := call(t, http.MethodPut, sys.urls["inventory-service"]+"/inventory/X", map[string]any{"name": "x", "price_cents": 1, "currency": "USD", "available": 1}, nil, nil)
	if code != http.StatusUnauthorized {
		t.Errorf("PUT /inventory without token = %d, want 401", code)
	}
}

func testNoOversell(t *testing.T) {
	const units, orders = 5, 24
	sku := uniq("LAST")
	putSKU(t, sku, 1000, units)
	ids := make([]string, orders)
	var wg sync.WaitGroup
	for i := range orders {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ids[i] = postOrder(t, api.CreateOrderRequest{CustomerID: uniq("c"), Items: []api.Item{{SKU: sku, Quantity: 1}}, PaymentToken: "tok_visa"}, "")
		}()
	}
	wg.Wait()
	confirmed := 0
	for _, id := range ids {
		o := waitFinal(t, id, 30*time.Second)
		switch {
		case o.Status == "CONFIRMED":
			confirmed++
			if n := successfulCharges(t, id); n != 1 {
				t.Errorf("confirmed order %s charged %d times", id, n)
			}
		case o.CancelReason != "insufficient_stock":
			t.Errorf("order %s cancelled for %q, want insufficient_stock", id, o.CancelReason)
		}
	}
	if confirmed != units {
		t.Fatalf("%d orders confirmed for %d units", confirmed, units)
	}
	eventually(t, 10*time.Second, "all units sold", func() bool {
		s := getSKU(t, sku)
		return s.Available == 0 && s.Reserved == 0 && s.Sold == units
	})
}

func testGatewayOutage(t *testing.T) {
	sku := uniq("OUT")
	putSKU(t, sku, 250, 10)
	setGateway(t, "down")
	defer setGateway(t, "healthy")
	var ids []string
	for range 3 {
		ids = append(ids, postOrder(t, api.CreateOrderRequest{CustomerID: uniq("c"), Items: []api.Item{{SKU: sku, Quantity: 1}}, PaymentToken: "tok_visa"}, ""))
	}
	// While the gateway is down the orders wait, reserved, and are never
	// turned into failed payments.
	for _, id := range ids {
		eventually(t, 20*time.Second, "order "+id+" reserved", func() bool {
			o, _ := getOrder(t, id)
			return o.Status == "RESERVED"
		})
	}
	// The breaker opened, and the payment service paused its gateway
	// consumers on the server: the outage costs no deliveries.
	js, err := jetstream.New(sys.adminConn(t))
	if err != nil {
		t.Fatal(err)
	}
	eventually(t, 20*time.Second, "payment-inventory paused while the breaker is open", func() bool {
		cons, err := js.Consumer(context.Background(), "INVENTORY", "payment-inventory")
		if err != nil {
			return false
		}
		info, err := cons.Info(context.Background())
		return err == nil && info.Paused
	})
	time.Sleep(2 * time.Second)
	for _, id := range ids {
		if o, _ := getOrder(t, id); o.Status != "RESERVED" {
			t.Fatalf("order %s = %s during the outage, want RESERVED (waiting)", id, o.Status)
		}
	}
	setGateway(t, "healthy")
	for _, id := range ids {
		o := waitFinal(t, id, 30*time.Second)
		checkSaga(t, o, "CONFIRMED", confirmedTypes...)
	}
}

func testKillMidFlow(t *testing.T) {
	sku := uniq("KILL")
	putSKU(t, sku, 100, 1000)
	var ids []string
	for range 20 {
		ids = append(ids, postOrder(t, api.CreateOrderRequest{CustomerID: uniq("c"), Items: []api.Item{{SKU: sku, Quantity: 1}}, PaymentToken: "tok_visa"}, ""))
	}
	for _, name := range []string{"inventory-service", "payment-service", "order-service"} {
		sys.restart(t, name, true)
		for range 5 {
			ids = append(ids, postOrder(t, api.CreateOrderRequest{CustomerID: uniq("c"), Items: []api.Item{{SKU: sku, Quantity: 1}}, PaymentToken: "tok_visa"}, ""))
		}
	}
	for _, id := range ids {
		o := waitFinal(t, id, 60*time.Second)
		if o.Status != "CONFIRMED" {
			t.Errorf("order %s = %s (%s), want CONFIRMED", id, o.Status, o.CancelReason)
		}
		if n := successfulCharges(t, id); n != 1 {
			t.Errorf("order %s charged %d times", id, n)
		}
	}
	eventually(t, 20*time.Second, "stock conserved", func() bool {
		s := getSKU(t, sku)
		return s.Available+s.Reserved+s.Sold == 1000 && s.Sold == int64(len(ids)) && s.Reserved == 0
	})
	for _, id := range ids {
		eventually(t, 20*time.Second, "notification for "+id, func() bool { return len(notifications(t, id)) == 1 })
	}
}

func testGracefulRestart(t *testing.T) {
	sku := uniq("TERM")
	putSKU(t, sku, 100, 100)
	var ids []string
	for range 10 {
		ids = append(ids, postOrder(t, api.CreateOrderRequest{CustomerID: uniq("c"), Items: []api.Item{{SKU: sku, Quantity: 1}}, PaymentToken: "tok_visa"}, ""))
	}
	for _, name := range []string{"notification-service", "audit-service", "inventory-service"} {
		sys.restart(t, name, false)
	}
	for _, id := range ids {
		checkSaga(t, waitFinal(t, id, 30*time.Second), "CONFIRMED", confirmedTypes...)
	}
}

func testAudit(t *testing.T) {
	js, err := jetstream.New(sys.adminConn(t))
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	var total uint64
	for _, name := range events.DomainStreams {
		s, err := js.Stream(ctx, name)
		if err != nil {
			t.Fatal(err)
		}
		info, err := s.Info(ctx)
		if err != nil {
			t.Fatal(err)
		}
		total += info.State.Msgs
	}
	poison, err := loadgen.AuditDeadLetters(ctx, js)
	if err != nil {
		t.Fatal(err)
	}
	total -= poison // dead-lettered poison is in the streams but never audited
	var v api.Verification
	eventually(t, 20*time.Second, "audit caught up", func() bool {
		code, _ := call(t, http.MethodGet, sys.urls["audit-service"]+"/audit/verify", nil, nil, &v)
		return code == http.StatusOK && uint64(v.Entries) >= total
	})
	if !v.OK || uint64(v.Entries) != total || len(v.Head) != 64 {
		t.Fatalf("audit verify = %+v; want ok with exactly %d entries (one per valid event)", v, total)
	}
	// Every entry is a distinct event: the blocks of the AUDIT stream hold
	// each event once.
	audited, entries, err := loadgen.AuditedEvents(ctx, js)
	if err != nil {
		t.Fatal(err)
	}
	if uint64(len(audited)) != total || uint64(entries) != total {
		t.Fatalf("audit holds %d distinct events in %d entries, want %d", len(audited), entries, total)
	}
	for id, n := range audited {
		if n != 1 {
			t.Fatalf("audit holds event %s %d times", id, n)
		}
	}
	// One block per group commit, not one message per event.
	s, err := js.Stream(ctx, events.StreamAudit)
	if err != nil {
		t.Fatal(err)
	}
	info, err := s.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if info.State.Msgs >= total {
		t.Fatalf("AUDIT holds %d messages for %d events, want fewer (blocks)", info.State.Msgs, total)
	}
}
