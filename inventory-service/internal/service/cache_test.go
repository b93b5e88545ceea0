package service_test

import (
	"context"
	"testing"

	"github.com/eventshop/inventory-service/internal/store"
	"github.com/eventshop/shared/events"
)

// The reservation path remembers the items it wrote; another instance (or
// an admin PUT served by one) changing an item must never make it decide on
// the stale version: a rejection is re-decided on fresh reads, and a write
// from a stale version fails its compare-and-set and is retried.
func TestStaleItemVersionsNeverDecide(t *testing.T) {
	t.Parallel()
	h := start(t)
	ctx := context.Background()
	h.setStock("MUG", "Mug", 100, "USD", 1)
	h.created("o-1", items("MUG", 1))
	h.event(events.InventoryReserved, "o-1") // the service now remembers MUG at 0 available

	other, err := store.Open(ctx, h.js, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	restock := func(available int64) {
		it, rev, err := other.Item(ctx, "MUG")
		if err != nil {
			t.Fatal(err)
		}
		it.Available = available
		if _, err := other.UpdateItem(ctx, it, rev); err != nil {
			t.Fatal(err)
		}
	}
	restock(5) // behind the service's back

	h.created("o-2", items("MUG", 2)) // stale: 0 available; fresh: 5
	h.event(events.InventoryReserved, "o-2")
	h.created("o-3", items("MUG", 1))
	h.event(events.InventoryReserved, "o-3")
	restock(10) // behind its back again: its remembered revision is stale
	h.created("o-4", items("MUG", 1))
	h.event(events.InventoryReserved, "o-4")

	if it := h.item("MUG"); it.Available != 9 || it.Reserved != 5 || it.Sold != 0 {
		t.Fatalf("MUG = %+v, want 9 available and 5 reserved", it)
	}
	if n := h.count("inventory.*.rejected"); n != 0 {
		t.Fatalf("%d rejections, want none", n)
	}
}
