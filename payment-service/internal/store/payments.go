// Package store holds the payment service's JetStream adapters: the
// payments KV bucket, and the look-up of an order's payment token in the
// ORDERS stream.
package store

import (
	"context"
	"errors"
	"fmt"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/eventshop/payment-service/internal/payment"
	"github.com/eventshop/shared/events"
	"github.com/eventshop/shared/platform/kvstore"
)

// PaymentsBucket is the KV bucket of payment records, keyed by order id.
const PaymentsBucket = "payments"

// Payments is the payments KV bucket.
type Payments struct {
	records *kvstore.Repo[payment.Record]
}

// EnsurePayments creates or updates the payments bucket and returns it.
func EnsurePayments(ctx context.Context, js jetstream.JetStream, replicas int) (*Payments, error) {
	if replicas < 1 {
		replicas = 1
	}
	kv, err := js.CreateOrUpdateKeyValue(ctx, jetstream.KeyValueConfig{
		Bucket:      PaymentsBucket,
		Description: "eventshop payment records by order id (changed by compare-and-set)",
		History:     1,
		Storage:     jetstream.FileStorage,
		Replicas:    replicas,
	})
	if err != nil {
		return nil, fmt.Errorf("ensure kv bucket %s: %w", PaymentsBucket, err)
	}
	records, err := kvstore.New[payment.Record](kv, kvstore.WithTracer(scope), kvstore.WithConflict(payment.ErrConflict))
	if err != nil {
		return nil, err
	}
	return &Payments{records: records}, nil
}

// Get returns the order's payment record, or an error wrapping
// payment.ErrNotFound.
func (p *Payments) Get(ctx context.Context, orderID string) (payment.Record, error) {
	rec, _, err := p.Load(ctx, orderID)
	return rec, err
}

// Load returns the order's payment record and its revision, or an error
// wrapping payment.ErrNotFound (or payment.ErrInvalidRecord for a value
// that does not decode).
func (p *Payments) Load(ctx context.Context, orderID string) (payment.Record, uint64, error) {
	rec, rev, err := p.records.Get(ctx, orderID)
	switch {
	case errors.Is(err, kvstore.ErrNotFound):
		return payment.Record{}, 0, fmt.Errorf("order %s: %w", orderID, payment.ErrNotFound)
	case errors.Is(err, kvstore.ErrCorrupt):
		return payment.Record{}, 0, fmt.Errorf("payment %s: %w: %w", orderID, payment.ErrInvalidRecord, err)
	}
	return rec, rev, err
}

// Create writes rec if the order has no record yet (a compare-and-set on
// "no revision"); if it has one, the error wraps payment.ErrConflict.
func (p *Payments) Create(ctx context.Context, rec payment.Record) (uint64, error) {
	if err := check(rec); err != nil {
		return 0, err
	}
	return p.records.Create(ctx, rec.OrderID, rec)
}

// Update replaces the record stored at revision rev; if it changed since,
// the error wraps payment.ErrConflict.
func (p *Payments) Update(ctx context.Context, rec payment.Record, rev uint64) (uint64, error) {
	if err := check(rec); err != nil {
		return 0, err
	}
	return p.records.Update(ctx, rec.OrderID, rec, rev)
}

// check holds a record to what the bucket stores: an order id that can be
// a key and a subject token, and the domain's invariants. Either failure
// wraps payment.ErrInvalidRecord.
func check(rec payment.Record) error {
	if !events.ValidID(rec.OrderID) {
		return fmt.Errorf("%w: order id %q", payment.ErrInvalidRecord, rec.OrderID)
	}
	return rec.Validate()
}

// scope names the store's spans.
const scope = "github.com/eventshop/payment-service/internal/store"
