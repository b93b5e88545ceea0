package store_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/eventshop/inventory-service/internal/stock"
	"github.com/eventshop/inventory-service/internal/store"
	"github.com/eventshop/shared/events"
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

func seed(t *testing.T, s *store.Store, sku string, available int64) uint64 {
	t.Helper()
	rev, err := s.CreateItem(context.Background(), stock.Item{SKU: sku, Name: sku, PriceCents: 100, Currency: "USD", Available: available})
	if err != nil {
		t.Fatal(err)
	}
	return rev
}

func TestOpenLeavesAnExistingBucketAsItIs(t *testing.T) {
	t.Parallel()
	srv := natstest.Start(t)
	_, js := natstest.Connect(t, srv)
	ctx := context.Background()
	// An operator made the bucket with more history than the service would.
	if _, err := js.CreateKeyValue(ctx, jetstream.KeyValueConfig{Bucket: store.Bucket, History: 5}); err != nil {
		t.Fatal(err)
	}
	for i := range 2 { // a restart opens it again
		if _, err := store.Open(ctx, js, store.Options{}); err != nil {
			t.Fatalf("open #%d: %v", i+1, err)
		}
	}
	kv, err := js.KeyValue(ctx, store.Bucket)
	if err != nil {
		t.Fatal(err)
	}
	st, err := kv.Status(ctx)
	if err != nil || st.History() != 5 {
		t.Fatalf("history = %d, %v; want the operator's 5 kept", st.History(), err)
	}
}

// TestReservationCompareAndSet proves the record writes against the real
// server: each expects the revision read, and a stale one changes nothing.
func TestReservationCompareAndSet(t *testing.T) {
	t.Parallel()
	s, _ := open(t)
	ctx := context.Background()
	r := stock.Reservation{OrderID: "o-1", Status: stock.StatusReserved}
	if err := s.CreateReservation(ctx, r); err != nil {
		t.Fatal(err)
	}
	got, rev, err := s.Reservation(ctx, "o-1")
	if err != nil || got.Status != stock.StatusReserved || rev == 0 {
		t.Fatalf("Reservation = %+v @%d, %v", got, rev, err)
	}
	claimed, err := got.Claim(stock.StatusCommitting, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	next, err := s.UpdateReservation(ctx, claimed, rev)
	if err != nil || next <= rev {
		t.Fatalf("UpdateReservation = %d, %v", next, err)
	}
	released := got
	released.Status = stock.StatusReleasing
	if _, err := s.UpdateReservation(ctx, released, rev); !errors.Is(err, stock.ErrConflict) {
		t.Fatalf("UpdateReservation at a stale revision err = %v, want ErrConflict", err)
	}
	if got, rev, err := s.Reservation(ctx, "o-1"); err != nil || got.Status != stock.StatusCommitting || rev != next {
		t.Fatalf("after the stale write: %+v @%d, %v; want committing @%d", got, rev, err, next)
	}
	// A record deleted with KV tooling reads as missing, not as garbage.
	if err := s.KeyValue().Delete(ctx, "reservation.o-1"); err != nil {
		t.Fatal(err)
	}
	if _, _, err := s.Reservation(ctx, "o-1"); !errors.Is(err, stock.ErrNoReservation) {
		t.Fatalf("deleted record err = %v, want ErrNoReservation", err)
	}
}

// reserve writes orderID's reservation of q units of sku through s (the
// item with its reserve mark, then the record), as the consumer does.
func reserve(t *testing.T, s *store.Store, orderID, sku string, q int64) stock.Reservation {
	t.Helper()
	ctx := context.Background()
	it, rev, err := s.CachedItem(ctx, sku)
	if err != nil {
		t.Fatal(err)
	}
	next, err := it.Apply(orderID, stock.OpReserve, q, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.UpdateItem(ctx, next, rev); err != nil {
		t.Fatal(err)
	}
	r := stock.Reservation{OrderID: orderID, Status: stock.StatusReserved, KeepsMarks: true,
		Lines: []events.PricedLine{{SKU: sku, Quantity: q, UnitPriceCents: 100, LineTotalCents: q * 100}}}
	if err := s.CreateReservation(ctx, r); err != nil {
		t.Fatal(err)
	}
	return r
}

// settle moves orderID's record to st through s, as the consumer does.
func settle(t *testing.T, s *store.Store, orderID string, st stock.Status) {
	t.Helper()
	ctx := context.Background()
	r, rev, err := s.Reservation(ctx, orderID)
	if err != nil {
		t.Fatal(err)
	}
	done, err := r.Settle(st, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.UpdateReservation(ctx, done, rev); err != nil {
		t.Fatal(err)
	}
	s.Settled(orderID, st)
}

func counts(it stock.Item) [3]int64 { return [3]int64{it.Available, it.Reserved, it.Sold} }

// TestUpdateItemResolvesSettledOrders: the next write of an item resolves
// the marks of the orders this process knows final, and only those.
func TestUpdateItemResolvesSettledOrders(t *testing.T) {
	t.Parallel()
	s, _ := open(t)
	ctx := context.Background()
	seed(t, s, "A", 10)
	reserve(t, s, "o-1", "A", 2)
	reserve(t, s, "o-2", "A", 1)
	reserve(t, s, "o-3", "A", 3)
	settle(t, s, "o-1", stock.StatusCommitted)
	settle(t, s, "o-2", stock.StatusReleased)
	s.Settled("o-3", stock.StatusReserved) // not final: ignored
	if _, ok := s.Known("o-3"); ok {
		t.Fatal("a reserved order is known final")
	}
	if st, ok := s.Known("o-1"); !ok || st != stock.StatusCommitted {
		t.Fatalf("Known(o-1) = %s, %v", st, ok)
	}
	it, _, err := s.Item(ctx, "A")
	if err != nil {
		t.Fatal(err)
	}
	if counts(it) != [3]int64{4, 6, 0} || len(it.Marks) != 3 {
		t.Fatalf("stored A before any write = %+v; settling writes no item", it)
	}
	reserve(t, s, "o-4", "A", 1)
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
	seed(t, s1, "A", 10)
	seed(t, s1, "B", 5)
	reserve(t, s1, "o-1", "A", 2)
	reserve(t, s1, "o-2", "A", 1)
	reserve(t, s1, "o-3", "A", 3)
	reserve(t, s1, "o-4", "B", 5)
	settle(t, s2, "o-1", stock.StatusCommitted)
	settle(t, s2, "o-2", stock.StatusReleased)
	settle(t, s2, "o-4", stock.StatusCommitted)

	// s1's writes resolve only what it knows: nothing yet.
	reserve(t, s1, "o-5", "A", 1)
	raw, _, err := s1.Item(ctx, "A")
	if err != nil {
		t.Fatal(err)
	}
	if counts(raw) != [3]int64{3, 7, 0} || len(raw.Marks) != 4 {
		t.Fatalf("stored A = %+v; want every mark still there", raw)
	}
	view, rev, err := s1.View(ctx, "A")
	if err != nil {
		t.Fatal(err)
	}
	if counts(view) != [3]int64{4, 4, 2} || len(view.Marks) != 2 || view.Total() != 10 {
		t.Fatalf("View(A) = %+v; want o-1's 2 sold, o-2's 1 available, o-3 and o-5 reserved", view)
	}
	if _, cur, _ := s1.Item(ctx, "A"); cur != rev {
		t.Fatalf("View wrote the item: revision %d -> %d", rev, cur)
	}
	items, err := s1.Items(ctx)
	if err != nil || len(items) != 2 || counts(items[0]) != counts(view) || counts(items[1]) != [3]int64{0, 0, 5} {
		t.Fatalf("Items = %+v, %v; want A as viewed and B's 5 sold", items, err)
	}
	// What the view looked up, s1's next write stores.
	reserve(t, s1, "o-6", "A", 1)
	raw, _, err = s1.Item(ctx, "A")
	if err != nil {
		t.Fatal(err)
	}
	if counts(raw) != [3]int64{3, 5, 2} || len(raw.Marks) != 3 || raw.Marked("o-1", stock.OpReserve) || raw.Marked("o-2", stock.OpReserve) {
		t.Fatalf("stored A = %+v; want o-1 and o-2 resolved, o-3, o-5, o-6 reserved", raw)
	}
}

// TestConcurrentUpdateItemLosesNoUpdate has writers race read-modify-write
// cycles on one key; every successful write must be counted.
func TestConcurrentUpdateItemLosesNoUpdate(t *testing.T) {
	t.Parallel()
	s, _ := open(t)
	ctx := context.Background()
	seed(t, s, "A", 1000)
	const writers, each = 8, 5
	var wg sync.WaitGroup
	errs := make(chan error, writers*each)
	for w := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range each {
				id := string(rune('a'+w)) + "-" + string(rune('0'+i))
				for {
					a, ra, err := s.Item(ctx, "A")
					if err != nil {
						errs <- err
						return
					}
					next, err := a.Apply(id, stock.OpReserve, 1, time.Now())
					if err != nil {
						errs <- err
						return
					}
					_, err = s.UpdateItem(ctx, next, ra)
					if errors.Is(err, stock.ErrConflict) {
						time.Sleep(time.Millisecond)
						continue
					}
					if err != nil {
						errs <- err
					}
					break
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	it, _, _ := s.Item(ctx, "A")
	if it.Reserved != writers*each || it.Total() != 1000 || len(it.Marks) != writers*each {
		t.Errorf("A = %d reserved of %d with %d marks, want %d of 1000", it.Reserved, it.Total(), len(it.Marks), writers*each)
	}
}

func TestItemsAndReservations(t *testing.T) {
	t.Parallel()
	s, _ := open(t)
	ctx := context.Background()
	if items, err := s.Items(ctx); err != nil || len(items) != 0 {
		t.Fatalf("empty Items = %v, %v", items, err)
	}
	if _, _, err := s.Item(ctx, "nope"); !errors.Is(err, stock.ErrUnknownSKU) {
		t.Errorf("Item(nope) err = %v, want ErrUnknownSKU", err)
	}
	for _, sku := range []string{"c", "a", "b"} {
		seed(t, s, sku, 1)
	}
	if _, err := s.CreateItem(ctx, stock.Item{SKU: "a"}); !errors.Is(err, stock.ErrConflict) {
		t.Errorf("CreateItem(existing) err = %v, want ErrConflict", err)
	}
	it, rev, err := s.Item(ctx, "a")
	if err != nil {
		t.Fatal(err)
	}
	it.Available = 9
	if _, err := s.UpdateItem(ctx, it, rev); err != nil {
		t.Fatal(err)
	}
	if _, err := s.UpdateItem(ctx, it, rev); !errors.Is(err, stock.ErrConflict) {
		t.Errorf("UpdateItem(stale) err = %v, want ErrConflict", err)
	}
	items, err := s.Items(ctx)
	if err != nil || len(items) != 3 || items[0].SKU != "a" || items[1].SKU != "b" || items[2].SKU != "c" || items[0].Available != 9 {
		t.Fatalf("Items = %+v, %v; want a(9), b, c", items, err)
	}
	if _, _, err := s.Reservation(ctx, "o-1"); !errors.Is(err, stock.ErrNoReservation) {
		t.Errorf("Reservation(missing) err = %v, want ErrNoReservation", err)
	}
	void := stock.Void("o-1", "", time.Now())
	if err := s.CreateReservation(ctx, void); err != nil {
		t.Fatal(err)
	}
	if err := s.CreateReservation(ctx, void); !errors.Is(err, stock.ErrConflict) {
		t.Errorf("CreateReservation(existing) err = %v, want ErrConflict", err)
	}
	got, _, err := s.Reservation(ctx, "o-1")
	if err != nil || got.Status != stock.StatusVoid {
		t.Fatalf("Reservation = %+v, %v", got, err)
	}
}
