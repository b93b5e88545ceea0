// Package reservation is the inventory's reservation protocol: it reserves
// an order's lines on their SKUs, records the decision, and settles the
// order (commit or release) when the saga ends it, each key with its own
// compare-and-set write, in an order that keeps every crash and every
// duplicate delivery safe. The protocol, its fence and its words (settled,
// resolved, given back, remembered) are described once, in
// docs/architecture.md, "Stock reservation (no oversell)".
package reservation

import (
	"context"
	"errors"
	"fmt"
	"time"

	"go.uber.org/zap"

	"github.com/eventshop/inventory-service/internal/stock"
)

// Store is the storage the protocol reads and writes: every write is a
// compare-and-set on one key, a lost one wrapping stock.ErrConflict.
type Store interface {
	// Item returns the item of sku as stored and its revision, or an error
	// wrapping stock.ErrUnknownSKU.
	Item(ctx context.Context, sku string) (stock.Item, uint64, error)
	// Items returns every item as stored, sorted by SKU.
	Items(ctx context.Context) ([]stock.Item, error)
	// UpdateItem writes it at revision rev and returns the new revision.
	UpdateItem(ctx context.Context, it stock.Item, rev uint64) (uint64, error)
	// Reservation reads the record linearizably (from the stream's leader),
	// or fails wrapping stock.ErrNoReservation.
	Reservation(ctx context.Context, orderID string) (stock.Reservation, uint64, error)
	// CreateReservation writes the first record of an order.
	CreateReservation(ctx context.Context, r stock.Reservation) error
	// UpdateReservation writes r at revision rev and returns the new revision.
	UpdateReservation(ctx context.Context, r stock.Reservation, rev uint64) (uint64, error)
}

// ErrInvalidOption is returned by an option given a value it cannot use.
var ErrInvalidOption = errors.New("invalid option")

// Option configures a Protocol.
type Option func(*Protocol) error

// WithStaleMarkAge sets how old a mark must be before a write of its item
// looks up its order to resolve it (default 2 seconds; see tidy).
func WithStaleMarkAge(d time.Duration) Option {
	return func(p *Protocol) error {
		if d <= 0 {
			return fmt.Errorf("stale mark age %v: %w", d, ErrInvalidOption)
		}
		p.staleAfter = d
		return nil
	}
}

// Protocol runs the reservation protocol of one process over a Store.
type Protocol struct {
	store Store
	log   *zap.Logger
	now   func() time.Time
	locks *skuLocks
	// cache holds the last known version of items, for the writes.
	cache itemCache
	// known holds the final statuses of orders this process knows, whose
	// marks its writes resolve.
	known finalStatuses
	// staleAfter is the age from which a mark is tidied (see tidy).
	staleAfter time.Duration
	// undecided remembers when tidy may look up an order found undecided.
	undecided *lookups
}

// New returns the protocol over store; now stamps records and marks.
func New(store Store, now func() time.Time, log *zap.Logger, opts ...Option) (*Protocol, error) {
	if store == nil || now == nil || log == nil {
		return nil, fmt.Errorf("store, clock and logger are required: %w", ErrInvalidOption)
	}
	p := &Protocol{store: store, log: log, now: now, locks: newSKULocks(), staleAfter: 2 * time.Second, undecided: newLookups()}
	for _, opt := range opts {
		if err := opt(p); err != nil {
			return nil, err
		}
	}
	return p, nil
}

// Outcome is what a call found or did to an order's record.
type Outcome struct {
	// Record is the order's record as the call left it.
	Record stock.Reservation
	// Changed says this call moved the record to its status (a decision or
	// a settlement to count and announce); false: an earlier call had, and
	// this one at most finished what that one left undone.
	Changed bool
}
