package reservation

import (
	"context"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"go.opentelemetry.io/otel/attribute"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"
	"go.uber.org/zap"

	"github.com/eventshop/inventory-service/internal/stock"
	"github.com/eventshop/inventory-service/internal/store"
	"github.com/eventshop/shared/platform/natstest"
)

func open(t *testing.T) (*store.Store, jetstream.JetStream) {
	t.Helper()
	srv := natstest.Start(t)
	_, js := natstest.Connect(t, srv)
	s, err := store.Open(context.Background(), js, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	return s, js
}

// protocol is one process's protocol over s.
func protocol(t *testing.T, s Store) *Protocol {
	t.Helper()
	p, err := New(s, time.Now, zap.NewNop())
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func seed(t *testing.T, s *store.Store, sku string, available int64) {
	t.Helper()
	if _, err := s.CreateItem(context.Background(), stock.Item{SKU: sku, Name: sku, PriceCents: 100, Currency: "USD", Available: available}); err != nil {
		t.Fatal(err)
	}
}

// reserve writes orderID's reservation of q units of sku through p (the
// item with its reserve mark, then the record), as Reserve does.
func reserve(t *testing.T, p *Protocol, orderID, sku string, q int64) stock.Reservation {
	t.Helper()
	ctx := context.Background()
	it, rev, err := p.cached(ctx, sku)
	if err != nil {
		t.Fatal(err)
	}
	next, err := it.Apply(orderID, stock.OpReserve, q, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := p.WriteItem(ctx, next, rev); err != nil {
		t.Fatal(err)
	}
	r := stock.Reservation{OrderID: orderID, Status: stock.StatusReserved, KeepsMarks: true,
		Lines: []stock.PricedLine{{SKU: sku, Quantity: q, UnitPriceCents: 100, LineTotalCents: q * 100}}}
	if err := p.store.CreateReservation(ctx, r); err != nil {
		t.Fatal(err)
	}
	return r
}

// settle moves orderID's record to st through p, as Commit and Release do.
func settle(t *testing.T, p *Protocol, orderID string, st stock.Status) {
	t.Helper()
	ctx := context.Background()
	r, rev, err := p.store.Reservation(ctx, orderID)
	if err != nil {
		t.Fatal(err)
	}
	done, err := r.Settle(st, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := p.store.UpdateReservation(ctx, done, rev); err != nil {
		t.Fatal(err)
	}
	p.known.remember(orderID, st)
}

func counts(it stock.Item) [3]int64 { return [3]int64{it.Available, it.Reserved, it.Sold} }

// TestWriteItemResolvesSettledOrders: the next write of an item resolves
// the marks of the orders this process knows final, and only those.
func TestWriteItemResolvesSettledOrders(t *testing.T) {
	t.Parallel()
	s, _ := open(t)
	p := protocol(t, s)
	ctx := context.Background()
	seed(t, s, "A", 10)
	reserve(t, p, "o-1", "A", 2)
	reserve(t, p, "o-2", "A", 1)
	reserve(t, p, "o-3", "A", 3)
	settle(t, p, "o-1", stock.StatusCommitted)
	settle(t, p, "o-2", stock.StatusReleased)
	p.known.remember("o-3", stock.StatusReserved) // not final: ignored
	if _, ok := p.known.get("o-3"); ok {
		t.Fatal("a reserved order is known final")
	}
	if st, ok := p.known.get("o-1"); !ok || st != stock.StatusCommitted {
		t.Fatalf("known o-1 = %s, %v", st, ok)
	}
	it, _, err := s.Item(ctx, "A")
	if err != nil {
		t.Fatal(err)
	}
	if counts(it) != [3]int64{4, 6, 0} || len(it.Marks) != 3 {
		t.Fatalf("stored A before any write = %+v; settling writes no item", it)
	}
	reserve(t, p, "o-4", "A", 1)
	it, _, err = s.Item(ctx, "A")
	if err != nil {
		t.Fatal(err)
	}
	if counts(it) != [3]int64{4, 4, 2} || len(it.Marks) != 2 || !it.Marked("o-3", stock.OpReserve) || !it.Marked("o-4", stock.OpReserve) {
		t.Fatalf("stored A = %+v; want o-1's 2 sold, o-2's 1 back, o-3's 3 and o-4's 1 reserved", it)
	}
}

// TestViewResolvesOrdersSettledByAnotherInstance: one instance reserves,
// another settles; the first knows nothing of it, yet its view shows the
// units where they belong (it looks the records up), and its next write
// stores them so.
func TestViewResolvesOrdersSettledByAnotherInstance(t *testing.T) {
	t.Parallel()
	s1, js := open(t)
	ctx := context.Background()
	s2, err := store.Open(ctx, js, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	p1, p2 := protocol(t, s1), protocol(t, s2)
	seed(t, s1, "A", 10)
	seed(t, s1, "B", 5)
	reserve(t, p1, "o-1", "A", 2)
	reserve(t, p1, "o-2", "A", 1)
	reserve(t, p1, "o-3", "A", 3)
	reserve(t, p1, "o-4", "B", 5)
	settle(t, p2, "o-1", stock.StatusCommitted)
	settle(t, p2, "o-2", stock.StatusReleased)
	settle(t, p2, "o-4", stock.StatusCommitted)

	// p1's writes resolve only what it knows: nothing yet.
	reserve(t, p1, "o-5", "A", 1)
	raw, _, err := s1.Item(ctx, "A")
	if err != nil {
		t.Fatal(err)
	}
	if counts(raw) != [3]int64{3, 7, 0} || len(raw.Marks) != 4 {
		t.Fatalf("stored A = %+v; want every mark still there", raw)
	}
	view, rev, err := p1.View(ctx, "A")
	if err != nil {
		t.Fatal(err)
	}
	if counts(view) != [3]int64{4, 4, 2} || len(view.Marks) != 2 || view.Total() != 10 {
		t.Fatalf("View(A) = %+v; want o-1's 2 sold, o-2's 1 available, o-3 and o-5 reserved", view)
	}
	if _, cur, _ := s1.Item(ctx, "A"); cur != rev {
		t.Fatalf("View wrote the item: revision %d -> %d", rev, cur)
	}
	items, err := p1.Items(ctx)
	if err != nil || len(items) != 2 || counts(items[0]) != counts(view) || counts(items[1]) != [3]int64{0, 0, 5} {
		t.Fatalf("Items = %+v, %v; want A as viewed and B's 5 sold", items, err)
	}
	// What the view looked up, p1's next write stores.
	reserve(t, p1, "o-6", "A", 1)
	raw, _, err = s1.Item(ctx, "A")
	if err != nil {
		t.Fatal(err)
	}
	if counts(raw) != [3]int64{3, 5, 2} || len(raw.Marks) != 3 || raw.Marked("o-1", stock.OpReserve) || raw.Marked("o-2", stock.OpReserve) {
		t.Fatalf("stored A = %+v; want o-1 and o-2 resolved, o-3, o-5, o-6 reserved", raw)
	}
}

// TestCacheHitIsASpanEvent: an item read from the cache is no read of the
// bucket, so no span: an event on the handler's span says which version
// the next write is built on.
func TestCacheHitIsASpanEvent(t *testing.T) {
	t.Parallel()
	s, _ := open(t)
	p := protocol(t, s)
	seed(t, s, "MUG", 5)
	rec := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec))
	ctx, handler := tp.Tracer("test").Start(context.Background(), "process orders.*.created", trace.WithSpanKind(trace.SpanKindConsumer))
	it, rev, err := p.cached(ctx, "MUG") // not cached yet: a get
	if err != nil {
		t.Fatal(err)
	}
	it.Available--
	if _, err := p.WriteItem(ctx, it, rev); err != nil {
		t.Fatal(err)
	}
	if _, _, err := p.cached(ctx, "MUG"); err != nil { // cached by the write: no get
		t.Fatal(err)
	}
	handler.End()
	spans := rec.Ended()
	if len(spans) != 3 || spans[0].Name() != "kv get inventory" || spans[1].Name() != "kv update inventory" {
		t.Fatalf("%d spans, want the get, the update and the handler's", len(spans))
	}
	ev := spans[len(spans)-1].Events()
	if len(ev) != 1 || ev[0].Name != "item cache hit" {
		t.Fatalf("handler span events %v, want one item cache hit", ev)
	}
	got := map[attribute.Key]string{}
	for _, kv := range ev[0].Attributes {
		got[kv.Key] = kv.Value.Emit()
	}
	if got["nats.kv.key"] != "stock.MUG" || got["nats.kv.revision"] != "2" {
		t.Fatalf("cache hit attributes %v, want the key stock.MUG at revision 2", got)
	}
}
