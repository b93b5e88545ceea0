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
