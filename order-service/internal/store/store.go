// Package store keeps orders in JetStream: the orders KV bucket (one key per
// order plus a per-customer index), the order_idempotency bucket, and
// look-ups of an order's created event in the ORDERS stream, which is the
// source of truth an order can always be rebuilt from.
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
)

// Bucket names.
const (
	OrdersBucket      = "orders"
	IdempotencyBucket = "order_idempotency"
)

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

// BucketOptions tunes the buckets Ensure creates.
type BucketOptions struct {
	Replicas       int
	IdempotencyTTL time.Duration
}

// EnsureBuckets creates or updates the service's KV buckets.
func EnsureBuckets(ctx context.Context, js jetstream.JetStream, o BucketOptions) (orders, idem jetstream.KeyValue, err error) {
	if o.Replicas < 1 {
		o.Replicas = 1
	}
	orders, err = js.CreateOrUpdateKeyValue(ctx, jetstream.KeyValueConfig{
		Bucket:      OrdersBucket,
		Description: "eventshop orders by id (order.<id>) and by customer (customer.<hash>.<id>)",
		Storage:     jetstream.FileStorage,
		Replicas:    o.Replicas,
	})
	if err != nil {
		return nil, nil, fmt.Errorf("%w: ensure bucket %s: %w", ErrUnavailable, OrdersBucket, err)
	}
	idem, err = js.CreateOrUpdateKeyValue(ctx, jetstream.KeyValueConfig{
		Bucket:      IdempotencyBucket,
		Description: "eventshop POST /orders Idempotency-Key -> order id and request hash",
		Storage:     jetstream.FileStorage,
		Replicas:    o.Replicas,
		TTL:         o.IdempotencyTTL,
	})
	if err != nil {
		return nil, nil, fmt.Errorf("%w: ensure bucket %s: %w", ErrUnavailable, IdempotencyBucket, err)
	}
	return orders, idem, nil
}

// Orders is the order store.
type Orders struct {
	kv     jetstream.KeyValue
	stream jetstream.Stream
}

// NewOrders returns the store over the orders bucket and the ORDERS stream.
func NewOrders(kv jetstream.KeyValue, ordersStream jetstream.Stream) *Orders {
	return &Orders{kv: kv, stream: ordersStream}
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

// Materialize stores a new order unless it is already there. "Already
// there" includes an order that has moved on since, which is why an existing
// key is not an error. The customer index entry is written first so that
// every stored order is listed.
func (s *Orders) Materialize(ctx context.Context, o order.Order) error {
	idx, err := json.Marshal(indexEntry{OrderID: o.ID, CreatedAt: o.CreatedAt})
	if err != nil {
		return fmt.Errorf("encode index of %s: %w", o.ID, err)
	}
	if _, err := s.kv.Create(ctx, CustomerPrefix(o.CustomerID)+"."+o.ID, idx); err != nil && !errors.Is(err, jetstream.ErrKeyExists) {
		return fmt.Errorf("%w: index order %s: %w", ErrUnavailable, o.ID, err)
	}
	val, err := json.Marshal(o)
	if err != nil {
		return fmt.Errorf("encode order %s: %w", o.ID, err)
	}
	if _, err := s.kv.Create(ctx, OrderKey(o.ID), val); err != nil && !errors.Is(err, jetstream.ErrKeyExists) {
		return fmt.Errorf("%w: create order %s: %w", ErrUnavailable, o.ID, err)
	}
	return nil
}

// Update stores o if the stored order is still at revision rev; otherwise it
// returns ErrConflict.
func (s *Orders) Update(ctx context.Context, o order.Order, rev uint64) (uint64, error) {
	val, err := json.Marshal(o)
	if err != nil {
		return 0, fmt.Errorf("encode order %s: %w", o.ID, err)
	}
	next, err := s.kv.Update(ctx, OrderKey(o.ID), val, rev)
	if err != nil {
		if errors.Is(err, jetstream.ErrKeyRevisionMismatch) || events.IsWrongLastSequence(err) {
			return 0, fmt.Errorf("%w: order %s revision %d", ErrConflict, o.ID, rev)
		}
		return 0, fmt.Errorf("%w: update order %s: %w", ErrUnavailable, o.ID, err)
	}
	return next, nil
}

// Created rebuilds the PENDING order from its orders.<id>.created event, or
// returns order.ErrNotFound if there is none.
func (s *Orders) Created(ctx context.Context, orderID string) (order.Order, error) {
	subject, err := events.Subject(events.OrderCreated, orderID)
	if err != nil {
		return order.Order{}, fmt.Errorf("%w: %w", order.ErrNotFound, err)
	}
	msg, err := s.stream.GetLastMsgForSubject(ctx, subject)
	if err != nil {
		if errors.Is(err, jetstream.ErrMsgNotFound) {
			return order.Order{}, fmt.Errorf("%w: %s has no created event", order.ErrNotFound, orderID)
		}
		return order.Order{}, fmt.Errorf("%w: get %s: %w", ErrUnavailable, subject, err)
	}
	env, err := events.Decode(subject, msg.Data)
	if err != nil {
		return order.Order{}, fmt.Errorf("%w: %s: %w", ErrCorrupt, subject, err)
	}
	var d events.OrderCreatedData
	if err := env.DecodeData(&d); err != nil {
		return order.Order{}, fmt.Errorf("%w: %s: %w", ErrCorrupt, subject, err)
	}
	o, err := order.New(order.Draft{
		ID:          d.OrderID,
		CustomerID:  d.CustomerID,
		Items:       Items(d.Items),
		CreatedAt:   d.CreatedAt,
		TraceParent: env.TraceParent,
	})
	if err != nil {
		return order.Order{}, fmt.Errorf("%w: %s: %w", ErrCorrupt, subject, err)
	}
	return o, nil
}

// Find returns the stored order, or the PENDING order its created event
// describes when the store has not materialized it (yet).
func (s *Orders) Find(ctx context.Context, orderID string) (order.Order, error) {
	o, _, err := s.Get(ctx, orderID)
	if errors.Is(err, order.ErrNotFound) {
		return s.Created(ctx, orderID)
	}
	return o, err
}

// ListByCustomer returns the customer's orders, newest first.
func (s *Orders) ListByCustomer(ctx context.Context, customerID string) ([]order.Order, error) {
	prefix := CustomerPrefix(customerID)
	lister, err := s.kv.ListKeysFiltered(ctx, prefix+".*")
	if err != nil {
		return nil, fmt.Errorf("%w: list %s: %w", ErrUnavailable, prefix, err)
	}
	seen := map[string]bool{}
	var ids []string
	for key := range lister.Keys() {
		id := strings.TrimPrefix(key, prefix+".")
		if !seen[id] {
			seen[id] = true
			ids = append(ids, id)
		}
	}
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("%w: list %s: %w", ErrUnavailable, prefix, err)
	}
	out := make([]order.Order, 0, len(ids))
	for _, id := range ids {
		o, err := s.Find(ctx, id)
		if errors.Is(err, order.ErrNotFound) {
			continue // an index entry whose order is gone: nothing to show
		}
		if err != nil {
			return nil, err
		}
		if o.CustomerID == customerID { // guard against a hash-prefix collision
			out = append(out, o)
		}
	}
	slices.SortFunc(out, func(a, b order.Order) int {
		if c := b.CreatedAt.Compare(a.CreatedAt); c != 0 {
			return c
		}
		return strings.Compare(b.ID, a.ID)
	})
	return out, nil
}

// Items converts the contract's items into the domain's.
func Items(in []events.Item) []order.Item {
	out := make([]order.Item, len(in))
	for i, it := range in {
		out[i] = order.Item{SKU: it.SKU, Quantity: it.Quantity}
	}
	return out
}

// Idempotency remembers which order an Idempotency-Key created.
type Idempotency struct {
	kv jetstream.KeyValue
}

// NewIdempotency returns the store over the order_idempotency bucket.
func NewIdempotency(kv jetstream.KeyValue) *Idempotency { return &Idempotency{kv: kv} }

// idemRecord is the value of an idempotency key.
type idemRecord struct {
	OrderID     string `json:"order_id"`
	RequestHash string `json:"request_hash"`
}

// IdempotencyKey is the bucket key of a client's Idempotency-Key: its hex
// SHA-256, because the client's text may hold characters keys cannot.
func IdempotencyKey(clientKey string) string {
	sum := sha256.Sum256([]byte(clientKey))
	return hex.EncodeToString(sum[:])
}

// Claim records that clientKey belongs to orderID and the request with
// requestHash, unless the key is already recorded. It returns the recorded
// owner: orderID and requestHash when this call recorded them, the earlier
// ones otherwise.
func (i *Idempotency) Claim(ctx context.Context, clientKey, orderID, requestHash string) (ownerID, ownerHash string, err error) {
	key := IdempotencyKey(clientKey)
	val, err := json.Marshal(idemRecord{OrderID: orderID, RequestHash: requestHash})
	if err != nil {
		return "", "", fmt.Errorf("encode idempotency record: %w", err)
	}
	// Two tries: the earlier record may expire between Create and Get.
	for range 2 {
		_, err = i.kv.Create(ctx, key, val)
		if err == nil {
			return orderID, requestHash, nil
		}
		if !errors.Is(err, jetstream.ErrKeyExists) {
			return "", "", fmt.Errorf("%w: claim idempotency key: %w", ErrUnavailable, err)
		}
		e, err := i.kv.Get(ctx, key)
		if errors.Is(err, jetstream.ErrKeyNotFound) {
			continue
		}
		if err != nil {
			return "", "", fmt.Errorf("%w: read idempotency key: %w", ErrUnavailable, err)
		}
		var rec idemRecord
		if err := json.Unmarshal(e.Value(), &rec); err != nil {
			return "", "", fmt.Errorf("%w: idempotency record: %w", ErrCorrupt, err)
		}
		return rec.OrderID, rec.RequestHash, nil
	}
	return "", "", fmt.Errorf("%w: idempotency key kept vanishing", ErrUnavailable)
}
