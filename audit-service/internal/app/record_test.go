package app_test

import (
	"bytes"
	"context"
	"errors"
	"testing"
	"time"

	"go.uber.org/zap"

	"github.com/eventshop/audit-service/internal/app"
	"github.com/eventshop/audit-service/internal/chain"
	"github.com/eventshop/audit-service/internal/store"
	"github.com/eventshop/shared/events"
	"github.com/eventshop/shared/platform/natstest"
	"github.com/eventshop/shared/platform/trace"
)

// TestRecord: an event is recorded once, its secrets fingerprinted; an
// event whose source does not own the stream it was read from is refused.
func TestRecord(t *testing.T) {
	t.Parallel()
	srv := natstest.Start(t)
	_, js := natstest.Connect(t, srv)
	ctx := context.Background()
	for _, s := range []string{events.StreamAudit, events.StreamOrders} {
		if _, err := events.EnsureStream(ctx, js, s, events.StreamOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	appender, err := store.NewAppender(ctx, js, zap.NewNop())
	if err != nil {
		t.Fatal(err)
	}
	red, err := chain.NewRedactor([]byte("app-test-fingerprint-key-32-bytes!"))
	if err != nil {
		t.Fatal(err)
	}
	a, err := app.New(appender, store.NewReader(js, zap.NewNop()), red, zap.NewNop())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := app.New(appender, nil, red, zap.NewNop()); !errors.Is(err, app.ErrInvalidOption) {
		t.Fatalf("New without a reader: %v, want %v", err, app.ErrInvalidOption)
	}

	pub, err := events.NewPublisher(js, "order-service")
	if err != nil {
		t.Fatal(err)
	}
	ack, err := pub.Publish(ctx, events.OrderCreated, "o-1", trace.New().String(), events.OrderCreatedData{OrderID: "o-1",
		CustomerID: "c-1", Items: []events.Item{{SKU: "SKU-1", Quantity: 1}}, PaymentToken: "tok_visa", CreatedAt: time.Now().UTC()})
	if err != nil {
		t.Fatal(err)
	}
	s, err := js.Stream(ctx, events.StreamOrders)
	if err != nil {
		t.Fatal(err)
	}
	m, err := s.GetMsg(ctx, ack.Sequence)
	if err != nil {
		t.Fatal(err)
	}
	env, err := events.Decode(m.Subject, m.Data)
	if err != nil {
		t.Fatal(err)
	}
	d := app.Delivery{Stream: events.StreamOrders, StreamSeq: m.Sequence, Subject: m.Subject, Raw: m.Data}

	// An event whose payload breaks its type (the envelope decodes).
	broken := env
	broken.Data = []byte(`{"order_id":"o-1","bogus":1}`)
	payments := app.Delivery{Stream: events.StreamPayments, StreamSeq: m.Sequence, Subject: m.Subject, Raw: m.Data}

	tests := []struct {
		name        string
		env         events.Envelope
		d           app.Delivery
		wantErr     error
		wantRefused bool
	}{
		{name: "recorded", env: env, d: d},
		{name: "delivered again: a duplicate, no error", env: env, d: d},
		{name: "read from a stream its source does not own", env: env, d: payments, wantErr: app.ErrWrongSource, wantRefused: true},
		{name: "a payload that breaks its type is not audited", env: broken, d: d, wantErr: events.ErrInvalidEvent},
		{name: "a forged source is refused as such, whatever its payload", env: broken, d: payments, wantErr: app.ErrWrongSource, wantRefused: true},
	}
	for _, tt := range tests {
		err := a.Record(ctx, tt.env, tt.d)
		if !errors.Is(err, tt.wantErr) || (err == nil) != (tt.wantErr == nil) {
			t.Fatalf("%s: Record = %v, want %v", tt.name, err, tt.wantErr)
		}
		if _, refused := errors.AsType[*app.RefusedError](err); refused != tt.wantRefused {
			t.Fatalf("%s: Record = %v, refused %v", tt.name, err, refused)
		}
	}

	entries, err := a.Timeline(ctx, "o-1")
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != 1 || entries[0].EventID != env.ID || entries[0].Stream != events.StreamOrders {
		t.Fatalf("timeline = %+v, want the created event once", entries)
	}
	if bytes.Contains(entries[0].Event, []byte("tok_visa")) || !bytes.Contains(entries[0].Event, []byte(chain.FingerprintPrefix)) {
		t.Fatalf("the audited event holds the token in the clear: %s", entries[0].Event)
	}
	if res, err := a.Verify(ctx); err != nil || !res.OK || res.Entries != 1 {
		t.Fatalf("verify = %+v, %v; want a valid chain of 1 entry", res, err)
	}
}
