// Package stock is the inventory domain: catalogue items with their stock
// counts, reservations of order lines against them, and the pure decisions
// and transitions that keep every SKU conserved
// (stock set by the shop = available + reserved + sold).
package stock

import (
	"errors"
	"fmt"
	"time"
)

// Sentinel errors of the domain.
var (
	// ErrUnknownSKU marks a SKU that is not in the catalogue.
	ErrUnknownSKU = errors.New("unknown sku")
	// ErrNoReservation marks an order the service holds no reservation for.
	ErrNoReservation = errors.New("no reservation")
	// ErrConflict marks an optimistic-concurrency conflict: a record changed
	// (or appeared) between reading it and writing it. Re-read and retry.
	ErrConflict = errors.New("concurrent modification")
	// ErrInvalidTransition marks a reservation asked to move to a status its
	// current one cannot reach (for example confirming a released order).
	ErrInvalidTransition = errors.New("invalid reservation transition")
	// ErrInvariant marks stored state that breaks a conservation invariant
	// (a count would go negative, a reserved SKU vanished). Retrying cannot
	// fix it; an operator must look.
	ErrInvariant = errors.New("stock invariant violated")
	// ErrAmountMismatch marks an event that claims another total for an
	// order than its reservation holds: it is not from the saga.
	ErrAmountMismatch = errors.New("amount mismatch")
)

// Item is one catalogue entry and its stock counts, stored under
// stock.<sku>.
type Item struct {
	SKU        string    `json:"sku"`
	Name       string    `json:"name"`
	PriceCents int64     `json:"price_cents"`
	Currency   string    `json:"currency"`
	Available  int64     `json:"available"`
	Reserved   int64     `json:"reserved"`
	Sold       int64     `json:"sold"`
	UpdatedAt  time.Time `json:"updated_at"`
	// Marks are the changes of orders in flight applied to this item, by
	// order id (see Mark).
	Marks map[string]Mark `json:"marks,omitempty"`
}

// Total is the stock the shop set: available + reserved + sold. Every
// reservation, release and commit keeps it unchanged.
func (i Item) Total() int64 { return i.Available + i.Reserved + i.Sold }

// Put is what an administrator sets on a SKU: its description, its price
// and the units available for sale.
type Put struct {
	Name       string `json:"name"`
	PriceCents int64  `json:"price_cents"`
	Currency   string `json:"currency"`
	Available  int64  `json:"available"`
}

// ApplyPut returns cur with p applied. Reserved and sold units belong to
// orders in flight or done, so a PUT never touches them: it only sets what
// is still for sale.
func ApplyPut(cur Item, sku string, p Put, now time.Time) Item {
	cur.SKU = sku
	cur.Name = p.Name
	cur.PriceCents = p.PriceCents
	cur.Currency = p.Currency
	cur.Available = p.Available
	cur.UpdatedAt = now.UTC()
	return cur
}

// counter names one of an item's three counts.
type counter int

const (
	available counter = iota
	reserved
	sold
)

func (c counter) String() string { return [...]string{"available", "reserved", "sold"}[c] }

func (i *Item) count(c counter) *int64 {
	switch c {
	case available:
		return &i.Available
	case reserved:
		return &i.Reserved
	default:
		return &i.Sold
	}
}

// move returns it with q units moved from one count to another, so the
// total is unchanged; it refuses to drive a count negative.
func move(it Item, q int64, from, to counter) (Item, error) {
	src, dst := it.count(from), it.count(to)
	if q < 1 || *src < q {
		return it, fmt.Errorf("sku %s: move %d units out of %s (%d): %w", it.SKU, q, from, *src, ErrInvariant)
	}
	*src -= q
	*dst += q
	return it, nil
}
