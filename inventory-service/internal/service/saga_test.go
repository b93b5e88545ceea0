package service_test

import (
	"net/http"
	"reflect"
	"strings"
	"testing"

	"github.com/eventshop/inventory-service/internal/config"
	"github.com/eventshop/inventory-service/internal/httpapi"
	"github.com/eventshop/inventory-service/internal/stock"
	"github.com/eventshop/shared/events"
	"github.com/eventshop/shared/platform/deadletter"
	"github.com/eventshop/shared/platform/trace"
)

func TestCreatedReservesPricedLines(t *testing.T) {
	t.Parallel()
	h := start(t)
	h.setStock("MUG", "Mug", 1299, "USD", 10)
	h.setStock("TEE", "T-shirt", 2000, "USD", 5)

	tp := h.created("o-1", items("MUG", 2, "TEE", 1, "MUG", 1))
	env := h.event(events.InventoryReserved, "o-1")
	got := decode[events.InventoryReservedData](t, env)
	want := events.InventoryReservedData{OrderID: "o-1", Currency: "USD", TotalCents: 3*1299 + 2000, Lines: []events.PricedLine{
		{SKU: "MUG", Name: "Mug", Quantity: 3, UnitPriceCents: 1299, LineTotalCents: 3897},
		{SKU: "TEE", Name: "T-shirt", Quantity: 1, UnitPriceCents: 2000, LineTotalCents: 2000},
	}}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("reserved = %+v, want %+v", got, want)
	}
	if env.Source != "inventory-service" || env.TraceID() != trace.TraceID(tp) {
		t.Errorf("envelope source %q trace %q, want inventory-service in trace %q", env.Source, env.TraceID(), trace.TraceID(tp))
	}
	code, body := h.do(http.MethodGet, "/inventory/MUG", "", "")
	if it := jsonBody[httpapi.Item](t, body); code != 200 || it.Available != 7 || it.Reserved != 3 || it.Sold != 0 {
		t.Fatalf("MUG after reserve = %d %s", code, body)
	}
	if it := h.item("TEE"); it.Available != 4 || it.Reserved != 1 {
		t.Fatalf("TEE after reserve = %+v", it)
	}
	// A restock sets what is for sale and leaves the reservation alone.
	h.setStock("MUG", "Mug", 1299, "USD", 50)
	if it := h.item("MUG"); it.Available != 50 || it.Reserved != 3 {
		t.Fatalf("MUG after restock = %+v", it)
	}
	_, metrics := h.do(http.MethodGet, "/metrics", "", "")
	if !strings.Contains(metrics, `eventshop_inventory_reservations_total{outcome="reserved",service="inventory-service"} 1`) {
		t.Errorf("metrics do not count the reservation:\n%s", grep(metrics, "eventshop_inventory"))
	}
}

func grep(text, substr string) string {
	var out []string
	for _, l := range strings.Split(text, "\n") {
		if strings.Contains(l, substr) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}

func TestCreatedRejections(t *testing.T) {
	t.Parallel()
	h := start(t)
	h.setStock("MUG", "Mug", 1299, "USD", 5)
	h.setStock("TEE", "T-shirt", 2000, "USD", 1)
	h.setStock("CAP", "Cap", 900, "EUR", 9)
	before := map[string]stock.Item{"MUG": h.item("MUG"), "TEE": h.item("TEE"), "CAP": h.item("CAP")}

	tests := []struct {
		name  string
		id    string
		lines []events.Item
		want  events.InventoryRejectedData
	}{
		{name: "unknown sku", id: "o-unknown", lines: items("MUG", 1, "NOPE", 1),
			want: events.InventoryRejectedData{OrderID: "o-unknown", Reason: events.ReasonUnknownSKU, SKU: "NOPE", Detail: "sku NOPE is not in the catalogue"}},
		{name: "insufficient stock", id: "o-short", lines: items("MUG", 6),
			want: events.InventoryRejectedData{OrderID: "o-short", Reason: events.ReasonInsufficientStock, SKU: "MUG", Detail: "want 6, available 5"}},
		{name: "second line short reserves nothing", id: "o-second", lines: items("MUG", 2, "TEE", 2),
			want: events.InventoryRejectedData{OrderID: "o-second", Reason: events.ReasonInsufficientStock, SKU: "TEE", Detail: "want 2, available 1"}},
		{name: "merged duplicate lines are short", id: "o-dup", lines: items("TEE", 1, "TEE", 1),
			want: events.InventoryRejectedData{OrderID: "o-dup", Reason: events.ReasonInsufficientStock, SKU: "TEE", Detail: "want 2, available 1"}},
		{name: "currencies differ", id: "o-fx", lines: items("MUG", 1, "CAP", 1),
			want: events.InventoryRejectedData{OrderID: "o-fx", Reason: events.ReasonCurrencyMismatch, SKU: "CAP", Detail: "sku CAP is priced in EUR, sku MUG in USD"}},
	}
	for _, tt := range tests {
		h.created(tt.id, tt.lines)
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := decode[events.InventoryRejectedData](t, h.event(events.InventoryRejected, tt.id))
			if got != tt.want {
				t.Errorf("rejected = %+v, want %+v", got, tt.want)
			}
			if r, err := h.reservation(tt.id); err != nil || r.Status != stock.StatusRejected {
				t.Errorf("reservation = %+v, %v; want rejected", r, err)
			}
		})
	}
	h.settled()
	if n := h.count("inventory.*.reserved"); n != 0 {
		t.Errorf("%d reserved events, want 0", n)
	}
	for sku, b := range before {
		if it := h.item(sku); it.Available != b.Available || it.Reserved != 0 || it.Sold != 0 {
			t.Errorf("%s = %+v, want untouched %+v", sku, it, b)
		}
	}
}

func TestCancelledReleases(t *testing.T) {
	t.Parallel()
	h := start(t)
	h.setStock("MUG", "Mug", 1299, "USD", 5)
	h.setStock("TEE", "T-shirt", 2000, "USD", 5)
	h.created("o-1", items("MUG", 2, "TEE", 3))
	h.event(events.InventoryReserved, "o-1")

	h.cancelled("o-1", events.ReasonPaymentDeclined)
	got := decode[events.InventoryReleasedData](t, h.event(events.InventoryReleased, "o-1"))
	want := events.InventoryReleasedData{OrderID: "o-1", Lines: items("MUG", 2, "TEE", 3)}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("released = %+v, want %+v", got, want)
	}
	// The cancel delivered again changes nothing.
	h.redeliver(events.OrderCancelled, "o-1", events.OrderCancelledData{OrderID: "o-1", CustomerID: "c-1", Reason: events.ReasonPaymentDeclined})
	h.settled()
	for _, sku := range []string{"MUG", "TEE"} {
		if it := h.item(sku); it.Available != 5 || it.Reserved != 0 || it.Sold != 0 {
			t.Errorf("%s after release = %+v, want 5 available", sku, it)
		}
	}
	if r, _ := h.reservation("o-1"); r.Status != stock.StatusReleased {
		t.Errorf("reservation = %s, want released", r.Status)
	}
	if n := h.count("inventory.o-1.released"); n != 1 {
		t.Errorf("%d released events, want 1", n)
	}
}

func TestConfirmedCommits(t *testing.T) {
	t.Parallel()
	h := start(t)
	h.setStock("MUG", "Mug", 1299, "USD", 5)
	h.created("o-1", items("MUG", 2))
	h.event(events.InventoryReserved, "o-1")

	h.confirmed("o-1", 2598, "USD")
	got := decode[events.InventoryCommittedData](t, h.event(events.InventoryCommitted, "o-1"))
	if want := (events.InventoryCommittedData{OrderID: "o-1", Lines: items("MUG", 2)}); !reflect.DeepEqual(got, want) {
		t.Fatalf("committed = %+v, want %+v", got, want)
	}
	h.redeliver(events.OrderConfirmed, "o-1", events.OrderConfirmedData{OrderID: "o-1", CustomerID: "c-1", TotalCents: 2598, Currency: "USD"})
	// A late cancel of a sold order must not put its units back.
	h.cancelled("o-1", events.ReasonTimeout)
	h.settled()
	if it := h.item("MUG"); it.Available != 3 || it.Reserved != 0 || it.Sold != 2 {
		t.Fatalf("MUG after commit = %+v, want 3 available, 2 sold", it)
	}
	// The commit wrote the record only; readers see the units sold all the same.
	want := httpapi.Item{SKU: "MUG", Name: "Mug", PriceCents: 1299, Currency: "USD", Available: 3, Reserved: 0, Sold: 2}
	if code, body := h.do(http.MethodGet, "/inventory/MUG", "", ""); code != http.StatusOK || jsonBody[httpapi.Item](t, body) != want {
		t.Fatalf("GET /inventory/MUG = %d %s, want %+v", code, body, want)
	}
	if code, body := h.do(http.MethodGet, "/inventory", "", ""); code != http.StatusOK || !reflect.DeepEqual(jsonBody[httpapi.List](t, body).Items, []httpapi.Item{want}) {
		t.Fatalf("GET /inventory = %d %s, want [%+v]", code, body, want)
	}
	// A restock sets what is for sale next to the sold units, not on top
	// of units the stored item still counts as reserved.
	h.setStock("MUG", "Mug", 1299, "USD", 10)
	if it := h.item("MUG"); it.Available != 10 || it.Reserved != 0 || it.Sold != 2 {
		t.Fatalf("MUG after restock = %+v, want 10 available, 2 sold", it)
	}
	if it, _, err := h.in.Service.Store().Item(t.Context(), "MUG"); err != nil || it.Reserved != 0 || len(it.Marks) != 0 {
		t.Fatalf("stored MUG after restock = %+v, %v; want o-1 resolved by the write", it, err)
	}
	if n := h.count("inventory.o-1.*"); n != 2 {
		t.Errorf("%d events about o-1, want reserved + committed", n)
	}
}

func TestRedeliveredCreatedNeverReservesTwice(t *testing.T) {
	t.Parallel()
	h := start(t)
	h.setStock("MUG", "Mug", 1299, "USD", 5)

	// Accepted order, delivered three times.
	data := createdData("o-1", items("MUG", 2))
	h.redeliver(events.OrderCreated, "o-1", data)
	h.redeliver(events.OrderCreated, "o-1", data)
	h.redeliver(events.OrderCreated, "o-1", data)
	h.event(events.InventoryReserved, "o-1")

	// Rejected order, delivered again after a restock: the decision holds.
	h.created("o-2", items("MUG", 4))
	h.event(events.InventoryRejected, "o-2")
	h.setStock("MUG", "Mug", 1299, "USD", 100)
	h.redeliver(events.OrderCreated, "o-2", createdData("o-2", items("MUG", 4)))
	h.settled()

	if it := h.item("MUG"); it.Reserved != 2 || it.Available != 100 {
		t.Fatalf("MUG = %+v, want 2 reserved once", it)
	}
	if n := h.count("inventory.*.reserved"); n != 1 {
		t.Errorf("%d reserved events, want 1", n)
	}
	if n := h.count("inventory.o-2.*"); n != 1 {
		t.Errorf("%d events about o-2, want the one rejection", n)
	}
}

func TestCancelledBeforeCreatedIsVoid(t *testing.T) {
	t.Parallel()
	h := start(t)
	h.setStock("MUG", "Mug", 1299, "USD", 5)

	h.cancelled("o-late", events.ReasonTimeout)
	h.settled()
	if r, err := h.reservation("o-late"); err != nil || r.Status != stock.StatusVoid {
		t.Fatalf("reservation = %+v, %v; want void", r, err)
	}
	h.created("o-late", items("MUG", 1))
	h.settled()
	if it := h.item("MUG"); it.Available != 5 || it.Reserved != 0 {
		t.Fatalf("MUG = %+v, want untouched", it)
	}
	if n := h.count("inventory.o-late.*"); n != 0 {
		t.Fatalf("%d events about the void order, want 0", n)
	}
}

func TestPoisonEventsAreDeadLettered(t *testing.T) {
	t.Parallel()
	h := start(t, func(c *config.Config) { c.ConsumerMaxDeliver = 2 })
	h.setStock("MUG", "Mug", 1299, "USD", 5)

	tests := []struct {
		name      string
		send      func()
		wantError string
	}{
		{name: "not json", wantError: "not JSON", send: func() {
			if _, err := h.js.Publish(t.Context(), "orders.o-bad.created", []byte("{nope")); err != nil {
				t.Fatal(err)
			}
		}},
		{name: "schema-invalid data", wantError: "/items", send: func() {
			env, raw, err := h.pub.Build(events.OrderCreated, "o-empty", trace.New().String(), createdData("o-empty", items("MUG", 1)))
			if err != nil {
				t.Fatal(err)
			}
			bad := strings.Replace(string(raw), string(env.Data), `{"order_id":"o-empty","customer_id":"c","items":[],"payment_token":"t","created_at":"2026-11-23T10:00:00Z"}`, 1)
			if _, err := h.js.Publish(t.Context(), "orders.o-empty.created", []byte(bad)); err != nil {
				t.Fatal(err)
			}
		}},
		{name: "event on the wrong subject", wantError: "arrived on orders.o-x.cancelled", send: func() {
			_, raw, err := h.pub.Build(events.OrderCreated, "o-x", trace.New().String(), createdData("o-x", items("MUG", 1)))
			if err != nil {
				t.Fatal(err)
			}
			if _, err := h.js.Publish(t.Context(), "orders.o-x.cancelled", raw); err != nil {
				t.Fatal(err)
			}
		}},
		{name: "confirmed after release", wantError: "invalid reservation transition", send: func() {
			h.created("o-rel", items("MUG", 1))
			h.event(events.InventoryReserved, "o-rel")
			h.cancelled("o-rel", events.ReasonPaymentDeclined)
			h.event(events.InventoryReleased, "o-rel")
			h.confirmed("o-rel", 1299, "USD")
		}},
		{name: "confirmed with no reservation gives up after MaxDeliver", wantError: "gave up after 2 deliveries", send: func() {
			h.confirmed("o-ghost", 100, "USD")
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.send()
			m := h.deadLetter(h.lastOrdersSeq())
			if got := m.Header.Get(deadletter.HeaderError); !strings.Contains(got, tt.wantError) {
				t.Fatalf("%s = %q, want it to mention %q", deadletter.HeaderError, got, tt.wantError)
			}
		})
	}
	h.settled()
	if it := h.item("MUG"); it.Available != 5 || it.Reserved != 0 || it.Sold != 0 {
		t.Fatalf("MUG = %+v, want untouched", it)
	}
}
