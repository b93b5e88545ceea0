package reservation

import (
	"context"
	"errors"

	"github.com/eventshop/inventory-service/internal/stock"
)

// Reserve decides orderID: its lines reserved all-or-nothing (reserved),
// or the reason why not recorded (rejected). An order decided before is
// not decided again: its decision is returned unchanged, and the units an
// attempt that lost the race to a rejection or a void left reserved are
// given back.
func (p *Protocol) Reserve(ctx context.Context, orderID, traceparent string, lines []stock.Line) (Outcome, error) {
	lines = stock.MergeLines(lines)
	skus := make([]string, len(lines))
	for i, l := range lines {
		skus[i] = l.SKU
	}
	return p.reserve(ctx, orderID, traceparent, lines, skus, false)
}

// reserve is one attempt at deciding an order; fresh says the items were
// just read, not taken from the cache.
func (p *Protocol) reserve(ctx context.Context, orderID, traceparent string, lines []stock.Line, skus []string, fresh bool) (Outcome, error) {
	unlock := p.locks.lock(skus)
	defer func() { unlock() }() // the record write runs unlocked: see the explicit unlocks
	// The items first, the record second: the record read undecided is the
	// proof that every mark dropped before these versions was of another
	// order (see the package comment).
	catalogue, revs, err := p.items(ctx, skus)
	if err != nil {
		return Outcome{}, err
	}
	r, _, err := p.store.Reservation(ctx, orderID)
	switch {
	case err == nil:
		unlock()
		unlock = func() {}
		return p.replayDecision(ctx, r, skus)
	case !errors.Is(err, stock.ErrNoReservation):
		return Outcome{}, err
	}
	dec := stock.Decide(orderID, lines, catalogue)
	if !dec.Accepted && !fresh {
		// A rejection writes nothing to the items, so no compare-and-set
		// would catch a stale cached version: decide again on fresh reads.
		p.cache.forget(skus...)
		unlock()
		unlock = func() {}
		return p.reserve(ctx, orderID, traceparent, lines, skus, true)
	}
	now := p.now()
	res := dec.Reservation(orderID, traceparent, now)
	if !dec.Accepted {
		unlock()
		unlock = func() {}
		// Record the decision before announcing it, so a redelivery
		// repeats it instead of reserving stock that arrived meanwhile.
		if err := p.store.CreateReservation(ctx, res); err != nil {
			return Outcome{}, err // a conflict: another delivery decided first; the retry replays its decision
		}
		// Lines an earlier, interrupted attempt reserved go back.
		p.known.remember(orderID, res.Status)
		if err := p.unreserve(ctx, orderID, skus); err != nil {
			return Outcome{}, err
		}
		return Outcome{Record: res, Changed: true}, nil
	}
	// A conflict re-runs the whole attempt on fresh versions; the lines
	// written so far carry their marks.
	if err := p.applyLines(ctx, orderID, stock.OpReserve, lines, catalogue, revs, now); err != nil {
		return Outcome{}, err
	}
	unlock()
	unlock = func() {}
	if err := p.store.CreateReservation(ctx, res); err != nil {
		return Outcome{}, err // a conflict: decided meanwhile (a cancel voided it?); the retry replays and undoes
	}
	return Outcome{Record: res, Changed: true}, nil
}

// replayDecision returns a decision already taken, for its event to be
// announced again, and undoes what an attempt that lost the race to a
// rejection or a void left reserved. A record that moved on (committing,
// committed, releasing, released) is returned as it is: the order ended.
func (p *Protocol) replayDecision(ctx context.Context, r stock.Reservation, skus []string) (Outcome, error) {
	p.known.remember(r.OrderID, r.Status) // a final one: its marks are resolved by the next writes
	switch r.Status {
	case stock.StatusRejected, stock.StatusVoid:
		// Nothing was reserved for it, but an attempt may have reserved
		// lines before the decision was written.
		if err := p.unreserve(ctx, r.OrderID, skus); err != nil {
			return Outcome{}, err
		}
	}
	return Outcome{Record: r}, nil
}

// unreserve gives back the units of every line of orderID still marked
// reserved. A version without the mark is read afresh before it is
// believed: the mark may have been written by another process, which the
// cache would not show.
func (p *Protocol) unreserve(ctx context.Context, orderID string, skus []string) error {
	for _, sku := range skus {
		if err := p.unreserveOne(ctx, orderID, sku); err != nil {
			return err
		}
	}
	return nil
}

func (p *Protocol) unreserveOne(ctx context.Context, orderID, sku string) error {
	for fresh := false; ; fresh = true {
		it, rev, err := p.cached(ctx, sku)
		if errors.Is(err, stock.ErrUnknownSKU) {
			return nil
		}
		if err != nil {
			return err
		}
		next, changed, err := it.Unreserve(orderID, p.now())
		if err != nil {
			return err
		}
		if changed {
			_, err := p.WriteItem(ctx, next, rev) // a stale version fails here and the retry reads afresh
			return err
		}
		if fresh {
			return nil
		}
		p.cache.forget(sku)
	}
}
