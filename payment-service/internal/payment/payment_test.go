package payment_test

import (
	"errors"
	"testing"
	"time"

	"github.com/eventshop/payment-service/internal/payment"
	"github.com/eventshop/shared/events"
)

func TestNewRecordAndEvent(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 11, 23, 10, 0, 0, 0, time.FixedZone("CET", 3600))
	req := payment.ChargeRequest{OrderID: "o-1", AmountCents: 2598, Currency: "EUR", Token: "tok_visa", IdempotencyKey: "o-1"}
	tests := []struct {
		name     string
		res      payment.ChargeResult
		want     payment.Status
		wantType events.Type
		wantData any
	}{
		{
			name: "charged", res: payment.ChargeResult{ChargeID: "ch_1", Succeeded: true, DeclineCode: "ignored"},
			want: payment.StatusSucceeded, wantType: events.PaymentSucceeded,
			wantData: events.PaymentSucceededData{OrderID: "o-1", ChargeID: "ch_1", AmountCents: 2598, Currency: "EUR"},
		},
		{
			name: "declined", res: payment.ChargeResult{ChargeID: "ch_2", DeclineCode: "insufficient_funds"},
			want: payment.StatusFailed, wantType: events.PaymentFailed,
			wantData: events.PaymentFailedData{OrderID: "o-1", Reason: events.ReasonCardDeclined, DeclineCode: "insufficient_funds",
				ChargeID: "ch_2", AmountCents: 2598, Currency: "EUR"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			rec := payment.NewRecord(req, tt.res, now)
			if err := rec.Validate(); err != nil {
				t.Fatal(err)
			}
			if rec.Status != tt.want || rec.CreatedAt.Location() != time.UTC || !rec.CreatedAt.Equal(now) {
				t.Fatalf("record = %+v", rec)
			}
			typ, data, ok := rec.Event()
			if !ok || typ != tt.wantType || data != tt.wantData {
				t.Fatalf("Event = %s %+v, want %s %+v", typ, data, tt.wantType, tt.wantData)
			}
		})
	}
}

func TestRecordValidate(t *testing.T) {
	t.Parallel()
	ok := payment.Record{OrderID: "o-1", Status: payment.StatusSucceeded, ChargeID: "ch_1", AmountCents: 1, Currency: "USD"}
	tests := []struct {
		name    string
		mutate  func(r *payment.Record)
		wantErr error
	}{
		{name: "valid", mutate: func(*payment.Record) {}},
		{name: "dotted order id", mutate: func(r *payment.Record) { r.OrderID = "o.1" }, wantErr: payment.ErrInvalidRecord},
		{name: "unknown status", mutate: func(r *payment.Record) { r.Status = "pending" }, wantErr: payment.ErrInvalidRecord},
		{name: "charging", mutate: func(r *payment.Record) { r.Status, r.ChargeID = payment.StatusCharging, "" }},
		{name: "void needs no amount", mutate: func(r *payment.Record) { *r = payment.NewVoid("o-1", "timeout", time.Now()) }},
		{name: "refunded", mutate: func(r *payment.Record) {
			r.Status, r.RefundID, r.CancelReason = payment.StatusRefunded, "re_1", "timeout"
		}},
		{name: "refunded without refund id", mutate: func(r *payment.Record) { r.Status, r.CancelReason = payment.StatusRefunded, "timeout" }, wantErr: payment.ErrInvalidRecord},
		{name: "refunded without charge", mutate: func(r *payment.Record) {
			r.Status, r.RefundID, r.CancelReason, r.ChargeID = payment.StatusRefunded, "re_1", "timeout", ""
		}, wantErr: payment.ErrInvalidRecord},
		{name: "succeeded without charge", mutate: func(r *payment.Record) { r.ChargeID = "" }, wantErr: payment.ErrInvalidRecord},
		{name: "negative amount", mutate: func(r *payment.Record) { r.AmountCents = -1 }, wantErr: payment.ErrInvalidRecord},
		{name: "bad currency", mutate: func(r *payment.Record) { r.Currency = "US" }, wantErr: payment.ErrInvalidRecord},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			r := ok
			tt.mutate(&r)
			if err := r.Validate(); !errors.Is(err, tt.wantErr) || (tt.wantErr == nil && err != nil) {
				t.Fatalf("Validate = %v, want %v", err, tt.wantErr)
			}
		})
	}
}

func TestLifecycleEvents(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 11, 23, 10, 0, 0, 0, time.UTC)
	intent := payment.NewIntent(payment.ChargeRequest{OrderID: "o-1", AmountCents: 500, Currency: "USD"}, now)
	charged := intent.Charged(payment.ChargeResult{ChargeID: "ch_1", Succeeded: true}, now)
	tests := []struct {
		name     string
		rec      payment.Record
		wantOK   bool
		wantType events.Type
		wantData any
	}{
		{name: "charging announces nothing", rec: intent},
		{name: "void announces nothing", rec: payment.NewVoid("o-1", "timeout", now)},
		{
			name: "refunded", rec: charged.Refunded("re_1", "timeout", now), wantOK: true, wantType: events.PaymentRefunded,
			wantData: events.PaymentRefundedData{OrderID: "o-1", ChargeID: "ch_1", RefundID: "re_1", AmountCents: 500, Currency: "USD", Reason: "timeout"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if err := tt.rec.Validate(); err != nil {
				t.Fatal(err)
			}
			typ, data, ok := tt.rec.Event()
			if ok != tt.wantOK || typ != tt.wantType || data != tt.wantData {
				t.Fatalf("Event = %s %+v %v, want %s %+v %v", typ, data, ok, tt.wantType, tt.wantData, tt.wantOK)
			}
			if ok {
				if _, err := events.DefaultRegistry().SchemaFor(typ); err != nil {
					t.Fatal(err)
				}
			}
		})
	}
	// Keys come from the record's secret charge key; a record written
	// before charge keys existed keeps the order id its charge was made
	// under.
	keyed := payment.Record{OrderID: "o-1", ChargeKey: "pay_SECRET"}
	legacy := payment.Record{OrderID: "o-1"}
	if keyed.GatewayKey() != "pay_SECRET" || keyed.RefundKey() != "refund-pay_SECRET" ||
		legacy.GatewayKey() != "o-1" || legacy.RefundKey() != "refund-o-1" {
		t.Fatalf("keys = %q %q %q %q", keyed.GatewayKey(), keyed.RefundKey(), legacy.GatewayKey(), legacy.RefundKey())
	}
}
