package store_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/eventshop/payment-service/internal/payment"
	"github.com/eventshop/payment-service/internal/store"
	"github.com/eventshop/shared/events"
	"github.com/eventshop/shared/platform/natstest"
	"github.com/eventshop/shared/platform/trace"
)

func connect(t *testing.T) jetstream.JetStream {
	t.Helper()
	_, js := natstest.Connect(t, natstest.Start(t))
	return js
}

func TestPaymentsCompareAndSet(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	js := connect(t)
	p, err := store.EnsurePayments(ctx, js, 1)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := p.Get(ctx, "o-1"); !errors.Is(err, payment.ErrNotFound) {
		t.Fatalf("Get of a missing payment err = %v, want ErrNotFound", err)
	}
	now := time.Date(2026, 11, 23, 10, 0, 0, 0, time.UTC)
	intent := payment.Record{OrderID: "o-1", Status: payment.StatusCharging, AmountCents: 2598, Currency: "USD", CreatedAt: now, UpdatedAt: now}
	rev, err := p.Create(ctx, intent)
	if err != nil || rev == 0 {
		t.Fatalf("first Create = %d, %v", rev, err)
	}
	// A second writer is told to read again, and changes nothing.
	if _, err := p.Create(ctx, payment.NewVoid("o-1", "timeout", now)); !errors.Is(err, payment.ErrConflict) {
		t.Fatalf("second Create err = %v, want ErrConflict", err)
	}
	charged := intent.Charged(payment.ChargeResult{ChargeID: "ch_1", Succeeded: true}, now)
	next, err := p.Update(ctx, charged, rev)
	if err != nil || next <= rev {
		t.Fatalf("Update = %d, %v", next, err)
	}
	// An update at the old revision lost the race.
	if _, err := p.Update(ctx, charged.Refunded("re_1", "timeout", now), rev); !errors.Is(err, payment.ErrConflict) {
		t.Fatalf("stale Update err = %v, want ErrConflict", err)
	}
	stored, storedRev, err := p.Load(ctx, "o-1")
	if err != nil || storedRev != next || stored != charged {
		t.Fatalf("Load = %+v at %d, %v; want %+v at %d", stored, storedRev, err, charged, next)
	}
	if _, err := p.Create(ctx, payment.Record{OrderID: "o-2", Status: "maybe", Currency: "USD"}); !errors.Is(err, payment.ErrInvalidRecord) {
		t.Fatalf("invalid record err = %v, want ErrInvalidRecord", err)
	}
	// An order id that cannot be a key or a subject token is no record.
	dotted := intent
	dotted.OrderID = "o.1"
	if _, err := p.Create(ctx, dotted); !errors.Is(err, payment.ErrInvalidRecord) {
		t.Fatalf("dotted order id err = %v, want ErrInvalidRecord", err)
	}
}

func TestOrderTokens(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	js := connect(t)
	tokens := store.NewOrderTokens(js)
	if _, err := tokens.Token(ctx, "o-1"); err == nil || errors.Is(err, payment.ErrNoPaymentToken) {
		t.Fatalf("Token before the ORDERS stream exists err = %v, want a transient error", err)
	}
	if _, err := events.EnsureStream(ctx, js, events.StreamOrders, events.StreamOptions{}); err != nil {
		t.Fatal(err)
	}
	pub, err := events.NewPublisher(js, "order-service")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := pub.Publish(ctx, events.OrderCreated, "o-1", trace.New().String(), events.OrderCreatedData{
		OrderID: "o-1", CustomerID: "c-1", Items: []events.Item{{SKU: "S-1", Quantity: 1}}, PaymentToken: "tok_visa", CreatedAt: time.Now().UTC(),
	}); err != nil {
		t.Fatal(err)
	}
	if _, err := js.Publish(ctx, "orders.o-3.created", []byte(`{"garbage":true}`)); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		orderID string
		want    string
		wantErr error
	}{
		{name: "found", orderID: "o-1", want: "tok_visa"},
		{name: "no created event (transient)", orderID: "o-2", wantErr: payment.ErrTokenNotVisible},
		{name: "unreadable created event", orderID: "o-3", wantErr: payment.ErrNoPaymentToken},
		{name: "invalid id", orderID: "o.4", wantErr: payment.ErrNoPaymentToken},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := tokens.Token(ctx, tt.orderID)
			if !errors.Is(err, tt.wantErr) || (tt.wantErr == nil && err != nil) || got != tt.want {
				t.Fatalf("Token(%s) = %q, %v; want %q, %v", tt.orderID, got, err, tt.want, tt.wantErr)
			}
			if tt.wantErr == payment.ErrTokenNotVisible && errors.Is(err, payment.ErrNoPaymentToken) {
				t.Fatalf("Token(%s) = %q, %v; want %q, %v", tt.orderID, got, err, tt.want, tt.wantErr)
			}
		})
	}
}

func TestOrderHistoryConfirmed(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	js := connect(t)
	if _, err := events.EnsureStream(ctx, js, events.StreamOrders, events.StreamOptions{}); err != nil {
		t.Fatal(err)
	}
	pub, err := events.NewPublisher(js, "order-service")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := pub.Publish(ctx, events.OrderConfirmed, "o-1", trace.New().String(),
		events.OrderConfirmedData{OrderID: "o-1", CustomerID: "c-1", TotalCents: 7000, Currency: "USD"}); err != nil {
		t.Fatal(err)
	}
	if _, err := js.Publish(ctx, "orders.o-3.confirmed", []byte(`{"garbage":true}`)); err != nil {
		t.Fatal(err)
	}
	history := store.NewOrderHistory(js)
	for _, tt := range []struct {
		orderID string
		want    bool
	}{{"o-1", true}, {"o-2", false}, {"o-3", false}} {
		got, err := history.Confirmed(ctx, tt.orderID)
		if err != nil || got != tt.want {
			t.Errorf("Confirmed(%s) = %v, %v; want %v", tt.orderID, got, err, tt.want)
		}
	}
}
