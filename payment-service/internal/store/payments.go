// Package store holds the payment service's JetStream adapters: the
// payments KV bucket, and the look-up of an order's payment token in the
// ORDERS stream.
package store

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/nats-io/nats.go/jetstream"
	oteltrace "go.opentelemetry.io/otel/trace"

	"github.com/eventshop/payment-service/internal/payment"
	"github.com/eventshop/shared/platform/natsconn"
	"github.com/eventshop/shared/platform/tracing"
)

// PaymentsBucket is the KV bucket of payment records, keyed by order id.
const PaymentsBucket = "payments"

// Payments is the payments KV bucket.
type Payments struct {
	kv jetstream.KeyValue
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
	return &Payments{kv: kv}, nil
}

// Get returns the order's payment record, or an error wrapping
// payment.ErrNotFound.
func (p *Payments) Get(ctx context.Context, orderID string) (payment.Record, error) {
	rec, _, err := p.Load(ctx, orderID)
	return rec, err
}

// Load returns the order's payment record and its revision, or an error
// wrapping payment.ErrNotFound.
func (p *Payments) Load(ctx context.Context, orderID string) (rec payment.Record, rev uint64, err error) {
	ctx, span := startKV(ctx, "get", orderID)
	defer func() { endKV(span, rev, err) }()
	e, err := p.kv.Get(ctx, orderID)
	if err != nil {
		if errors.Is(err, jetstream.ErrKeyNotFound) {
			return payment.Record{}, 0, fmt.Errorf("order %s: %w", orderID, payment.ErrNotFound)
		}
		return payment.Record{}, 0, fmt.Errorf("get payment %s: %w", orderID, err)
	}
	if err := json.Unmarshal(e.Value(), &rec); err != nil {
		return payment.Record{}, 0, fmt.Errorf("decode payment %s: %w: %w", orderID, payment.ErrInvalidRecord, err)
	}
	return rec, e.Revision(), nil
}

// Create writes rec if the order has no record yet (a compare-and-set on
// "no revision"); if it has one, the error wraps payment.ErrConflict.
func (p *Payments) Create(ctx context.Context, rec payment.Record) (rev uint64, err error) {
	ctx, span := startKV(ctx, "create", rec.OrderID)
	defer func() { endKV(span, rev, err) }()
	raw, err := encode(rec)
	if err != nil {
		return 0, err
	}
	rev, err = p.kv.Create(ctx, rec.OrderID, raw)
	if err != nil {
		if errors.Is(err, jetstream.ErrKeyExists) {
			return 0, fmt.Errorf("create payment %s: %w", rec.OrderID, payment.ErrConflict)
		}
		return 0, fmt.Errorf("create payment %s: %w", rec.OrderID, err)
	}
	return rev, nil
}

// Update replaces the record stored at revision rev; if it changed since,
// the error wraps payment.ErrConflict.
func (p *Payments) Update(ctx context.Context, rec payment.Record, rev uint64) (next uint64, err error) {
	ctx, span := startKV(ctx, "update", rec.OrderID)
	defer func() { endKV(span, next, err) }()
	raw, err := encode(rec)
	if err != nil {
		return 0, err
	}
	next, err = p.kv.Update(ctx, rec.OrderID, raw, rev)
	if err != nil {
		if errors.Is(err, jetstream.ErrKeyExists) || natsconn.IsWrongLastSequence(err) {
			return 0, fmt.Errorf("update payment %s at revision %d: %w", rec.OrderID, rev, payment.ErrConflict)
		}
		return 0, fmt.Errorf("update payment %s: %w", rec.OrderID, err)
	}
	return next, nil
}

// scope names the store's spans.
const scope = "github.com/eventshop/payment-service/internal/store"

// startKV starts the child span of one payments-bucket operation on key,
// only inside a recording span (tracing.StartKV: free when tracing is off).
func startKV(ctx context.Context, op, key string) (context.Context, oteltrace.Span) {
	return tracing.StartKV(ctx, scope, PaymentsBucket, op, key)
}

// endKV ends span with the revision read or written, or why there was
// none (tracing.EndKV): a lost compare-and-set or no record are answers.
func endKV(span oteltrace.Span, rev uint64, err error) {
	tracing.EndKV(span, rev, err, payment.ErrConflict, payment.ErrNotFound)
}

func encode(rec payment.Record) ([]byte, error) {
	if err := rec.Validate(); err != nil {
		return nil, err
	}
	raw, err := json.Marshal(rec)
	if err != nil {
		return nil, fmt.Errorf("encode payment %s: %w", rec.OrderID, err)
	}
	return raw, nil
}
