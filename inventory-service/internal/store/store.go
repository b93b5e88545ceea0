// Package store keeps the inventory's state in one JetStream KV bucket:
// stock.<sku> holds a catalogue item with its counts and
// reservation.<order_id> the decision taken for an order. Writes are
// compare-and-set on the revision read; writes that must happen together
// (a reservation and the stock it moves) go in one atomic batch.
package store

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/synadia-io/orbit.go/jetstreamext"

	"github.com/eventshop/inventory-service/internal/stock"
	"github.com/eventshop/shared/events"
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
	js jetstream.JetStream
	kv jetstream.KeyValue
	// putPrefix is the subject prefix a key is written under ($KV.inventory.).
	putPrefix string
	// cache holds the last known version of items, for the reservation path.
	cache itemCache
}

// Open creates the bucket if it is missing and makes sure its backing
// stream accepts atomic batch publishes (nats-server >= 2.12).
//
// An existing bucket is opened, not re-created: CreateOrUpdateKeyValue
// rebuilds the stream configuration from the KV settings alone, which
// would switch AllowAtomicPublish off (and make the server drop batches in
// flight) every time an instance starts.
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
	if err := enableAtomicPublish(ctx, js, "KV_"+Bucket); err != nil {
		return nil, err
	}
	return &Store{js: js, kv: kv, putPrefix: "$KV." + Bucket + "."}, nil
}

func enableAtomicPublish(ctx context.Context, js jetstream.JetStream, name string) error {
	s, err := js.Stream(ctx, name)
	if err != nil {
		return fmt.Errorf("kv stream %s: %w", name, err)
	}
	info, err := s.Info(ctx)
	if err != nil {
		return fmt.Errorf("kv stream %s info: %w", name, err)
	}
	if info.Config.AllowAtomicPublish {
		return nil
	}
	cfg := info.Config
	cfg.AllowAtomicPublish = true
	if _, err := js.UpdateStream(ctx, cfg); err != nil {
		return fmt.Errorf("enable atomic publish on %s (needs nats-server >= 2.12): %w", name, err)
	}
	return nil
}

// KeyValue returns the underlying bucket (for tests and tooling).
func (s *Store) KeyValue() jetstream.KeyValue { return s.kv }

// Item returns the item of sku and the revision it was read at, or an error
// wrapping stock.ErrUnknownSKU.
func (s *Store) Item(ctx context.Context, sku string) (stock.Item, uint64, error) {
	var it stock.Item
	rev, err := s.get(ctx, itemPrefix+sku, &it)
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return it, 0, fmt.Errorf("sku %s: %w", sku, stock.ErrUnknownSKU)
	}
	return it, rev, err
}

// Items returns every catalogue item, sorted by SKU.
func (s *Store) Items(ctx context.Context) ([]stock.Item, error) {
	w, err := s.kv.WatchFiltered(ctx, []string{itemPrefix + ">"}, jetstream.IgnoreDeletes())
	if err != nil {
		return nil, fmt.Errorf("list items: %w", err)
	}
	defer func() { _ = w.Stop() }() // stopping a finished watcher has nothing to report
	var out []stock.Item
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
	raw, err := json.Marshal(it)
	if err != nil {
		return 0, fmt.Errorf("encode sku %s: %w", it.SKU, err)
	}
	rev, err := s.kv.Create(ctx, itemPrefix+it.SKU, raw)
	if err != nil {
		return 0, fmt.Errorf("create sku %s: %w", it.SKU, conflict(err))
	}
	return rev, nil
}

// UpdateItem replaces an item read at revision rev; it fails with
// stock.ErrConflict if the item changed since.
func (s *Store) UpdateItem(ctx context.Context, it stock.Item, rev uint64) (uint64, error) {
	raw, err := json.Marshal(it)
	if err != nil {
		return 0, fmt.Errorf("encode sku %s: %w", it.SKU, err)
	}
	n, err := s.kv.Update(ctx, itemPrefix+it.SKU, raw, rev)
	if err != nil {
		s.cache.forget(it.SKU)
		return 0, fmt.Errorf("update sku %s at revision %d: %w", it.SKU, rev, conflict(err))
	}
	s.cache.put(it, n)
	return n, nil
}

// Reservation returns the reservation of orderID and its revision, or an
// error wrapping stock.ErrNoReservation.
func (s *Store) Reservation(ctx context.Context, orderID string) (stock.Reservation, uint64, error) {
	var r stock.Reservation
	rev, err := s.get(ctx, reservationPrefix+orderID, &r)
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return r, 0, fmt.Errorf("order %s: %w", orderID, stock.ErrNoReservation)
	}
	return r, rev, err
}

// CreateReservation stores the first decision about an order; it fails
// with stock.ErrConflict if one was recorded already.
func (s *Store) CreateReservation(ctx context.Context, r stock.Reservation) error {
	raw, err := json.Marshal(r)
	if err != nil {
		return fmt.Errorf("encode reservation %s: %w", r.OrderID, err)
	}
	if _, err := s.kv.Create(ctx, reservationPrefix+r.OrderID, raw); err != nil {
		return fmt.Errorf("create reservation %s: %w", r.OrderID, conflict(err))
	}
	return nil
}

// Apply writes every item and the reservation in ONE atomic batch: each
// entry expects the revision it was read at (0: must not exist), and the
// server either stores all of them or none. Any stale entry fails the whole
// batch with stock.ErrConflict.
func (s *Store) Apply(ctx context.Context, items []stock.Versioned[stock.Item], r stock.Versioned[stock.Reservation]) error {
	msgs := make([]*nats.Msg, 0, len(items)+1)
	for _, it := range items {
		m, err := s.casMsg(itemPrefix+it.Value.SKU, it.Value, it.Revision)
		if err != nil {
			return err
		}
		msgs = append(msgs, m)
	}
	m, err := s.casMsg(reservationPrefix+r.Value.OrderID, r.Value, r.Revision)
	if err != nil {
		return err
	}
	msgs = append(msgs, m)
	// The batch is small (one entry a line plus one), so it needs no flow
	// control: one round trip for the whole batch instead of two.
	ack, err := jetstreamext.PublishMsgBatch(ctx, s.js, msgs, jetstreamext.BatchFlowControl{AckFirst: false})
	if err != nil {
		for _, it := range items {
			s.cache.forget(it.Value.SKU)
		}
		return fmt.Errorf("atomic batch for order %s (%d entries): %w", r.Value.OrderID, len(msgs), conflict(err))
	}
	// An atomic batch is stored at consecutive sequences ending at the
	// acknowledged one; were that ever not so, the next write from the cache
	// would fail its compare-and-set and re-read.
	first := ack.Sequence - uint64(len(msgs)) + 1
	for i, it := range items {
		s.cache.put(it.Value, first+uint64(i))
	}
	return nil
}

// casMsg builds a KV write of v under key that expects revision rev.
func (s *Store) casMsg(key string, v any, rev uint64) (*nats.Msg, error) {
	raw, err := json.Marshal(v)
	if err != nil {
		return nil, fmt.Errorf("encode %s: %w", key, err)
	}
	m := nats.NewMsg(s.putPrefix + key) // NewMsg allocates the header the batch headers go into
	m.Data = raw
	m.Header.Set(jetstream.ExpectedLastSubjSeqHeader, strconv.FormatUint(rev, 10))
	return m, nil
}

func (s *Store) get(ctx context.Context, key string, v any) (uint64, error) {
	e, err := s.kv.Get(ctx, key)
	if err != nil {
		if errors.Is(err, jetstream.ErrKeyNotFound) {
			return 0, err
		}
		return 0, fmt.Errorf("get %s: %w", key, err)
	}
	if err := json.Unmarshal(e.Value(), v); err != nil {
		return 0, fmt.Errorf("decode %s: %w", key, err)
	}
	return e.Revision(), nil
}

// conflict adds stock.ErrConflict to the chain of a write error that lost a
// compare-and-set race, whatever form the client reports it in.
func conflict(err error) error {
	if errors.Is(err, jetstream.ErrKeyExists) || errors.Is(err, jetstream.ErrKeyRevisionMismatch) ||
		events.IsWrongLastSequence(err) {
		return fmt.Errorf("%w: %w", stock.ErrConflict, err)
	}
	return err
}
