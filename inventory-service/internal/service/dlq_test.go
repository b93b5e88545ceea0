package service_test

import (
	"context"
	"encoding/json"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/eventshop/shared/events"
	"github.com/eventshop/shared/platform/deadletter"
)

// TestDeadLetterAdmin: the inventory service manages the dead letters of
// INVENTORY events behind the admin token; its own consumer's poison (an
// ORDERS event) is captured once and managed by the order service.
func TestDeadLetterAdmin(t *testing.T) {
	h := start(t)
	ctx := context.Background()
	h.setStock("SKU-D", "Dee", 100, "USD", 5)
	h.created("o-dlq", items("SKU-D", 1))
	inv, err := h.js.Stream(ctx, events.StreamInventory)
	if err != nil {
		t.Fatal(err)
	}
	var reserved uint64
	h.eventually("reserved published", func() (bool, string) {
		m, err := inv.GetLastMsgForSubject(ctx, "inventory.o-dlq.reserved")
		if err != nil {
			return false, err.Error()
		}
		reserved = m.Sequence
		return true, ""
	})
	orig, err := inv.GetMsg(ctx, reserved)
	if err != nil {
		t.Fatal(err)
	}
	// The payment service's runner gave up on the reserved event.
	if _, err := deadletter.Write(ctx, h.js, deadletter.Letter{
		Consumer: "payment-inventory", OriginalStream: events.StreamInventory, OriginalSequence: reserved, OriginalSubject: orig.Subject,
		Data: orig.Data, Header: orig.Header, Deliveries: 1, Reason: "permanent failure: unknown currency", Time: time.Now(),
	}); err != nil {
		t.Fatal(err)
	}
	// Poison on ORDERS: inventory-orders dead-letters it once, the
	// MSG_TERMINATED advisory that follows adds nothing.
	ack, err := h.js.Publish(ctx, "orders.bad-1.created", []byte(`{"not":"an event"}`))
	if err != nil {
		t.Fatal(err)
	}
	h.eventually("poison dead-lettered and its advisory seen", func() (bool, string) {
		_, body := h.do(http.MethodGet, "/metrics", "", "")
		return strings.Contains(body, `eventshop_dead_letter_advisories_total{kind="terminated",outcome="already",service="inventory-service"} 1`) &&
			strings.Contains(body, `eventshop_dead_letters_total{consumer="inventory-orders",service="inventory-service"} 1`), body
	})
	dlq, err := h.js.Stream(ctx, deadletter.DefaultStream)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := dlq.GetLastMsgForSubject(ctx, deadletter.Subject("inventory-orders", events.StreamOrders, ack.Sequence)); err != nil {
		t.Fatalf("poison letter: %v", err)
	}

	for _, token := range []string{"", "wrong"} {
		if code, body := h.do(http.MethodGet, "/admin/dlq", token, ""); code != http.StatusUnauthorized || !strings.Contains(body, "unauthorized") {
			t.Fatalf("GET /admin/dlq with token %q = %d %s, want 401 problem", token, code, body)
		}
		if code, body := h.do(http.MethodDelete, "/admin/dlq?all=true", token, ""); code != http.StatusUnauthorized {
			t.Fatalf("DELETE /admin/dlq with token %q = %d %s, want 401", token, code, body)
		}
	}
	code, body := h.do(http.MethodGet, "/admin/dlq", adminToken, "")
	var list struct {
		Count       int `json:"count"`
		DeadLetters []struct {
			Sequence uint64 `json:"sequence"`
			Consumer string `json:"consumer"`
			OrderID  string `json:"order_id"`
		} `json:"dead_letters"`
	}
	if code != http.StatusOK || json.Unmarshal([]byte(body), &list) != nil || list.Count != 1 ||
		list.DeadLetters[0].Consumer != "payment-inventory" || list.DeadLetters[0].OrderID != "o-dlq" {
		t.Fatalf("GET /admin/dlq = %d %s; want only the INVENTORY letter", code, body)
	}
	path := "/admin/dlq/" + strconv.FormatUint(list.DeadLetters[0].Sequence, 10)
	if code, body := h.do(http.MethodDelete, path, adminToken, ""); code != http.StatusOK {
		t.Fatalf("DELETE %s = %d %s", path, code, body)
	}
	if code, body := h.do(http.MethodGet, path, adminToken, ""); code != http.StatusConflict || !strings.Contains(body, "dead-letter-resolved") {
		t.Fatalf("GET of a discarded letter = %d %s, want 409", code, body)
	}
	if code, body := h.do(http.MethodGet, "/admin/dlq?consumer=payment-inventory", adminToken, ""); code != http.StatusOK || !strings.Contains(body, `"count":0`) {
		t.Fatalf("after discard = %d %s", code, body)
	}
	// Discarding replays nothing: the reservation stands as it was.
	if it := h.item("SKU-D"); it.Reserved != 1 {
		t.Fatalf("stock after discard = %+v", it)
	}
}
