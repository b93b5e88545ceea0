package contracttest_test

import (
	"github.com/eventshop/shared/events/contracttest"
	"strings"
	"testing"
)

func TestCheckConsumers(t *testing.T) {
	tests := []struct {
		name    string
		service string
		filters []string
		want    []string // substrings of the failures, in order
	}{
		{name: "payment reads what it consumes", service: "payment-service",
			filters: []string{"inventory.*.reserved", "orders.*.cancelled"}},
		{name: "audit reads every type", service: "audit-service",
			filters: []string{"orders.>", "inventory.>", "payments.>", "notifications.>"}},
		{name: "a type the contract does not list", service: "notification-service",
			filters: []string{"orders.*.confirmed", "payments.*.refunded"},
			want:    []string{"notification-service consumes shop.payment.refunded events (filter payments.*.refunded)"}},
		{name: "a wildcard that takes more than the service reads", service: "payment-service",
			filters: []string{"inventory.>"},
			want:    []string{"shop.inventory.committed", "shop.inventory.rejected", "shop.inventory.released"}},
		{name: "a filter of no event", service: "order-service",
			filters: []string{"orders.*.shipped"},
			want:    []string{"filter orders.*.shipped that delivers no event type"}},
		{name: "a service the contract does not know", service: "shipping-service",
			filters: []string{"orders.*.created"},
			want:    []string{"shipping-service consumes shop.order.created"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec := &recorder{T: t}
			contracttest.CheckConsumers(rec, tt.service, tt.filters)
			if len(rec.errs) != len(tt.want) {
				t.Fatalf("failures %q, want %d like %q", rec.errs, len(tt.want), tt.want)
			}
			for i, w := range tt.want {
				if !strings.Contains(rec.errs[i], w) {
					t.Errorf("failure %d = %q, want it to say %q", i, rec.errs[i], w)
				}
			}
		})
	}
}
