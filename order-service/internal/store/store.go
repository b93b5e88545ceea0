// Package store reads orders from JetStream: an order is its events (the
// created event, its reservation, and the final event that decided it) and
// the orders KV bucket holds the per-customer index (and, read only, the
// order.<id> records earlier versions decided orders with). See
// docs/architecture.md, "Order creation and the order's state".
package store

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"slices"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/eventshop/order-service/internal/app"
	"github.com/eventshop/order-service/internal/order"
	"github.com/eventshop/shared/events"
	"github.com/eventshop/shared/platform/kvstore"
	"github.com/eventshop/shared/platform/natsconn"
	"github.com/eventshop/shared/platform/tracing"
)

// OrdersBucket is the KV bucket of orders.
const OrdersBucket = "orders"

// ErrUnavailable wraps a failure to reach JetStream. It is an
// app.ErrUnavailable (errors.Is), which the API answers with 503. A stored
// value or event that cannot be decoded is app.ErrCorrupt.
var ErrUnavailable error = unavailable{}

type unavailable struct{}

func (unavailable) Error() string        { return "order store unavailable" }
func (unavailable) Is(target error) bool { return target == app.ErrUnavailable }

// EnsureBucket creates or updates the orders bucket.
func EnsureBucket(ctx context.Context, js jetstream.JetStream, replicas int) (jetstream.KeyValue, error) {
	orders, err := js.CreateOrUpdateKeyValue(ctx, jetstream.KeyValueConfig{
		Bucket:      OrdersBucket,
		Description: "eventshop orders by customer (customer.<hash>.<id>); order.<id>: decisions of versions before issue 8, read only",
		Storage:     jetstream.FileStorage,
		Replicas:    max(replicas, 1),
	})
	if err != nil {
		return nil, fmt.Errorf("%w: ensure bucket %s: %w", ErrUnavailable, OrdersBucket, err)
	}
	return orders, nil
}

// LegacyHorizon returns the ORDERS stream sequence at or before which an
// order's created event may have an order.<id> record of an earlier
// version (0: the bucket holds none). Earlier versions no longer run when
// this one starts (docs/releasing.md), so no record is written for an
// order created after the stream's last sequence now.
func LegacyHorizon(ctx context.Context, js jetstream.JetStream) (uint64, error) {
	streams := natsconn.NewStreams(js)
	_, err := streams.Last(ctx, "KV_"+OrdersBucket, "$KV."+OrdersBucket+"."+OrderKey(">"))
	if errors.Is(err, jetstream.ErrMsgNotFound) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("%w: look for order records: %w", ErrUnavailable, err)
	}
	s, err := streams.Get(ctx, events.StreamOrders)
	if err != nil {
		return 0, fmt.Errorf("%w: %w", ErrUnavailable, err)
	}
	info, err := s.Info(ctx)
	if err != nil {
		return 0, fmt.Errorf("%w: %s info: %w", ErrUnavailable, events.StreamOrders, err)
	}
	return info.State.LastSeq, nil
}

// Orders is the order store.
type Orders struct {
	kv jetstream.KeyValue
	// entries are the customer index's keys, records the order.<id> keys.
	entries *kvstore.Repo[indexEntry]
	records *kvstore.Repo[order.Order]
	// streams reads the ORDERS and INVENTORY events (INVENTORY is looked
	// up on first use: another service owns it).
	streams *natsconn.Streams
	// legacyUpTo: orders whose created event is at or before this ORDERS
	// sequence may have an order.<id> record (LegacyHorizon).
	legacyUpTo uint64
}

// Option configures Orders.
type Option func(*Orders)

// WithLegacyHorizon looks order.<id> records up only for orders created at
// or before ORDERS sequence seq (LegacyHorizon); by default, for every
// order not decided by an event.
func WithLegacyHorizon(seq uint64) Option {
	return func(s *Orders) { s.legacyUpTo = seq }
}

// NewOrders returns the store over the orders bucket and, through js, the
// ORDERS and INVENTORY streams.
func NewOrders(kv jetstream.KeyValue, js jetstream.JetStream, opts ...Option) (*Orders, error) {
	entries, err := kvstore.New[indexEntry](kv, kvstore.WithTracer(tracerName))
	if err != nil {
		return nil, err
	}
	records, err := kvstore.New[order.Order](kv, kvstore.WithTracer(tracerName), kvstore.WithPrefix(OrderKey("")))
	if err != nil {
		return nil, err
	}
	s := &Orders{kv: kv, entries: entries, records: records, streams: natsconn.NewStreams(js), legacyUpTo: math.MaxUint64}
	for _, opt := range opts {
		opt(s)
	}
	return s, nil
}

// OrderKey is the key of an order record in the orders bucket (written by
// versions before issue 8, read only now).
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

// Index lists a new order under its customer, unless it is listed already.
func (s *Orders) Index(ctx context.Context, o order.Order) error {
	key := CustomerPrefix(o.CustomerID) + "." + o.ID
	_, err := s.entries.Create(ctx, key, indexEntry{OrderID: o.ID, CreatedAt: o.CreatedAt})
	if err != nil && !errors.Is(err, kvstore.ErrConflict) {
		return fmt.Errorf("%w: index order %s: %w", ErrUnavailable, o.ID, err)
	}
	return nil
}

// head is an order's last event in ORDERS, read in one get.
type head struct {
	// final is the order's final event, if it is stored.
	final *events.Envelope
	// created is the created event when it is the last (then no final
	// event is stored), at stream sequence seq.
	created *events.Envelope
	seq     uint64
	// replayed: the last created event is a copy (a dead letter replayed),
	// so a final event may be stored before it.
	replayed bool
}

// readHead reads the order's last event in ORDERS (orders.<id>.*), or returns
// order.ErrNotFound. It is all the deadline needs to know that an order
// is final (Undecided).
func (s *Orders) readHead(ctx context.Context, orderID string) (head, error) {
	if !events.ValidID(orderID) {
		return head{}, fmt.Errorf("%w: %w", order.ErrNotFound, events.ErrInvalidID)
	}
	filter := events.OrderSubjects(events.OrderCreated, orderID)
	msg, err := s.last(ctx, events.StreamOrders, filter)
	if errors.Is(err, jetstream.ErrMsgNotFound) {
		return head{}, fmt.Errorf("%w: %s has no events", order.ErrNotFound, orderID)
	}
	if err != nil {
		return head{}, fmt.Errorf("%w: get %s: %w", ErrUnavailable, filter, err)
	}
	env, err := events.Decode(msg.Subject, msg.Data)
	if err != nil {
		return head{}, fmt.Errorf("%w: %s: %w", app.ErrCorrupt, msg.Subject, err)
	}
	switch env.Type {
	case events.OrderConfirmed, events.OrderCancelled:
		return head{final: &env}, nil
	case events.OrderCreated:
		h := head{created: &env, seq: msg.Sequence, replayed: events.Republished(msg.Header, env)}
		if !h.replayed {
			return h, nil
		}
		final, err := s.finalEvent(ctx, orderID)
		if err != nil {
			return head{}, err
		}
		h.final = final
		return h, nil
	}
	return head{}, fmt.Errorf("%w: %s: a %s event among the order's", app.ErrCorrupt, msg.Subject, env.Type)
}

// finalEvent reads the order's confirmed and cancelled subjects: the
// first stored of the two decided (the other is not from this version).
func (s *Orders) finalEvent(ctx context.Context, orderID string) (*events.Envelope, error) {
	var (
		first *events.Envelope
		seq   uint64
	)
	for _, t := range []events.Type{events.OrderConfirmed, events.OrderCancelled} {
		subject, err := events.Subject(t, orderID)
		if err != nil {
			return nil, fmt.Errorf("%w: %w", order.ErrNotFound, err)
		}
		msg, err := s.last(ctx, events.StreamOrders, subject)
		if errors.Is(err, jetstream.ErrMsgNotFound) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("%w: get %s: %w", ErrUnavailable, subject, err)
		}
		env, err := events.Decode(subject, msg.Data)
		if err != nil {
			return nil, fmt.Errorf("%w: %s: %w", app.ErrCorrupt, subject, err)
		}
		if first == nil || msg.Sequence < seq {
			first, seq = &env, msg.Sequence
		}
	}
	return first, nil
}

// Current returns the order as its events tell it: its last event (readHead),
// then the rest (state).
func (s *Orders) Current(ctx context.Context, orderID string) (app.State, error) {
	h, err := s.readHead(ctx, orderID)
	if err != nil {
		return app.State{}, err
	}
	return s.state(ctx, orderID, h)
}

// Undecided returns the order as Current does, and true, unless its final
// event is stored: then false, and nothing is read beside its last event.
// An order an earlier version's record decided is undecided while its
// event is not published: its next handler publishes it.
func (s *Orders) Undecided(ctx context.Context, orderID string) (app.State, bool, error) {
	h, err := s.readHead(ctx, orderID)
	if err != nil || h.final != nil {
		return app.State{}, false, err
	}
	st, err := s.state(ctx, orderID, h)
	return st, true, err
}

// state returns the order whose last event is h: the created event
// (PENDING), RESERVED with its lines and total if inventory.<id>.reserved
// is there, and as its final event says if it has one; without a final
// event, an order.<id> record of an earlier version decides it. A final
// order shows the reservation's lines and total even if the reservation
// came after the decision (a timeout can overtake it): a late payment
// outcome is held to that total.
func (s *Orders) state(ctx context.Context, orderID string, h head) (app.State, error) {
	created := h.created
	if created == nil {
		env, err := s.createdEvent(ctx, orderID)
		if err != nil {
			return app.State{}, err
		}
		created = &env
	}
	o, err := pending(orderID, *created)
	if err != nil {
		return app.State{}, err
	}
	r, reserved, err := s.reservation(ctx, orderID)
	if err != nil {
		return app.State{}, err
	}
	if reserved {
		if o, _, err = order.ApplyReserved(o, r, r.At); err != nil {
			return app.State{}, fmt.Errorf("%w: %w", app.ErrCorrupt, err)
		}
	}
	if h.final != nil {
		d, err := app.DecisionOf(*h.final)
		if err != nil {
			return app.State{}, err
		}
		if o, err = order.ApplyDecision(o, d); err != nil {
			return app.State{}, fmt.Errorf("%w: %w", app.ErrCorrupt, err)
		}
		return app.State{Order: o}, nil
	}
	st := app.State{Order: o, After: h.seq}
	if !h.replayed && h.seq > s.legacyUpTo {
		return st, nil // created after every order.<id> record was written
	}
	rec, found, err := s.record(ctx, orderID)
	if err != nil || !found {
		return st, err
	}
	if len(rec.Lines) == 0 && reserved {
		if rec, _, err = order.ApplyReserved(rec, r, rec.UpdatedAt); err != nil {
			return app.State{}, fmt.Errorf("%w: %w", app.ErrCorrupt, err)
		}
	}
	st.Order = rec
	return st, nil
}

// Find returns the order as Current tells it.
func (s *Orders) Find(ctx context.Context, orderID string) (order.Order, error) {
	st, err := s.Current(ctx, orderID)
	return st.Order, err
}

// record reads the order.<id> record an earlier version decided the order
// with, if there is one.
func (s *Orders) record(ctx context.Context, orderID string) (order.Order, bool, error) {
	o, _, err := s.records.Get(ctx, orderID)
	switch {
	case errors.Is(err, kvstore.ErrNotFound):
		return order.Order{}, false, nil
	case errors.Is(err, kvstore.ErrCorrupt):
		return order.Order{}, false, fmt.Errorf("%w: order record %s: %w", app.ErrCorrupt, orderID, err)
	case err != nil:
		return order.Order{}, false, fmt.Errorf("%w: get order %s: %w", ErrUnavailable, orderID, err)
	}
	if o.ID != orderID || !o.Final() {
		return order.Order{}, false, fmt.Errorf("%w: order record %s holds order %q, %s", app.ErrCorrupt, orderID, o.ID, o.Status)
	}
	return o, true, nil
}

// createdEvent reads the order's orders.<id>.created event, or returns
// order.ErrNotFound if there is none.
func (s *Orders) createdEvent(ctx context.Context, orderID string) (events.Envelope, error) {
	subject, err := events.Subject(events.OrderCreated, orderID)
	if err != nil {
		return events.Envelope{}, fmt.Errorf("%w: %w", order.ErrNotFound, err)
	}
	msg, err := s.last(ctx, events.StreamOrders, subject)
	if err != nil {
		if errors.Is(err, jetstream.ErrMsgNotFound) {
			return events.Envelope{}, fmt.Errorf("%w: %s has no created event", order.ErrNotFound, orderID)
		}
		return events.Envelope{}, fmt.Errorf("%w: get %s: %w", ErrUnavailable, subject, err)
	}
	env, err := events.Decode(subject, msg.Data)
	if err != nil {
		return events.Envelope{}, fmt.Errorf("%w: %s: %w", app.ErrCorrupt, subject, err)
	}
	return env, nil
}

// pending is the PENDING order orderID that its created event describes.
// The order's identity is its subject (the event's data must name the
// same order, or it is corrupt).
func pending(orderID string, env events.Envelope) (order.Order, error) {
	var d events.OrderCreatedData
	if err := env.DecodeData(&d); err != nil {
		return order.Order{}, fmt.Errorf("%w: created event of %s: %w", app.ErrCorrupt, orderID, err)
	}
	o, err := order.New(order.Draft{
		ID:          orderID,
		CustomerID:  d.CustomerID,
		Items:       app.Items(d.Items),
		CreatedAt:   d.CreatedAt,
		TraceParent: env.TraceParent,
		ShipTo:      (*order.Address)(d.ShippingAddress),
	})
	if err != nil {
		return order.Order{}, fmt.Errorf("%w: created event of %s: %w", app.ErrCorrupt, orderID, err)
	}
	return o, nil
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
	msg, err := s.last(ctx, events.StreamInventory, subject)
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

// before reports whether e sorts after c in newest-first order, that is
// belongs to a page after c's.
func before(c app.Cursor, e indexed) bool {
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
func (s *Orders) ListByCustomer(ctx context.Context, customerID string, after *app.Cursor, limit int) ([]order.Order, *app.Cursor, error) {
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
		i, _ := slices.BinarySearchFunc(entries, *after, func(e indexed, c app.Cursor) int {
			if before(c, e) {
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
		case errors.Is(err, order.ErrNotFound), errors.Is(err, app.ErrCorrupt):
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
			return out, &app.Cursor{CreatedAt: e.CreatedAt, OrderID: e.OrderID}, nil
		}
	}
	return out, nil, nil
}

// index reads the customer's index entries.
func (s *Orders) index(ctx context.Context, customerID string) (out []indexed, err error) {
	prefix := CustomerPrefix(customerID)
	ctx, span := tracing.StartKV(ctx, tracerName, OrdersBucket, "watch", prefix+".*")
	defer func() {
		if span.IsRecording() {
			span.SetAttributes(tracing.AttrKVEntries.Int(len(out)))
		}
		tracing.Fail(span, err)
		span.End()
	}()
	w, err := s.kv.Watch(ctx, prefix+".*", jetstream.IgnoreDeletes())
	if err != nil {
		return nil, fmt.Errorf("%w: list %s: %w", ErrUnavailable, prefix, err)
	}
	defer func() { _ = w.Stop() }() // a watch that failed to stop is dropped with its subscription
	seen := map[string]bool{}
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

// tracerName is the instrumentation scope of the store's spans: one per
// stream read and KV operation, children of the handler's or request's
// span, started only when that span is recorded (tracing.StartChild).
const tracerName = "github.com/eventshop/order-service/internal/store"

// last reads the last message on subject (a subject filter: the last of
// all it matches) in stream, inside a span.
func (s *Orders) last(ctx context.Context, stream, subject string) (*jetstream.RawStreamMsg, error) {
	sctx, span := tracing.StartStream(ctx, tracerName, stream, "get_last", subject)
	msg, err := s.streams.Last(sctx, stream, subject)
	if span.IsRecording() {
		switch {
		case err == nil:
			span.SetAttributes(tracing.AttrStreamSeq.Int64(int64(msg.Sequence)))
		case errors.Is(err, jetstream.ErrMsgNotFound):
			span.SetAttributes(tracing.AttrStreamNotFound.Bool(true))
		default:
			tracing.Fail(span, err)
		}
	}
	span.End()
	return msg, err
}
