package reservation

import (
	"context"
	"errors"
	"fmt"

	"github.com/eventshop/inventory-service/internal/stock"
)

// Release gives a reserved order's units back (released), or makes sure an
// order cancelled before it was seen never reserves (void). A release that
// died half way is finished. An order found in another status is returned
// as it is: committing or committed ones were sold, rejected or void ones
// reserved nothing.
func (p *Protocol) Release(ctx context.Context, orderID, traceparent string) (Outcome, error) {
	r, rev, err := p.store.Reservation(ctx, orderID)
	if errors.Is(err, stock.ErrNoReservation) {
		void := stock.Void(orderID, traceparent, p.now())
		if err := p.store.CreateReservation(ctx, void); err != nil {
			return Outcome{}, err // a conflict: it was decided meanwhile; the retry releases it
		}
		// A dead attempt's reserve marks, if any, give their units back
		// with this process's next write of their items.
		p.known.remember(orderID, stock.StatusVoid)
		return Outcome{Record: void, Changed: true}, nil
	}
	if err != nil {
		return Outcome{}, err
	}
	switch r.Status {
	case stock.StatusReserved, stock.StatusReleasing:
		var done stock.Reservation
		if r.Status == stock.StatusReserved && r.KeepsMarks {
			// The record is the decision and the end: the units follow,
			// line by line, by their reserve marks.
			if done, err = p.settleAtOnce(ctx, r, rev, stock.StatusReleased); err == nil {
				err = p.giveBack(ctx, done)
			}
		} else {
			done, err = p.settleEarlier(ctx, r, rev, stock.StatusReleasing)
		}
		if err != nil {
			return Outcome{}, err
		}
		return Outcome{Record: done, Changed: true}, nil
	case stock.StatusReleased:
		// A release that died half way is finished here: the lines still
		// marked get their units back.
		if err := p.giveBack(ctx, r); err != nil {
			return Outcome{}, err
		}
	}
	return Outcome{Record: r}, nil
}

// Commit turns a reserved order's units into sold ones, once the total
// the confirmation claims (totalCents, currency) is checked against the
// reservation's (stock.ErrAmountMismatch). A committed order is returned as
// it is; an order in any other status cannot be committed
// (stock.ErrInvalidTransition), and an order without a record fails with
// stock.ErrNoReservation.
func (p *Protocol) Commit(ctx context.Context, orderID string, totalCents int64, currency string) (Outcome, error) {
	r, rev, err := p.store.Reservation(ctx, orderID)
	if err != nil {
		// No reservation: the confirmation overtook its own order (it
		// cannot be paid without one); retry, and dead-letter if it never
		// shows up.
		return Outcome{}, err
	}
	if r.Status == stock.StatusReserved || r.Status == stock.StatusCommitting || r.Status == stock.StatusCommitted {
		if err := r.CheckConfirmation(totalCents, currency); err != nil {
			return Outcome{}, err
		}
	}
	switch r.Status {
	case stock.StatusReserved, stock.StatusCommitting:
		var done stock.Reservation
		if r.Status == stock.StatusReserved && r.KeepsMarks {
			// One write: the units of the order's reserve marks are sold
			// from now on, and the next write of each item counts them so.
			if done, err = p.settleAtOnce(ctx, r, rev, stock.StatusCommitted); err == nil {
				p.known.remember(r.OrderID, stock.StatusCommitted)
			}
		} else {
			done, err = p.settleEarlier(ctx, r, rev, stock.StatusCommitting)
		}
		if err != nil {
			return Outcome{}, err
		}
		return Outcome{Record: done, Changed: true}, nil
	case stock.StatusCommitted:
		p.known.remember(r.OrderID, stock.StatusCommitted)
		return Outcome{Record: r}, nil
	default:
		return Outcome{}, fmt.Errorf("order %s confirmed but its reservation is %s: %w", r.OrderID, r.Status, stock.ErrInvalidTransition)
	}
}

// settleAtOnce moves r, a reserved order that keeps its marks, read at
// revision rev, to committed or released with one write of its record,
// which it returns.
func (p *Protocol) settleAtOnce(ctx context.Context, r stock.Reservation, rev uint64, to stock.Status) (stock.Reservation, error) {
	done, err := r.Settle(to, p.now())
	if err != nil {
		return r, err
	}
	if _, err := p.store.UpdateReservation(ctx, done, rev); err != nil {
		return r, err // a conflict: the retry reads what happened
	}
	return done, nil
}

// giveBack makes the units of a released order available again: each line
// still marked reserved is given back (the mark's presence says whether it
// is yet), so a redelivery finishes a release that died half way.
func (p *Protocol) giveBack(ctx context.Context, r stock.Reservation) error {
	p.known.remember(r.OrderID, stock.StatusReleased)
	skus := make([]string, len(r.Lines))
	for i, l := range r.Lines {
		skus[i] = l.SKU
	}
	return p.unreserve(ctx, r.OrderID, skus)
}

// settleEarlier sells (to = committing) or gives back (to = releasing) the
// units of a reserved order of the earlier version (not KeepsMarks), read
// at revision rev: it claims the record, moves each SKU with a marked
// compare-and-set write, then records the end, which it returns. Found
// already claimed for the same change, it finishes what an earlier attempt
// began.
func (p *Protocol) settleEarlier(ctx context.Context, r stock.Reservation, rev uint64, to stock.Status) (stock.Reservation, error) {
	skus := make([]string, len(r.Lines))
	for i, l := range r.Lines {
		skus[i] = l.SKU
	}
	unlock := p.locks.lock(skus)
	defer func() { unlock() }()
	catalogue, revs, err := p.items(ctx, skus)
	if err != nil {
		return r, err
	}
	// The item versions above were read before the record is known
	// undecided: by the claim below, or by reading it again.
	now := p.now()
	if r.Status == stock.StatusReserved {
		claimed, err := r.Claim(to, now)
		if err != nil {
			return r, err
		}
		if rev, err = p.store.UpdateReservation(ctx, claimed, rev); err != nil {
			return r, err // a conflict: the retry reads what happened
		}
		r = claimed
	} else {
		cur, curRev, err := p.store.Reservation(ctx, r.OrderID)
		if err != nil {
			return r, err
		}
		if curRev != rev {
			return r, fmt.Errorf("order %s moved on to %s: %w", r.OrderID, cur.Status, stock.ErrConflict)
		}
	}
	if r.Status != to {
		return r, fmt.Errorf("order %s is %s, wanted %s: %w", r.OrderID, r.Status, to, stock.ErrInvalidTransition)
	}
	op, err := r.Op()
	if err != nil {
		return r, err
	}
	if err := p.applyLines(ctx, r.OrderID, op, r.Items(), catalogue, revs, now); err != nil {
		return r, err
	}
	unlock()
	unlock = func() {}
	done, err := r.Finish(now)
	if err != nil {
		return r, err
	}
	if _, err := p.store.UpdateReservation(ctx, done, rev); err != nil {
		return r, err
	}
	p.known.remember(r.OrderID, done.Status)
	return done, nil
}
