package reservation

import (
	"hash/maphash"
	"slices"
	"sync"
)

// skuLocks serialises this process's read-modify-write of the same SKUs.
// Correctness never depends on it — every write is a compare-and-set on the
// revisions read, which also guards against other instances — but without
// it concurrent handlers of a hot SKU mostly fail their compare-and-set and
// back off, so throughput on that SKU collapses. With it they queue instead.
type skuLocks struct {
	seed    maphash.Seed
	stripes [256]sync.Mutex
}

func newSKULocks() *skuLocks { return &skuLocks{seed: maphash.MakeSeed()} }

// lock locks the stripes of every SKU, in ascending stripe order so that two
// multi-SKU orders can never deadlock, and returns the unlock function.
func (l *skuLocks) lock(skus []string) (unlock func()) {
	idx := make([]int, 0, len(skus))
	for _, s := range skus {
		idx = append(idx, int(maphash.String(l.seed, s)%uint64(len(l.stripes))))
	}
	slices.Sort(idx)
	idx = slices.Compact(idx)
	for _, i := range idx {
		l.stripes[i].Lock()
	}
	return func() {
		for j := len(idx) - 1; j >= 0; j-- {
			l.stripes[idx[j]].Unlock()
		}
	}
}
