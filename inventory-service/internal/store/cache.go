package store

import (
	"context"
	"sync"

	"github.com/eventshop/inventory-service/internal/stock"
)

// itemCache remembers the last version of each item this process read or
// wrote, so the reservation path does not read a hot SKU again before every
// write. It is only ever a guess: every write built from it is a
// compare-and-set on the cached revision, so a stale entry (another instance
// or an admin PUT changed the item) fails the write, which forgets the entry
// and retries on a fresh read. Decisions that write nothing to the item (a
// rejection) must not trust it: the caller re-reads first (Forget).
type itemCache struct {
	mu    sync.Mutex
	items map[string]cachedItem
}

type cachedItem struct {
	item stock.Item
	rev  uint64
}

func (c *itemCache) get(sku string) (cachedItem, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.items[sku]
	return e, ok
}

func (c *itemCache) put(it stock.Item, rev uint64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.items == nil {
		c.items = map[string]cachedItem{}
	}
	c.items[it.SKU] = cachedItem{item: it, rev: rev}
}

func (c *itemCache) forget(skus ...string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, s := range skus {
		delete(c.items, s)
	}
}

// CachedItem returns the item as this process last saw it, reading it only
// when it is not cached. Use it only to build compare-and-set writes.
func (s *Store) CachedItem(ctx context.Context, sku string) (stock.Item, uint64, error) {
	if e, ok := s.cache.get(sku); ok {
		return e.item, e.rev, nil
	}
	it, rev, err := s.Item(ctx, sku)
	if err != nil {
		return it, rev, err
	}
	s.cache.put(it, rev)
	return it, rev, nil
}

// Forget drops the cached versions of skus, so the next CachedItem reads.
func (s *Store) Forget(skus ...string) { s.cache.forget(skus...) }
