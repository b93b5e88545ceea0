// Package store keeps the inventory's state in one JetStream KV bucket:
// stock.<sku> holds a catalogue item with its counts and
// reservation.<order_id> the decision taken for an order. Every write is a
// compare-and-set on the revision read, one key at a time (kvstore.Repo; a
// lost one is stock.ErrConflict, retried by the caller): the reservation
// protocol (package reservation) makes a multi-key change safe with marks
// and the record's compare-and-set (stock.Mark, stock.Reservation.Settle;
// Claim for records of the earlier version), not with atomic batches,
// which nats-server stages in a temporary file store for every batch on a
// single-replica file stream (docs/benchmarks.md).
package store

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/eventshop/inventory-service/internal/stock"
	"github.com/eventshop/shared/platform/kvstore"
	"github.com/eventshop/shared/platform/tracing"
)

// Bucket is the KV bucket holding the inventory's state.
const Bucket = "inventory"

// Key prefixes of the bucket.
const (
	itemPrefix        = "stock."
	reservationPrefix = "reservation."
)

// Options tunes the bucket.
type Options struct {
	// Replicas is the bucket's replication factor (default 1).
	Replicas int
}

// Store is the KV adapter of the inventory.
type Store struct {
	kv    jetstream.KeyValue
	items *kvstore.Repo[stock.Item]
	// reservations are read through the stream's leader: see Reservation.
	reservations *kvstore.Repo[stock.Reservation]
}

// Open creates the bucket if it is missing. An existing bucket is opened as
// it is, whatever settings an operator gave it.
func Open(ctx context.Context, js jetstream.JetStream, o Options) (*Store, error) {
	if o.Replicas < 1 {
		o.Replicas = 1
	}
	kv, err := js.KeyValue(ctx, Bucket)
	if errors.Is(err, jetstream.ErrBucketNotFound) {
		kv, err = js.CreateKeyValue(ctx, jetstream.KeyValueConfig{
			Bucket:      Bucket,
			Description: "eventshop inventory: stock.<sku> items and reservation.<order_id> decisions",
			History:     1,
			Storage:     jetstream.FileStorage,
			Replicas:    o.Replicas,
		})
		if errors.Is(err, jetstream.ErrBucketExists) { // another instance won the race
			kv, err = js.KeyValue(ctx, Bucket)
		}
	}
	if err != nil {
		return nil, fmt.Errorf("open kv bucket %s: %w", Bucket, err)
	}
	items, err := kvstore.New[stock.Item](kv, kvstore.WithPrefix(itemPrefix), kvstore.WithTracer(tracerName),
		kvstore.WithConflict(stock.ErrConflict))
	if err != nil {
		return nil, err
	}
	reservations, err := kvstore.New[stock.Reservation](kv, kvstore.WithPrefix(reservationPrefix), kvstore.WithTracer(tracerName),
		kvstore.WithConflict(stock.ErrConflict), kvstore.WithLeaderReads(js.Conn()))
	if err != nil {
		return nil, err
	}
	return &Store{kv: kv, items: items, reservations: reservations}, nil
}

// KeyValue returns the underlying bucket (for tests and tooling).
func (s *Store) KeyValue() jetstream.KeyValue { return s.kv }

// Item returns the item of sku as stored, marks unresolved, and the
// revision it was read at, or an error wrapping stock.ErrUnknownSKU.
// Readers want reservation.Protocol.View.
func (s *Store) Item(ctx context.Context, sku string) (stock.Item, uint64, error) {
	it, rev, err := s.items.Get(ctx, sku)
	if errors.Is(err, kvstore.ErrNotFound) {
		return it, 0, fmt.Errorf("sku %s: %w", sku, stock.ErrUnknownSKU)
	}
	return it, rev, err
}

// Items returns every catalogue item as stored, marks unresolved, sorted by
// SKU.
func (s *Store) Items(ctx context.Context) (out []stock.Item, err error) {
	// The span is the watch, from its start to its last item.
	wctx, span := tracing.StartKV(ctx, tracerName, Bucket, "watch", itemPrefix+">")
	defer func() {
		if span.IsRecording() {
			span.SetAttributes(tracing.AttrKVEntries.Int(len(out)))
		}
		tracing.Fail(span, err)
		span.End()
	}()
	w, err := s.kv.WatchFiltered(wctx, []string{itemPrefix + ">"}, jetstream.IgnoreDeletes())
	if err != nil {
		return nil, fmt.Errorf("list items: %w", err)
	}
	defer func() { _ = w.Stop() }() // stopping a finished watcher has nothing to report
	for {
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("list items: %w", ctx.Err())
		case e := <-w.Updates():
			if e == nil { // every current value has been delivered
				slices.SortFunc(out, func(a, b stock.Item) int { return strings.Compare(a.SKU, b.SKU) })
				return out, nil
			}
			var it stock.Item
			if err := json.Unmarshal(e.Value(), &it); err != nil {
				return nil, fmt.Errorf("decode %s: %w", e.Key(), err)
			}
			out = append(out, it)
		}
	}
}

// CreateItem stores a new item; it fails with stock.ErrConflict if the SKU
// already exists.
func (s *Store) CreateItem(ctx context.Context, it stock.Item) (uint64, error) {
	return s.items.Create(ctx, it.SKU, it)
}

// UpdateItem replaces an item read at revision rev and returns its new
// revision; it fails with stock.ErrConflict if the item changed since.
func (s *Store) UpdateItem(ctx context.Context, it stock.Item, rev uint64) (uint64, error) {
	return s.items.Update(ctx, it.SKU, it, rev)
}

// Reservation returns the reservation of orderID and its revision, or an
// error wrapping stock.ErrNoReservation.
//
// It is read from the stream's leader, never from a replica that may lag
// (a KV get is a direct get any replica answers): the order handlers take
// this read as proof that no decision was written before it (see package
// reservation).
func (s *Store) Reservation(ctx context.Context, orderID string) (stock.Reservation, uint64, error) {
	r, rev, err := s.reservations.Get(ctx, orderID)
	if errors.Is(err, kvstore.ErrNotFound) {
		return r, 0, fmt.Errorf("order %s: %w", orderID, stock.ErrNoReservation)
	}
	return r, rev, err
}

// CreateReservation stores the first decision about an order; it fails
// with stock.ErrConflict if one was recorded already.
func (s *Store) CreateReservation(ctx context.Context, r stock.Reservation) error {
	_, err := s.reservations.Create(ctx, r.OrderID, r)
	return err
}

// UpdateReservation replaces a reservation read at revision rev and returns
// its new revision; it fails with stock.ErrConflict if the record changed
// since.
func (s *Store) UpdateReservation(ctx context.Context, r stock.Reservation, rev uint64) (uint64, error) {
	return s.reservations.Update(ctx, r.OrderID, r, rev)
}

// tracerName is the instrumentation scope of the store's spans: one per
// KV operation, a child of the handler's or request's span, started only
// when that span is recorded (tracing.StartChild), so they cost nothing
// with tracing off.
const tracerName = "github.com/eventshop/inventory-service/internal/store"
