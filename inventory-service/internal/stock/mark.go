package stock

import (
	"fmt"
	"time"
)

// Op is a change an order makes to one SKU's counts.
type Op string

// The changes an order makes to a SKU.
const (
	// OpReserve moves units from available to reserved.
	OpReserve Op = "reserve"
	// OpCommit moves reserved units to sold.
	OpCommit Op = "commit"
	// OpRelease moves reserved units back to available.
	OpRelease Op = "release"
)

// Mark records on an item that an order's change was applied to it. An
// order changes each of its SKUs with its own compare-and-set write, not
// all of them at once, so the marks are what makes every such write
// idempotent: a handler that died between two writes is redelivered,
// finds the marks of the writes that landed and makes only the others.
//
// A reserve mark stays until the order's units are settled on the item:
// its record's final status says what its units became (Resolve), and the
// next write of the item that knows it applies that and drops the mark. So
// an item's reserved units are those of its reserve marks (plus units the
// earlier version reserved, whose marks it dropped after the decision).
type Mark struct {
	Op  Op        `json:"op"`
	Qty int64     `json:"qty"`
	At  time.Time `json:"at"`
}

// Marked reports whether op of orderID was applied to the item.
func (i Item) Marked(orderID string, op Op) bool {
	m, ok := i.Marks[orderID]
	return ok && m.Op == op
}

// MarkedQty returns the quantity of op of orderID applied to the item, 0 if none.
func (i Item) MarkedQty(orderID string, op Op) int64 {
	if m, ok := i.Marks[orderID]; ok && m.Op == op {
		return m.Qty
	}
	return 0
}

// Apply returns the item with q units of orderID changed by op and the
// change marked. It refuses to apply a change twice (the caller checks
// Marked first) and to drive a count negative.
func (i Item) Apply(orderID string, op Op, q int64, now time.Time) (Item, error) {
	if i.Marked(orderID, op) {
		return i, fmt.Errorf("sku %s: %s of order %s applied twice: %w", i.SKU, op, orderID, ErrInvariant)
	}
	var from, to counter
	switch op {
	case OpReserve:
		from, to = available, reserved
	case OpCommit:
		from, to = reserved, sold
	case OpRelease:
		from, to = reserved, available
	default:
		return i, fmt.Errorf("sku %s: unknown op %q: %w", i.SKU, op, ErrInvalidTransition)
	}
	out, err := move(i, q, from, to)
	if err != nil {
		return i, fmt.Errorf("order %s: %w", orderID, err)
	}
	out.Marks = cloneMarks(i.Marks, 1)
	out.Marks[orderID] = Mark{Op: op, Qty: q, At: now.UTC()}
	out.UpdatedAt = now.UTC()
	return out, nil
}

// Unreserve undoes the reservation of orderID on the item, if it is marked:
// the units go back to available and the mark goes. The bool reports
// whether there was anything to undo.
func (i Item) Unreserve(orderID string, now time.Time) (Item, bool, error) {
	q := i.MarkedQty(orderID, OpReserve)
	if q == 0 {
		return i, false, nil
	}
	out, err := move(i, q, reserved, available)
	if err != nil {
		return i, false, fmt.Errorf("undo order %s: %w", orderID, err)
	}
	out.Marks = cloneMarks(i.Marks, 0)
	delete(out.Marks, orderID)
	out.UpdatedAt = now.UTC()
	return out, true, nil
}

// Resolve returns the item with the marks of orders whose records are
// final (statuses, by order id) settled on it, and reports whether it
// changed anything:
//   - a reserve mark of a committed order: its units are sold;
//   - a reserve mark of a released, rejected or void order: its units are
//     available again;
//   - a commit mark of a committed order or a release mark of a released
//     one (the earlier version's, whose units already moved) just goes.
//
// Other marks stay. Each change goes with its mark, so a mark is never
// resolved twice. A mark whose units are not reserved is an invariant
// breach: nothing is resolved then.
func (i Item) Resolve(statuses map[string]Status) (Item, bool, error) {
	out := i
	changed := false
	for id, m := range i.Marks {
		st, ok := statuses[id]
		if !ok || !st.Final() {
			continue
		}
		var err error
		switch {
		case m.Op == OpReserve && st == StatusCommitted:
			out, err = move(out, m.Qty, reserved, sold)
		case m.Op == OpReserve:
			out, err = move(out, m.Qty, reserved, available)
		case m.Op == OpCommit && st == StatusCommitted, m.Op == OpRelease && st == StatusReleased:
		default:
			continue
		}
		if err != nil {
			return i, false, fmt.Errorf("resolve %s of order %s (%s): %w", m.Op, id, st, err)
		}
		if !changed {
			out.Marks = cloneMarks(i.Marks, 0)
			changed = true
		}
		delete(out.Marks, id)
	}
	if changed && len(out.Marks) == 0 {
		out.Marks = nil
	}
	return out, changed, nil
}

// cloneMarks copies m with room for extra more entries, so that changing an
// item never changes the version another goroutine (or the cache) holds.
func cloneMarks(m map[string]Mark, extra int) map[string]Mark {
	out := make(map[string]Mark, len(m)+extra)
	for k, v := range m {
		out[k] = v
	}
	return out
}
