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

// put remembers it at revision rev unless a later revision is remembered
// already: a read that raced a write must not put an older version back.
func (c *itemCache) put(it stock.Item, rev uint64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.items == nil {
		c.items = map[string]cachedItem{}
	}
	if cur, ok := c.items[it.SKU]; ok && cur.rev > rev {
		return
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

// doneMarks holds, by SKU, the marks of orders whose change this process
// saw decided; the next write of the item drops them.
type doneMarks struct {
	mu    sync.Mutex
	bySKU map[string]map[string]stock.Op
}

func (d *doneMarks) add(orderID string, op stock.Op, skus []string) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.bySKU == nil {
		d.bySKU = map[string]map[string]stock.Op{}
	}
	for _, sku := range skus {
		m := d.bySKU[sku]
		if m == nil {
			m = map[string]stock.Op{}
			d.bySKU[sku] = m
		}
		m[orderID] = op
	}
}

// of returns a copy of the done marks of sku.
func (d *doneMarks) of(sku string) map[string]stock.Op {
	d.mu.Lock()
	defer d.mu.Unlock()
	m := d.bySKU[sku]
	if len(m) == 0 {
		return nil
	}
	out := make(map[string]stock.Op, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}

// drop forgets the done marks of sku a write has left off the item.
func (d *doneMarks) drop(sku string, swept map[string]stock.Op) {
	d.mu.Lock()
	defer d.mu.Unlock()
	m := d.bySKU[sku]
	for id, op := range swept {
		if m[id] == op {
			delete(m, id)
		}
	}
	if len(m) == 0 {
		delete(d.bySKU, sku)
	}
}
