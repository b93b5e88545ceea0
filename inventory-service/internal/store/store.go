// Package store keeps the inventory's state in one JetStream KV bucket:
// stock.<sku> holds a catalogue item with its counts and
// reservation.<order_id> the decision taken for an order. Every write is a
// compare-and-set on the revision read, one key at a time: the order
// handlers make a multi-key change safe with marks and the record's
// compare-and-set (stock.Mark, stock.Reservation.Settle; Claim for records
// of the earlier version), not with atomic batches, which
// nats-server stages in a temporary file store for every batch on a
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
	oteltrace "go.opentelemetry.io/otel/trace"

	"github.com/eventshop/inventory-service/internal/stock"
	"github.com/eventshop/shared/platform/natsconn"
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
	js jetstream.JetStream
	kv jetstream.KeyValue
	// putPrefix is the subject prefix a key is written under ($KV.inventory.).
	putPrefix string
	// cache holds the last known version of items, for the reservation path.
	cache itemCache
	// settled holds the final statuses of orders this process knows, whose
	// marks its writes resolve.
	settled settledOrders
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
	return &Store{js: js, kv: kv, putPrefix: "$KV." + Bucket + "."}, nil
}

// KeyValue returns the underlying bucket (for tests and tooling).
func (s *Store) KeyValue() jetstream.KeyValue { return s.kv }

// Item returns the item of sku as stored, marks unresolved, and the
// revision it was read at, or an error wrapping stock.ErrUnknownSKU.
// Readers want View.
func (s *Store) Item(ctx context.Context, sku string) (stock.Item, uint64, error) {
	var it stock.Item
	rev, err := s.get(ctx, itemPrefix+sku, &it)
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return it, 0, fmt.Errorf("sku %s: %w", sku, stock.ErrUnknownSKU)
	}
	return it, rev, err
}

// View returns the item of sku as its orders' decisions make it: the
// reserve marks of final orders resolved (a committed order's units sold,
// a released one's available; stock.Item.Resolve), looking up every record
// of a reserve mark this process does not know final. The revision is the
// stored version's: the view may be written at it (resolving is what any
// write of the item does).
func (s *Store) View(ctx context.Context, sku string) (stock.Item, uint64, error) {
	it, rev, err := s.Item(ctx, sku)
	if err != nil {
		return it, rev, err
	}
	it, err = s.resolve(ctx, it)
	return it, rev, err
}

// resolve resolves every mark of it whose order is final, looking up the
// records of reserve marks this process does not know.
func (s *Store) resolve(ctx context.Context, it stock.Item) (stock.Item, error) {
	statuses := s.settled.of(it)
	for id, m := range it.Marks {
		if _, ok := statuses[id]; ok || m.Op != stock.OpReserve {
			continue
		}
		r, _, err := s.Reservation(ctx, id)
		if errors.Is(err, stock.ErrNoReservation) {
			continue // an attempt in flight: its units are reserved
		}
		if err != nil {
			return it, fmt.Errorf("sku %s: %w", it.SKU, err)
		}
		if r.Status.Final() {
			s.settled.add(id, r.Status)
			if statuses == nil {
				statuses = map[string]stock.Status{}
			}
			statuses[id] = r.Status
		}
	}
	out, _, err := it.Resolve(statuses)
	return out, err
}

// Items returns every catalogue item as View shows it, sorted by SKU.
func (s *Store) Items(ctx context.Context) (out []stock.Item, err error) {
	// The span is the watch, from its start to its last item; the reads
	// of reservations that resolve the items' marks are beside it.
	wctx, span := startKV(ctx, "watch", itemPrefix+">")
	defer func() {
		if span.IsRecording() {
			span.SetAttributes(tracing.AttrKVEntries.Int(len(out)))
		}
		endKV(span, 0, err)
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
			it, err := s.resolve(ctx, it)
			if err != nil {
				return nil, err
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
	ctx, span := startKV(ctx, "create", itemPrefix+it.SKU)
	rev, err := s.kv.Create(ctx, itemPrefix+it.SKU, raw)
	if err != nil {
		err = fmt.Errorf("create sku %s: %w", it.SKU, conflict(err))
	}
	endKV(span, rev, err)
	return rev, err
}

// UpdateItem replaces an item read at revision rev; it fails with
// stock.ErrConflict if the item changed since.
//
// The write also resolves the marks of the orders this process knows final
// (Settled): a committed order's reserved units become sold with the next
// write of the item, whoever makes it.
func (s *Store) UpdateItem(ctx context.Context, it stock.Item, rev uint64) (uint64, error) {
	it, _, err := it.Resolve(s.settled.of(it))
	if err != nil {
		return 0, fmt.Errorf("update sku %s: %w", it.SKU, err)
	}
	raw, err := json.Marshal(it)
	if err != nil {
		return 0, fmt.Errorf("encode sku %s: %w", it.SKU, err)
	}
	ctx, span := startKV(ctx, "update", itemPrefix+it.SKU)
	n, err := s.kv.Update(ctx, itemPrefix+it.SKU, raw, rev)
	if err != nil {
		err = fmt.Errorf("update sku %s at revision %d: %w", it.SKU, rev, conflict(err))
		endKV(span, 0, err)
		s.cache.forget(it.SKU)
		return 0, err
	}
	endKV(span, n, nil)
	s.cache.put(it, n)
	return n, nil
}

// Reservation returns the reservation of orderID and its revision, or an
// error wrapping stock.ErrNoReservation.
//
// It is read from the stream's leader, never from a replica that may lag
// (a KV get is a direct get any replica answers): the order handlers take
// this read as proof that no decision was written before it (see
// consumer.Orders).
func (s *Store) Reservation(ctx context.Context, orderID string) (stock.Reservation, uint64, error) {
	var r stock.Reservation
	sctx, span := startKV(ctx, "leader_get", reservationPrefix+orderID)
	raw, rev, err := s.leaderGet(sctx, reservationPrefix+orderID)
	endKV(span, rev, err)
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return r, 0, fmt.Errorf("order %s: %w", orderID, stock.ErrNoReservation)
	}
	if err != nil {
		return r, 0, err
	}
	if err := json.Unmarshal(raw, &r); err != nil {
		return r, 0, fmt.Errorf("decode reservation %s: %w", orderID, err)
	}
	return r, rev, nil
}

// CreateReservation stores the first decision about an order; it fails
// with stock.ErrConflict if one was recorded already.
func (s *Store) CreateReservation(ctx context.Context, r stock.Reservation) error {
	raw, err := json.Marshal(r)
	if err != nil {
		return fmt.Errorf("encode reservation %s: %w", r.OrderID, err)
	}
	ctx, span := startKV(ctx, "create", reservationPrefix+r.OrderID)
	rev, err := s.kv.Create(ctx, reservationPrefix+r.OrderID, raw)
	if err != nil {
		err = fmt.Errorf("create reservation %s: %w", r.OrderID, conflict(err))
	}
	endKV(span, rev, err)
	return err
}

// UpdateReservation replaces a reservation read at revision rev and returns
// its new revision; it fails with stock.ErrConflict if the record changed
// since.
func (s *Store) UpdateReservation(ctx context.Context, r stock.Reservation, rev uint64) (uint64, error) {
	raw, err := json.Marshal(r)
	if err != nil {
		return 0, fmt.Errorf("encode reservation %s: %w", r.OrderID, err)
	}
	ctx, span := startKV(ctx, "update", reservationPrefix+r.OrderID)
	n, err := s.kv.Update(ctx, reservationPrefix+r.OrderID, raw, rev)
	if err != nil {
		err = fmt.Errorf("update reservation %s at revision %d: %w", r.OrderID, rev, conflict(err))
	}
	endKV(span, n, err)
	return n, err
}

// Settled tells the store that orderID's record is final with status st:
// the next write of an item holding its marks resolves them.
func (s *Store) Settled(orderID string, st stock.Status) {
	if st.Final() {
		s.settled.add(orderID, st)
	}
}

// Known returns the final status of orderID if this process knows it.
func (s *Store) Known(orderID string) (stock.Status, bool) {
	return s.settled.get(orderID)
}

func (s *Store) get(ctx context.Context, key string, v any) (rev uint64, err error) {
	ctx, span := startKV(ctx, "get", key)
	defer func() { endKV(span, rev, err) }()
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
		natsconn.IsWrongLastSequence(err) {
		return fmt.Errorf("%w: %w", stock.ErrConflict, err)
	}
	return err
}

// tracerName is the instrumentation scope of the store's spans: one per
// KV operation, a child of the handler's or request's span, started only
// when that span is recorded (tracing.StartChild), so they cost nothing
// with tracing off.
const tracerName = "github.com/eventshop/inventory-service/internal/store"

// startKV starts the span of one operation on key of the bucket:
// "kv get inventory", "kv update inventory", ... ("leader_get" reads
// through the stream's leader).
func startKV(ctx context.Context, op, key string) (context.Context, oteltrace.Span) {
	return tracing.StartKV(ctx, tracerName, Bucket, op, key)
}

// endKV ends span with the revision read or written, or why there was
// none (tracing.EndKV): a lost compare-and-set or nothing stored are answers.
func endKV(span oteltrace.Span, rev uint64, err error) {
	tracing.EndKV(span, rev, err, stock.ErrConflict, jetstream.ErrKeyNotFound)
}
