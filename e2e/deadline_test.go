package e2e

import (
	"net/http"
	"slices"
	"testing"
	"time"

	"github.com/eventshop/shared/api"
)

// deadlineEnv is the order deadline of the deadline scenario. The rest of
// the run keeps the default (2m): the kill test waits out a 30s AckWait and
// must not time out.
const deadlineEnv = "ORDER_DEADLINE=1s"

// testLatePaymentIsRefunded: the gateway answers a charge only after the
// order's deadline, so the order is cancelled (timeout) and its stock
// released while the charge is still on its way; the charge that does
// arrive is refunded through the gateway. The order ends cancelled and
// charged nothing.
func testLatePaymentIsRefunded(t *testing.T) {
	// The deadline is per process: run order-service with a short one for
	// this scenario only.
	orders := sys.procs["order-service"]
	env := orders.Env
	orders.Env = append(slices.Clone(env), deadlineEnv)
	sys.restart(t, "order-service", false)
	defer func() {
		orders.Env = env
		sys.restart(t, "order-service", false)
	}()
	// Slower than the deadline, quicker than the payment service's 2s
	// gateway timeout: the charge succeeds, late.
	if code, _ := call(t, http.MethodPut, sys.urls["payment-gateway"]+"/admin/mode",
		map[string]any{"mode": "slow", "latency_ms": 1500}, adminAuth, nil); code != http.StatusOK {
		t.Fatalf("PUT /admin/mode slow = %d", code)
	}
	defer setGateway(t, "healthy")

	sku := uniq("LATE")
	putSKU(t, sku, 700, 5)
	id := postOrder(t, api.CreateOrderRequest{CustomerID: uniq("c"), Items: []api.Item{{SKU: sku, Quantity: 2}}, PaymentToken: "tok_visa"}, "")
	o := waitFinal(t, id, 20*time.Second)
	if o.Status != "CANCELLED" || o.CancelReason != "timeout" {
		t.Fatalf("order = %s (%s), want CANCELLED for timeout", o.Status, o.CancelReason)
	}
	eventually(t, 10*time.Second, "stock released", func() bool {
		s := getSKU(t, sku)
		return s.Available == 5 && s.Reserved == 0 && s.Sold == 0
	})
	// The charge went through after the cancellation, and went back.
	eventually(t, 30*time.Second, "late charge refunded", func() bool {
		c := gatewayCharges(t, id)
		return c.Succeeded == 1 && c.Refunded == 1
	})
	// The gateway records a refund before it answers (slowly): the
	// payment record follows.
	eventually(t, 30*time.Second, "payment recorded as refunded", func() bool {
		var p api.Payment
		code, _ := call(t, http.MethodGet, sys.urls["payment-service"]+"/payments/"+id, nil, nil, &p)
		return code == http.StatusOK && p.Status == "refunded" && p.RefundID != ""
	})
	// One notification (the cancellation), and an audit trail of one trace
	// that holds the refund and never a confirmation.
	eventually(t, 10*time.Second, "one notification for "+id, func() bool { return len(notifications(t, id)) == 1 })
	eventually(t, 10*time.Second, "audit timeline of "+id, func() bool {
		seen := map[string]int{}
		entries := timeline(t, id)
		for _, e := range entries {
			seen[e.Type]++
			if e.TraceID == "" || e.TraceID != entries[0].TraceID {
				t.Fatalf("order %s: entry %+v has trace %q, want one trace id for the whole saga", id, e, e.TraceID)
			}
		}
		for _, want := range []string{"shop.order.created", "shop.inventory.reserved", "shop.order.cancelled",
			"shop.inventory.released", "shop.payment.refunded", "shop.notification.sent"} {
			if seen[want] != 1 {
				return false
			}
		}
		for typ, n := range seen {
			if n != 1 || typ == "shop.order.confirmed" || typ == "shop.inventory.committed" {
				t.Fatalf("order %s timeline has %d %s", id, n, typ)
			}
		}
		return true
	})
}
