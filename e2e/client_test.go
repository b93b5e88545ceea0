package e2e

import (
	"encoding/json"
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/eventshop/shared/api"
)

func putSKU(t *testing.T, sku string, price, available int64) {
	t.Helper()
	code, _ := call(t, http.MethodPut, sys.urls["inventory-service"]+"/inventory/"+sku,
		api.PutStockRequest{Name: "Item " + sku, PriceCents: price, Currency: "USD", Available: available},
		map[string]string{"Authorization": "Bearer " + adminToken}, nil)
	if code != http.StatusOK && code != http.StatusCreated {
		t.Fatalf("PUT /inventory/%s = %d", sku, code)
	}
}

func getSKU(t *testing.T, sku string) api.StockItem {
	t.Helper()
	var s api.StockItem
	if code, _ := call(t, http.MethodGet, sys.urls["inventory-service"]+"/inventory/"+sku, nil, nil, &s); code != http.StatusOK {
		t.Fatalf("GET /inventory/%s = %d", sku, code)
	}
	return s
}

// postOrder places an order and returns its id; it fails the test unless
// the answer is 202.
func postOrder(t *testing.T, req api.CreateOrderRequest, key string) string {
	t.Helper()
	h := map[string]string{}
	if key != "" {
		h["Idempotency-Key"] = key
	}
	var resp api.OrderAccepted
	code, hdr := call(t, http.MethodPost, sys.urls["order-service"]+"/orders", req, h, &resp)
	if code != http.StatusAccepted || resp.OrderID == "" {
		t.Fatalf("POST /orders = %d %+v", code, resp)
	}
	if loc := hdr.Get("Location"); loc != "/orders/"+resp.OrderID {
		t.Errorf("Location = %q, want /orders/%s", loc, resp.OrderID)
	}
	return resp.OrderID
}

func getOrder(t *testing.T, id string) (api.Order, int) {
	t.Helper()
	var raw json.RawMessage
	code, _ := call(t, http.MethodGet, sys.urls["order-service"]+"/orders/"+id, nil, nil, &raw)
	var o api.Order
	if code == http.StatusOK {
		if err := json.Unmarshal(raw, &o); err != nil {
			t.Fatalf("GET /orders/%s: %v", id, err)
		}
	}
	return o, code
}

// waitFinal waits for an order to reach CONFIRMED or CANCELLED.
func waitFinal(t *testing.T, id string, timeout time.Duration) api.Order {
	t.Helper()
	var o api.Order
	eventually(t, timeout, "order "+id+" final", func() bool {
		var code int
		o, code = getOrder(t, id)
		return code == http.StatusOK && o.Final()
	})
	return o
}

// charges is the gateway's account of an order: its successful charges and
// how many of them were refunded.
type charges struct {
	Succeeded int `json:"succeeded"`
	Refunded  int `json:"refunded"`
}

func gatewayCharges(t *testing.T, orderID string) charges {
	t.Helper()
	var resp charges
	if code, _ := call(t, http.MethodGet, sys.urls["payment-gateway"]+"/charges?order_id="+orderID, nil, adminAuth, &resp); code != http.StatusOK {
		t.Fatalf("GET /charges = %d", code)
	}
	return resp
}

func successfulCharges(t *testing.T, orderID string) int {
	t.Helper()
	return gatewayCharges(t, orderID).Succeeded
}

// adminAuth is the header of the admin routes (the simulator's GET /charges
// and /admin/mode among them).
var adminAuth = map[string]string{"Authorization": "Bearer " + adminToken}

func setGateway(t *testing.T, mode string) {
	t.Helper()
	if code, _ := call(t, http.MethodPut, sys.urls["payment-gateway"]+"/admin/mode", map[string]any{"mode": mode}, adminAuth, nil); code != http.StatusOK {
		t.Fatalf("PUT /admin/mode %s = %d", mode, code)
	}
}

func notifications(t *testing.T, orderID string) []api.Notification {
	t.Helper()
	var resp api.NotificationList
	if code, _ := call(t, http.MethodGet, sys.urls["notification-service"]+"/notifications?order_id="+orderID, nil, nil, &resp); code != http.StatusOK {
		t.Fatalf("GET /notifications = %d", code)
	}
	return resp.Notifications
}

func timeline(t *testing.T, orderID string) []api.TimelineEntry {
	t.Helper()
	var resp api.Timeline
	code, _ := call(t, http.MethodGet, sys.urls["audit-service"]+"/audit/orders/"+orderID, nil, nil, &resp)
	if code != http.StatusOK && code != http.StatusNotFound {
		t.Fatalf("GET /audit/orders/%s = %d", orderID, code)
	}
	return resp.Entries
}

// checkSaga asserts the business outcome of one finished order: the right
// final state, one charge kept exactly when confirmed (a cancelled order's
// charges are all refunded), one notification, and an audit timeline that
// holds the order's events once each under one trace.
func checkSaga(t *testing.T, o api.Order, wantStatus string, wantTypes ...string) {
	t.Helper()
	if o.Status != wantStatus {
		t.Fatalf("order %s status = %s (%s), want %s", o.OrderID, o.Status, o.CancelReason, wantStatus)
	}
	if wantStatus == "CONFIRMED" {
		if c := gatewayCharges(t, o.OrderID); c.Succeeded != 1 || c.Refunded != 0 {
			t.Errorf("order %s: %d successful charges, %d refunded; want 1 kept", o.OrderID, c.Succeeded, c.Refunded)
		}
	} else {
		// A refund follows the cancellation: give it a moment.
		eventually(t, 10*time.Second, fmt.Sprintf("cancelled order %s charged nothing", o.OrderID), func() bool {
			c := gatewayCharges(t, o.OrderID)
			return c.Succeeded == c.Refunded
		})
	}
	eventually(t, 10*time.Second, fmt.Sprintf("one notification for %s", o.OrderID), func() bool {
		return len(notifications(t, o.OrderID)) == 1
	})
	eventually(t, 10*time.Second, "audit timeline of "+o.OrderID, func() bool {
		entries := timeline(t, o.OrderID)
		if len(entries) != len(wantTypes) {
			return false
		}
		seen := map[string]int{}
		for _, e := range entries {
			seen[e.Type]++
			if e.TraceID == "" || e.TraceID != entries[0].TraceID {
				t.Fatalf("order %s: entry %+v has trace %q, want one trace id for the whole saga", o.OrderID, e, e.TraceID)
			}
		}
		for _, w := range wantTypes {
			if seen[w] != 1 {
				return false
			}
		}
		return true
	})
}
