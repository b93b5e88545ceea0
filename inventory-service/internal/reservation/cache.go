package reservation

import (
	"sync"

	"github.com/eventshop/inventory-service/internal/stock"
)

// itemCache remembers the last version of each item this process read or
// wrote, so the protocol does not read a hot SKU again before every
// write. It is only ever a guess: every write built from it is a
// compare-and-set on the cached revision, so a stale entry (another instance
// or an admin PUT changed the item) fails the write, which forgets the entry
// and retries on a fresh read. Decisions that write nothing to the item (a
// rejection) must not trust it: the caller re-reads first (forget).
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

// finalStatuses remembers the final statuses of the latest orders this
// process decided or looked up, so its writes resolve their marks
// (stock.Item.Resolve) without reading the records. It is bounded: an order
// it forgot is looked up again (tidy, View).
type finalStatuses struct {
	mu     sync.Mutex
	status map[string]stock.Status
	ring   []string // insertion order, for eviction
	next   int
}

// maxKnown bounds the orders remembered: at hundreds of orders a second,
// far more than the few seconds between a commit and the next write of its
// SKUs.
const maxKnown = 16384

// remember records that orderID's record is final with status st: the
// next write of an item holding its marks resolves them. A status that is
// not final is not remembered.
func (s *finalStatuses) remember(orderID string, st stock.Status) {
	if !st.Final() {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.status == nil {
		s.status = make(map[string]stock.Status)
		s.ring = make([]string, maxKnown)
	}
	if _, ok := s.status[orderID]; ok {
		s.status[orderID] = st
		return
	}
	if old := s.ring[s.next]; old != "" {
		delete(s.status, old)
	}
	s.ring[s.next] = orderID
	s.next = (s.next + 1) % maxKnown
	s.status[orderID] = st
}

// get returns the final status of orderID if this process knows it.
func (s *finalStatuses) get(orderID string) (stock.Status, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	st, ok := s.status[orderID]
	return st, ok
}

// of returns the known final statuses of the orders marked on it.
func (s *finalStatuses) of(it stock.Item) map[string]stock.Status {
	if len(it.Marks) == 0 {
		return nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	var out map[string]stock.Status
	for id := range it.Marks {
		if st, ok := s.status[id]; ok {
			if out == nil {
				out = make(map[string]stock.Status, len(it.Marks))
			}
			out[id] = st
		}
	}
	return out
}
