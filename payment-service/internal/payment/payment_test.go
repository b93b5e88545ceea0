package payment_test

import (
	"errors"
	"testing"
	"time"

	"github.com/eventshop/payment-service/internal/payment"
)

func TestRecordValidate(t *testing.T) {
	t.Parallel()
	ok := payment.Record{OrderID: "o-1", Status: payment.StatusSucceeded, ChargeID: "ch_1", AmountCents: 1, Currency: "USD"}
	tests := []struct {
		name    string
		mutate  func(r *payment.Record)
		wantErr error
	}{
		{name: "valid", mutate: func(*payment.Record) {}},
		{name: "no order id", mutate: func(r *payment.Record) { r.OrderID = "" }, wantErr: payment.ErrInvalidRecord},
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

func TestKeys(t *testing.T) {
	t.Parallel()
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
