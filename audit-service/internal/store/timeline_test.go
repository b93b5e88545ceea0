package store_test

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"

	"github.com/eventshop/audit-service/internal/chain"
	"github.com/eventshop/audit-service/internal/store"
)

// TestTimelineFindsAnOrderAcrossManyBlocks: many orders' events,
// interleaved over many small blocks and several commits; each order's
// timeline holds exactly its events, in chain order.
func TestTimelineFindsAnOrderAcrossManyBlocks(t *testing.T) {
	t.Parallel()
	d := newDomain(t)
	const orders = 40
	var recs []chain.Record
	byOrder := map[string][]chain.Record{}
	for i := range orders {
		id := fmt.Sprintf("o-%d", i)
		byOrder[id] = d.saga(t, id)
		recs = append(recs, byOrder[id]...)
	}
	rng := rand.New(rand.NewPCG(1, 2))
	rng.Shuffle(len(recs), func(i, j int) { recs[i], recs[j] = recs[j], recs[i] })
	a := newAppender(t, d.js, store.WithMaxBlockBytes(8<<10))
	for i := 0; i < len(recs); i += 50 { // several commits, each split into blocks
		appendAll(t, a, recs[i:min(i+50, len(recs))])
	}
	res := verify(t, d.js)
	if !res.OK || res.Entries != len(recs) || res.Blocks < 20 {
		t.Fatalf("verify = %+v, want %d entries over many blocks", res, len(recs))
	}
	d.saga(t, "o-unaudited") // in the domain streams, not in the chain yet

	r := store.NewReader(d.js, zap.NewNop())
	ctx := context.Background()
	for id, want := range byOrder {
		got, err := r.Timeline(ctx, id)
		if err != nil {
			t.Fatalf("timeline of %s: %v", id, err)
		}
		if len(got) != len(want) {
			t.Fatalf("timeline of %s has %d entries, want %d", id, len(got), len(want))
		}
		ids := map[string]bool{}
		for _, w := range want {
			ids[w.EventID] = true
		}
		for i, e := range got {
			if e.OrderID != id || !ids[e.EventID] || (i > 0 && e.Index <= got[i-1].Index) {
				t.Fatalf("timeline of %s: entry %d = %+v", id, i, e)
			}
			delete(ids, e.EventID)
		}
	}
	for _, id := range []string{"o-unknown", "o-unaudited"} {
		if _, err := r.Timeline(ctx, id); !errors.Is(err, chain.ErrNotFound) {
			t.Fatalf("timeline of %s: %v, want ErrNotFound", id, err)
		}
	}
}

// TestCopiesAreAuditedOnce: an event republished as a new message (same
// id, another stream sequence) is a duplicate, whether its original is in
// the remembered window (by id) or older (looked up in its domain stream);
// an old event audited for the first time is appended.
func TestCopiesAreAuditedOnce(t *testing.T) {
	t.Parallel()
	d := newDomain(t)
	base := time.Now()
	var offset atomic.Int64
	clock := func() time.Time { return base.Add(time.Duration(offset.Load())) }
	reg := prometheus.NewRegistry()
	m := store.NewMetrics(reg)
	a := newAppender(t, d.js, store.WithClock(clock), store.WithMetrics(m))
	ctx := context.Background()
	early := d.saga(t, "o-early")
	backlog := d.saga(t, "o-backlog") // published now, audited much later
	if dups := appendAll(t, a, early); dups != 0 {
		t.Fatalf("%d duplicates", dups)
	}
	if _, dup, err := a.Append(ctx, d.republish(t, early[1])); err != nil || !dup {
		t.Fatalf("recent copy: dup=%v, %v; want a duplicate", dup, err)
	}
	if n := counter(t, reg, "eventshop_audit_copy_lookups_total"); n != 0 {
		t.Fatalf("%v lookups for a copy in the window", n)
	}

	// 20 minutes of chain later, o-early's blocks have left the window.
	offset.Store(int64(20 * time.Minute))
	if dups := appendAll(t, a, d.saga(t, "o-late")); dups != 0 {
		t.Fatalf("%d duplicates", dups)
	}
	if _, dup, err := a.Append(ctx, d.republish(t, early[0])); err != nil || !dup {
		t.Fatalf("old copy: dup=%v, %v; want a duplicate", dup, err)
	}
	if e, dup, err := a.Append(ctx, backlog[0]); err != nil || dup || e.Index == 0 {
		t.Fatalf("old event audited for the first time = %+v, dup=%v, %v; want appended", e, dup, err)
	}
	if n := counter(t, reg, "eventshop_audit_copy_lookups_total"); n != 2 {
		t.Fatalf("%v lookups, want 2 (the old copy and the old event)", n)
	}
	res := verify(t, d.js)
	if want := len(early) + 5 + 1; !res.OK || res.Entries != want {
		t.Fatalf("verify = %+v, want %d entries", res, want)
	}
}
