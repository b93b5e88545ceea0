package reservation

import (
	"sync"
	"time"
)

// maxTidyLookups bounds the records one item write looks up for tidy, so a
// SKU carrying many marks of orders still in flight costs each write a few
// reads at most; the marks left over are looked up by the next writes.
const maxTidyLookups = 8

// maxLookups bounds the orders lookups remembers. Past it the entries whose
// wait is over go first, then any: forgetting one only costs an early
// look-up.
const maxLookups = 4096

// lookups remembers, by order, until when tidy should not look its record
// up again: an order found undecided stays so for a while (it waits for a
// payment), and every write of a hot SKU asking again would turn each order
// into one read per write.
type lookups struct {
	mu    sync.Mutex
	until map[string]time.Time
}

func newLookups() *lookups { return &lookups{until: make(map[string]time.Time)} }

// due reports whether orderID may be looked up at now.
func (l *lookups) due(orderID string, now time.Time) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	t, ok := l.until[orderID]
	if !ok {
		return true
	}
	if now.Before(t) {
		return false
	}
	delete(l.until, orderID)
	return true
}

// wait holds the next look-up of orderID back for d from now.
func (l *lookups) wait(orderID string, now time.Time, d time.Duration) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if _, ok := l.until[orderID]; !ok && len(l.until) >= maxLookups {
		l.prune(now)
	}
	l.until[orderID] = now.Add(d)
}

// prune makes room: the entries due by now go first, then, if that was not
// enough, arbitrary ones down to three quarters of the bound.
func (l *lookups) prune(now time.Time) {
	for id, u := range l.until {
		if !now.Before(u) {
			delete(l.until, id)
		}
	}
	for id := range l.until {
		if len(l.until) < maxLookups*3/4 {
			return
		}
		delete(l.until, id)
	}
}
