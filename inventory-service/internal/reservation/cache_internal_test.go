package reservation

import (
	"testing"

	"github.com/eventshop/inventory-service/internal/stock"
)

// A read that raced a write finishes last: the older version it read must
// not replace the newer one the write remembered.
func TestItemCacheNeverGoesBack(t *testing.T) {
	t.Parallel()
	var c itemCache
	c.put(stock.Item{SKU: "A", Reserved: 1}, 10)
	c.put(stock.Item{SKU: "A", Reserved: 0}, 9)
	if e, ok := c.get("A"); !ok || e.rev != 10 || e.item.Reserved != 1 {
		t.Fatalf("cache holds %+v, want revision 10", e)
	}
	c.put(stock.Item{SKU: "A", Reserved: 2}, 11)
	if e, _ := c.get("A"); e.rev != 11 {
		t.Fatalf("cache holds revision %d, want 11", e.rev)
	}
	c.forget("A")
	c.put(stock.Item{SKU: "A"}, 3) // after a forget any version is news
	if e, ok := c.get("A"); !ok || e.rev != 3 {
		t.Fatalf("after forget: %+v, %v", e, ok)
	}
}
