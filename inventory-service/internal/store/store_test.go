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

func atomicFlag(t *testing.T, js jetstream.JetStream) bool {
	t.Helper()
	st, err := js.Stream(context.Background(), "KV_"+store.Bucket)
	if err != nil {
		t.Fatal(err)
	}
	info, err := st.Info(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return info.Config.AllowAtomicPublish
}

func TestOpenEnablesAtomicPublishAndKeepsIt(t *testing.T) {
	t.Parallel()
	srv := natstest.Start(t)
	_, js := natstest.Connect(t, srv)
	ctx := context.Background()
	// A bucket made by plain KV tooling has no atomic publish.
	if _, err := js.CreateOrUpdateKeyValue(ctx, jetstream.KeyValueConfig{Bucket: store.Bucket}); err != nil {
		t.Fatal(err)
	}
	if atomicFlag(t, js) {
		t.Fatal("precondition: fresh bucket already allows atomic publish")
	}
	for i := range 2 { // a restart opens it again
		if _, err := store.Open(ctx, js, store.Options{}); err != nil {
			t.Fatalf("open #%d: %v", i+1, err)
		}
		if !atomicFlag(t, js) {
			t.Fatalf("after open #%d: AllowAtomicPublish is off", i+1)
		}
	}
}

// TestApplyIsAllOrNothing proves the atomic batch against the real server:
// one stale entry anywhere in the batch and nothing is written.
func TestApplyIsAllOrNothing(t *testing.T) {
	t.Parallel()
	s, _ := open(t)
	ctx := context.Background()
	revA := seed(t, s, "A", 5)
	revB := seed(t, s, "B", 5)
	a, _, _ := s.Item(ctx, "A")
	b, _, _ := s.Item(ctx, "B")
	a.Available, a.Reserved = 4, 1
	b.Available, b.Reserved = 3, 2
	res := stock.Reservation{OrderID: "o-1", Status: stock.StatusReserved}

	tests := []struct {
		name    string
		items   []stock.Versioned[stock.Item]
		resRev  uint64
		wantErr error
	}{
		{name: "second item stale", items: []stock.Versioned[stock.Item]{{Value: a, Revision: revA}, {Value: b, Revision: revB + 7}}, wantErr: stock.ErrConflict},
		{name: "first item stale", items: []stock.Versioned[stock.Item]{{Value: a, Revision: revA + 7}, {Value: b, Revision: revB}}, wantErr: stock.ErrConflict},
		{name: "new item expected but exists", items: []stock.Versioned[stock.Item]{{Value: a, Revision: 0}, {Value: b, Revision: revB}}, wantErr: stock.ErrConflict},
		{name: "reservation expected at a revision it is not", items: []stock.Versioned[stock.Item]{{Value: a, Revision: revA}}, resRev: 99, wantErr: stock.ErrConflict},
		{name: "all current", items: []stock.Versioned[stock.Item]{{Value: a, Revision: revA}, {Value: b, Revision: revB}}},
		{name: "replay of the same batch", items: []stock.Versioned[stock.Item]{{Value: a, Revision: revA}, {Value: b, Revision: revB}}, wantErr: stock.ErrConflict},
	}
	for _, tt := range tests { // sequential: each case builds on the state left by the previous one
		err := s.Apply(ctx, tt.items, stock.Versioned[stock.Reservation]{Value: res, Revision: tt.resRev})
		if !errors.Is(err, tt.wantErr) || (tt.wantErr == nil) != (err == nil) {
			t.Fatalf("%s: err = %v, want %v", tt.name, err, tt.wantErr)
		}
		gotA, _, _ := s.Item(ctx, "A")
		gotB, _, _ := s.Item(ctx, "B")
		_, _, rerr := s.Reservation(ctx, "o-1")
		written := tt.wantErr == nil || tt.name == "replay of the same batch"
		if written {
			if gotA.Reserved != 1 || gotB.Reserved != 2 || rerr != nil {
				t.Fatalf("%s: A=%+v B=%+v reservation err=%v; want the batch written", tt.name, gotA, gotB, rerr)
			}
			continue
		}
		if gotA.Reserved != 0 || gotB.Reserved != 0 || !errors.Is(rerr, stock.ErrNoReservation) {
			t.Fatalf("%s: A=%+v B=%+v reservation err=%v; want nothing written", tt.name, gotA, gotB, rerr)
		}
	}
}

// TestConcurrentApplyLosesNoUpdate has writers race read-modify-write
// batches on the same two keys; every successful batch must be counted.
func TestConcurrentApplyLosesNoUpdate(t *testing.T) {
	t.Parallel()
	s, _ := open(t)
	ctx := context.Background()
	seed(t, s, "A", 1000)
	seed(t, s, "B", 1000)
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
					b, rb, _ := s.Item(ctx, "B")
					a.Available--
					a.Reserved++
					b.Available--
					b.Reserved++
					err = s.Apply(ctx, []stock.Versioned[stock.Item]{{Value: a, Revision: ra}, {Value: b, Revision: rb}},
						stock.Versioned[stock.Reservation]{Value: stock.Reservation{OrderID: id, Status: stock.StatusReserved}})
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
	for _, sku := range []string{"A", "B"} {
		it, _, _ := s.Item(ctx, sku)
		if it.Reserved != writers*each || it.Total() != 1000 {
			t.Errorf("%s = %+v, want reserved %d of 1000", sku, it, writers*each)
		}
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
