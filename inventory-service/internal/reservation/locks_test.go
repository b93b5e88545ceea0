package reservation

import (
	"sync"
	"testing"
)

func TestSKULocksExcludeAndNeverDeadlock(t *testing.T) {
	t.Parallel()
	l := newSKULocks()
	counts := map[string]*int{"A": new(int), "B": new(int), "C": new(int)} // read-only map; each counter guarded by its SKU lock
	orders := [][]string{{"A", "B"}, {"B", "A"}, {"B", "C", "A"}, {"C"}, {"A", "A"}}
	var wg sync.WaitGroup
	for _, skus := range orders {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 2000 {
				unlock := l.lock(skus)
				for _, s := range skus {
					*counts[s]++ // a data race (caught by -race) unless the lock excludes
				}
				unlock()
			}
		}()
	}
	wg.Wait() // a lock-order deadlock would hang here
	want := map[string]int{"A": 4*2000 + 2000, "B": 3 * 2000, "C": 2 * 2000}
	for sku, n := range want {
		if *counts[sku] != n {
			t.Errorf("%s counted %d, want %d", sku, *counts[sku], n)
		}
	}
}
