package store_test

import (
	"context"
	"testing"
	"time"

	"go.opentelemetry.io/otel/attribute"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	"github.com/eventshop/order-service/internal/order"
	"github.com/eventshop/order-service/internal/store"
	"github.com/eventshop/shared/events"
	"github.com/eventshop/shared/platform/natstest"
	tp "github.com/eventshop/shared/platform/trace"
)

// ordersWithOneOrder is the store over a real nats-server holding order
// o-1, placed and reserved.
func ordersWithOneOrder(t *testing.T) *store.Orders {
	t.Helper()
	_, js := natstest.Connect(t, natstest.Start(t))
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
	if _, err := ord.Publish(ctx, events.OrderCreated, "o-1", tp.New().String(), events.OrderCreatedData{
		OrderID: "o-1", CustomerID: "c-42", Items: []events.Item{{SKU: "SKU-1", Quantity: 2}}, PaymentToken: "tok_visa",
		CreatedAt: time.Now().UTC(),
	}); err != nil {
		t.Fatal(err)
	}
	if _, err := inv.Publish(ctx, events.InventoryReserved, "o-1", tp.New().String(), events.InventoryReservedData{
		OrderID: "o-1", Lines: []events.PricedLine{{SKU: "SKU-1", Name: "Mug", Quantity: 2, UnitPriceCents: 1299, LineTotalCents: 2598}},
		TotalCents: 2598, Currency: "USD",
	}); err != nil {
		t.Fatal(err)
	}
	s, err := store.NewOrders(kv, js)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func attrs(s sdktrace.ReadOnlySpan) map[attribute.Key]string {
	out := map[attribute.Key]string{}
	for _, kv := range s.Attributes() {
		out[kv.Key] = kv.Value.Emit()
	}
	return out
}

// TestReadsAndWritesAreChildSpans: inside a handler's recorded span, each
// stream read and KV operation of the store is a CLIENT child of it,
// naming what it read and what it found.
func TestReadsAndWritesAreChildSpans(t *testing.T) {
	t.Parallel()
	orders := ordersWithOneOrder(t)
	rec := tracetest.NewSpanRecorder()
	provider := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec))
	ctx, handler := provider.Tracer("test").Start(context.Background(), "process payments.*.succeeded",
		trace.WithSpanKind(trace.SpanKindConsumer))

	st, err := orders.Current(ctx, "o-1")
	if err != nil {
		t.Fatal(err)
	}
	if st.Order.Status != order.StatusReserved || st.After == 0 {
		t.Fatalf("order %+v, want RESERVED and not decided", st)
	}
	o := st.Order
	if err := orders.Index(ctx, o); err != nil {
		t.Fatal(err)
	}
	if err := orders.Index(ctx, o); err != nil { // listed already: not a failure
		t.Fatal(err)
	}
	if _, _, err := orders.ListByCustomer(ctx, "c-42", nil, 10); err != nil {
		t.Fatal(err)
	}
	handler.End()

	type want struct {
		name  string
		attrs map[attribute.Key]string
	}
	wants := []want{
		// Current: the order's last event, its reservation, and (no
		// legacy horizon given) the look for an earlier version's record.
		{"stream get_last ORDERS", map[attribute.Key]string{"db.system.name": "nats-jetstream", "db.namespace": "ORDERS",
			"db.operation.name": "get_last", "nats.subject": "orders.o-1.*", "nats.stream.sequence": "1"}},
		{"stream get_last INVENTORY", map[attribute.Key]string{"nats.subject": "inventory.o-1.reserved", "nats.stream.sequence": "1"}},
		{"kv get orders", map[attribute.Key]string{"db.system.name": "nats-kv", "db.namespace": "orders", "nats.kv.key": "order.o-1",
			"nats.kv.not_found": "true"}},
		// Index, twice: created, then found there.
		{"kv create orders", map[attribute.Key]string{"db.operation.name": "create", "nats.kv.revision": "1"}},
		{"kv create orders", map[attribute.Key]string{"nats.kv.conflict": "true"}},
		// ListByCustomer: the index, then the page's orders.
		{"kv watch orders", map[attribute.Key]string{"db.operation.name": "watch", "nats.kv.entries": "1"}},
		{"stream get_last ORDERS", nil},
		{"stream get_last INVENTORY", nil},
		{"kv get orders", nil},
	}
	spans := rec.Ended()
	if len(spans) != len(wants)+1 {
		var names []string
		for _, s := range spans {
			names = append(names, s.Name())
		}
		t.Fatalf("spans %v, want %d children of the handler's span and the span", names, len(wants))
	}
	for i, w := range wants {
		s := spans[i]
		if s.Name() != w.name || s.SpanKind() != trace.SpanKindClient || s.Parent().SpanID() != handler.SpanContext().SpanID() {
			t.Errorf("span %d: %q kind %s parent %s, want %q, a CLIENT child of the handler's span", i, s.Name(), s.SpanKind(), s.Parent().SpanID(), w.name)
			continue
		}
		got := attrs(s)
		for k, v := range w.attrs {
			if got[k] != v {
				t.Errorf("span %d %s: %s = %q, want %q", i, s.Name(), k, got[k], v)
			}
		}
		if s.Status().Code != 0 {
			t.Errorf("span %d %s: status %v, want unset: nothing failed", i, s.Name(), s.Status())
		}
	}
}
