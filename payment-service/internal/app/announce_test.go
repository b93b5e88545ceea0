package app

import (
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
			typ, data, ok := eventOf(rec)
			if !ok || typ != tt.wantType || data != tt.wantData {
				t.Fatalf("Event = %s %+v, want %s %+v", typ, data, tt.wantType, tt.wantData)
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
			typ, data, ok := eventOf(tt.rec)
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
}
