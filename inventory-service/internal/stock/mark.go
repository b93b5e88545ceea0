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
// A mark is needed only until the order's reservation record says the
// change is decided; after that the writer drops it with its next write of
// the item (see Sweep), so an item holds the marks of the orders in flight
// on it, not of its history.
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

// Sweep returns the item without the marks of orders in done, whose
// changes are decided in their reservation records, and reports whether
// it dropped any. A mark of another op than done names is kept: the order
// moved on and its new change may still be in flight.
func (i Item) Sweep(done map[string]Op) (Item, bool) {
	var drop []string
	for id, m := range i.Marks {
		if op, ok := done[id]; ok && op == m.Op {
			drop = append(drop, id)
		}
	}
	if len(drop) == 0 {
		return i, false
	}
	i.Marks = cloneMarks(i.Marks, 0)
	for _, id := range drop {
		delete(i.Marks, id)
	}
	if len(i.Marks) == 0 {
		i.Marks = nil
	}
	return i, true
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
