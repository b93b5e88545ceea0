// Package store keeps orders in JetStream: the orders KV bucket (one key per
// order plus a per-customer index) and look-ups of an order's created event
// in the ORDERS stream, which is the source of truth an order can always be
// rebuilt from: an order is stored in the bucket only from its first
// transition on.
package store

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/eventshop/order-service/internal/order"
	"github.com/eventshop/shared/events"
	"github.com/eventshop/shared/platform/natsconn"
)

// OrdersBucket is the KV bucket of orders.
const OrdersBucket = "orders"

// Sentinel errors of the store.
var (
	// ErrConflict means the order changed since it was read: re-read and
	// apply again.
	ErrConflict = errors.New("order changed concurrently")
	// ErrUnavailable wraps a failure to reach JetStream.
	ErrUnavailable = errors.New("order store unavailable")
	// ErrCorrupt means a stored value or event cannot be decoded.
	ErrCorrupt = errors.New("corrupt stored order")
)

// EnsureBucket creates or updates the orders bucket.
func EnsureBucket(ctx context.Context, js jetstream.JetStream, replicas int) (jetstream.KeyValue, error) {
	orders, err := js.CreateOrUpdateKeyValue(ctx, jetstream.KeyValueConfig{
		Bucket:      OrdersBucket,
		Description: "eventshop orders by id (order.<id>) and by customer (customer.<hash>.<id>)",
		Storage:     jetstream.FileStorage,
		Replicas:    max(replicas, 1),
	})
	if err != nil {
		return nil, fmt.Errorf("%w: ensure bucket %s: %w", ErrUnavailable, OrdersBucket, err)
	}
	return orders, nil
}

// Orders is the order store.
type Orders struct {
	kv jetstream.KeyValue
	// streams reads the ORDERS and INVENTORY events (INVENTORY is looked
	// up on first use: another service owns it).
	streams *natsconn.Streams
}

// NewOrders returns the store over the orders bucket and, through js, the
// ORDERS and INVENTORY streams.
func NewOrders(kv jetstream.KeyValue, js jetstream.JetStream) *Orders {
	return &Orders{kv: kv, streams: natsconn.NewStreams(js)}
}

// OrderKey is the key of an order in the orders bucket.
func OrderKey(orderID string) string { return "order." + orderID }

// CustomerPrefix is the key prefix of a customer's index entries. The
// customer id is hashed because it is free text and keys are not; 16 hex
// digits make collisions negligible, and ListByCustomer checks anyway.
func CustomerPrefix(customerID string) string {
	sum := sha256.Sum256([]byte(customerID))
	return "customer." + hex.EncodeToString(sum[:])[:16]
}

// indexEntry is the value of a customer index key.
type indexEntry struct {
	OrderID   string    `json:"order_id"`
	CreatedAt time.Time `json:"created_at"`
}

// Get returns the order and its revision, or order.ErrNotFound.
func (s *Orders) Get(ctx context.Context, orderID string) (order.Order, uint64, error) {
	e, err := s.kv.Get(ctx, OrderKey(orderID))
	if err != nil {
		if errors.Is(err, jetstream.ErrKeyNotFound) {
			return order.Order{}, 0, fmt.Errorf("%w: %s", order.ErrNotFound, orderID)
		}
		return order.Order{}, 0, fmt.Errorf("%w: get order %s: %w", ErrUnavailable, orderID, err)
	}
	var o order.Order
	if err := json.Unmarshal(e.Value(), &o); err != nil {
		return order.Order{}, 0, fmt.Errorf("%w: order %s: %w", ErrCorrupt, orderID, err)
	}
	return o, e.Revision(), nil
}

// Index lists a new order under its customer, unless it is listed already.
// An order is not stored before it is final: its events are the order
// until its final transition stores it (Update at revision 0).
func (s *Orders) Index(ctx context.Context, o order.Order) error {
	idx, err := json.Marshal(indexEntry{OrderID: o.ID, CreatedAt: o.CreatedAt})
	if err != nil {
		return fmt.Errorf("encode index of %s: %w", o.ID, err)
	}
	if _, err := s.kv.Create(ctx, CustomerPrefix(o.CustomerID)+"."+o.ID, idx); err != nil && !errors.Is(err, jetstream.ErrKeyExists) {
		return fmt.Errorf("%w: index order %s: %w", ErrUnavailable, o.ID, err)
	}
	return nil
}

// Update stores o if the stored order is still at revision rev, or, with
// rev 0, if no order is stored yet; otherwise it returns ErrConflict.
func (s *Orders) Update(ctx context.Context, o order.Order, rev uint64) (uint64, error) {
	val, err := json.Marshal(o)
	if err != nil {
		return 0, fmt.Errorf("encode order %s: %w", o.ID, err)
	}
	var next uint64
	if rev == 0 {
		next, err = s.kv.Create(ctx, OrderKey(o.ID), val)
	} else {
		next, err = s.kv.Update(ctx, OrderKey(o.ID), val, rev)
	}
	if err != nil {
		if errors.Is(err, jetstream.ErrKeyExists) || errors.Is(err, jetstream.ErrKeyRevisionMismatch) || events.IsWrongLastSequence(err) {
			return 0, fmt.Errorf("%w: order %s revision %d", ErrConflict, o.ID, rev)
		}
		return 0, fmt.Errorf("%w: update order %s: %w", ErrUnavailable, o.ID, err)
	}
	return next, nil
}

// Request returns what the order's orders.<id>.created event says was
// asked for, and the event's traceparent, or order.ErrNotFound if there is
// no such event.
func (s *Orders) Request(ctx context.Context, orderID string) (events.OrderCreatedData, string, error) {
	subject, err := events.Subject(events.OrderCreated, orderID)
	if err != nil {
		return events.OrderCreatedData{}, "", fmt.Errorf("%w: %w", order.ErrNotFound, err)
	}
	msg, err := s.streams.Last(ctx, events.StreamOrders, subject)
	if err != nil {
		if errors.Is(err, jetstream.ErrMsgNotFound) {
			return events.OrderCreatedData{}, "", fmt.Errorf("%w: %s has no created event", order.ErrNotFound, orderID)
		}
		return events.OrderCreatedData{}, "", fmt.Errorf("%w: get %s: %w", ErrUnavailable, subject, err)
	}
	env, err := events.Decode(subject, msg.Data)
	if err != nil {
		return events.OrderCreatedData{}, "", fmt.Errorf("%w: %s: %w", ErrCorrupt, subject, err)
	}
	var d events.OrderCreatedData
	if err := env.DecodeData(&d); err != nil {
		return events.OrderCreatedData{}, "", fmt.Errorf("%w: %s: %w", ErrCorrupt, subject, err)
	}
	return d, env.TraceParent, nil
}

// Created rebuilds the PENDING order from its orders.<id>.created event, or
// returns order.ErrNotFound if there is none. The order's identity is its
// subject (the event's data must name the same order, or it is corrupt).
func (s *Orders) Created(ctx context.Context, orderID string) (order.Order, error) {
	d, tp, err := s.Request(ctx, orderID)
	if err != nil {
		return order.Order{}, err
	}
	return pending(orderID, d, tp)
}

// pending is the PENDING order orderID that a created event's data
// describes.
func pending(orderID string, d events.OrderCreatedData, traceparent string) (order.Order, error) {
	o, err := order.New(order.Draft{
		ID:          orderID,
		CustomerID:  d.CustomerID,
		Items:       Items(d.Items),
		CreatedAt:   d.CreatedAt,
		TraceParent: traceparent,
	})
	if err != nil {
		return order.Order{}, fmt.Errorf("%w: created event of %s: %w", ErrCorrupt, orderID, err)
	}
	return o, nil
}

// Current returns the order and its revision: the stored one, or, for an
// order not stored yet (it is stored from its final transition on), the
// order its events tell at revision 0: the created event, RESERVED with its
// lines and total if inventory.<id>.reserved is there. A final order
// stored before its reservation was visible (a timeout can overtake it)
// shows the reservation's lines and total: a late payment outcome is held
// to that total.
func (s *Orders) Current(ctx context.Context, orderID string) (order.Order, uint64, error) {
	o, rev, err := s.Get(ctx, orderID)
	if errors.Is(err, order.ErrNotFound) {
		o, err = s.Unstored(ctx, orderID)
		return o, 0, err
	}
	if err != nil || len(o.Lines) > 0 || !o.Final() {
		return o, rev, err
	}
	r, ok, err := s.reservation(ctx, orderID)
	if err != nil || !ok {
		return o, rev, err
	}
	if o, _, err = order.ApplyReserved(o, r, o.UpdatedAt); err != nil {
		return order.Order{}, 0, fmt.Errorf("%w: %w", ErrCorrupt, err)
	}
	return o, rev, nil
}

// Unstored returns the order as its events tell it: the created event,
// RESERVED with its lines and total if inventory.<id>.reserved is there.
func (s *Orders) Unstored(ctx context.Context, orderID string) (order.Order, error) {
	o, err := s.Created(ctx, orderID)
	if err != nil {
		return order.Order{}, err
	}
	r, ok, err := s.reservation(ctx, orderID)
	if err != nil || !ok {
		return o, err
	}
	if o, _, err = order.ApplyReserved(o, r, r.At); err != nil {
		return order.Order{}, fmt.Errorf("%w: %w", ErrCorrupt, err)
	}
	return o, nil
}

// Find returns the order as Current tells it.
func (s *Orders) Find(ctx context.Context, orderID string) (order.Order, error) {
	o, _, err := s.Current(ctx, orderID)
	return o, err
}

// reservation reads the order's inventory.<id>.reserved event, if there is
// one. An event there that is not a valid reservation (its total is not
// the sum of its lines, say) is no reservation: the inventory service's
// publisher cannot write it, so someone else did, and every consumer of
// reservations refuses it. The order goes on as if it had none (its
// deadline cancels it, which releases any stock held for it).
func (s *Orders) reservation(ctx context.Context, orderID string) (order.Reservation, bool, error) {
	subject, err := events.Subject(events.InventoryReserved, orderID)
	if err != nil {
		return order.Reservation{}, false, fmt.Errorf("%w: %w", order.ErrNotFound, err)
	}
	msg, err := s.streams.Last(ctx, events.StreamInventory, subject)
	if errors.Is(err, jetstream.ErrMsgNotFound) {
		return order.Reservation{}, false, nil
	}
	if err != nil {
		return order.Reservation{}, false, fmt.Errorf("%w: get %s: %w", ErrUnavailable, subject, err)
	}
	env, err := events.Decode(subject, msg.Data)
	if err != nil {
		return order.Reservation{}, false, nil
	}
	var d events.InventoryReservedData
	if err := env.DecodeData(&d); err != nil {
		return order.Reservation{}, false, nil
	}
	return reservationOf(d, env.Time), true, nil
}

// reservationOf converts the contract's reserved event into the domain's.
func reservationOf(d events.InventoryReservedData, at time.Time) order.Reservation {
	r := order.Reservation{OrderID: d.OrderID, TotalCents: d.TotalCents, Currency: d.Currency, At: at, Lines: make([]order.Line, len(d.Lines))}
	for i, l := range d.Lines {
		r.Lines[i] = order.Line{SKU: l.SKU, Name: l.Name, Quantity: l.Quantity, UnitPriceCents: l.UnitPriceCents, LineTotalCents: l.LineTotalCents}
	}
	return r
}

// Cursor is where a page of a customer's orders ends: the index entry of
// its last order. The next page starts after it.
type Cursor struct {
	CreatedAt time.Time
	OrderID   string
}

// before reports whether e sorts after c in newest-first order, that is
// belongs to a page after c's.
func (c Cursor) before(e indexed) bool {
	if cmp := e.CreatedAt.Compare(c.CreatedAt); cmp != 0 {
		return cmp < 0
	}
	return e.OrderID < c.OrderID
}

// indexed is one customer index entry.
type indexed struct {
	OrderID   string
	CreatedAt time.Time
}

// ListByCustomer returns up to limit of the customer's orders, newest
// first, after the cursor (nil: from the newest), and the cursor of the
// next page (nil on the last page). The index entries are read in one
// pass (a watch of the customer's keys, with their values); only the
// orders of the page are read one by one.
func (s *Orders) ListByCustomer(ctx context.Context, customerID string, after *Cursor, limit int) ([]order.Order, *Cursor, error) {
	entries, err := s.index(ctx, customerID)
	if err != nil {
		return nil, nil, err
	}
	slices.SortFunc(entries, func(a, b indexed) int {
		if c := b.CreatedAt.Compare(a.CreatedAt); c != 0 {
			return c
		}
		return strings.Compare(b.OrderID, a.OrderID)
	})
	if after != nil {
		i, _ := slices.BinarySearchFunc(entries, *after, func(e indexed, c Cursor) int {
			if c.before(e) {
				return 1
			}
			return -1
		})
		entries = entries[i:]
	}
	out := make([]order.Order, 0, min(limit, len(entries)))
	for i, e := range entries {
		o, err := s.Find(ctx, e.OrderID)
		switch {
		case errors.Is(err, order.ErrNotFound), errors.Is(err, ErrCorrupt):
			continue // an entry whose order was never published, or whose events are invalid: nothing to show
		case err != nil:
			return nil, nil, err
		}
		if o.CustomerID != customerID { // guard against a hash-prefix collision
			continue
		}
		out = append(out, o)
		if len(out) == limit {
			if i == len(entries)-1 {
				return out, nil, nil
			}
			return out, &Cursor{CreatedAt: e.CreatedAt, OrderID: e.OrderID}, nil
		}
	}
	return out, nil, nil
}

// index reads the customer's index entries.
func (s *Orders) index(ctx context.Context, customerID string) ([]indexed, error) {
	prefix := CustomerPrefix(customerID)
	w, err := s.kv.Watch(ctx, prefix+".*", jetstream.IgnoreDeletes())
	if err != nil {
		return nil, fmt.Errorf("%w: list %s: %w", ErrUnavailable, prefix, err)
	}
	defer func() { _ = w.Stop() }() // a watch that failed to stop is dropped with its subscription
	seen := map[string]bool{}
	var out []indexed
	for {
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("%w: list %s: %w", ErrUnavailable, prefix, ctx.Err())
		case e, ok := <-w.Updates():
			if !ok {
				return nil, fmt.Errorf("%w: list %s: the watch stopped", ErrUnavailable, prefix)
			}
			if e == nil { // every entry has been read
				return out, nil
			}
			id := strings.TrimPrefix(e.Key(), prefix+".")
			if seen[id] {
				continue
			}
			seen[id] = true
			var v indexEntry
			if err := json.Unmarshal(e.Value(), &v); err != nil {
				v = indexEntry{} // sorts last; its order is still looked up
			}
			out = append(out, indexed{OrderID: id, CreatedAt: v.CreatedAt})
		}
	}
}

// Items converts the contract's items into the domain's.
func Items(in []events.Item) []order.Item {
	out := make([]order.Item, len(in))
	for i, it := range in {
		out[i] = order.Item{SKU: it.SKU, Quantity: it.Quantity}
	}
	return out
}
