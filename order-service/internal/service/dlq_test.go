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

const adminToken = "test-admin-token"

// TestDeadLetterAdmin: the order service manages the dead letters of
// ORDERS events (whichever consumer gave up on them) behind the admin
// token, and replays them to their subject.
func TestDeadLetterAdmin(t *testing.T) {
	h := start(t)
	ctx := context.Background()
	id := h.create(validBody)
	seq := h.lastSeq(events.StreamOrders)
	orders, err := h.js.Stream(ctx, events.StreamOrders)
	if err != nil {
		t.Fatal(err)
	}
	orig, err := orders.GetMsg(ctx, seq)
	if err != nil {
		t.Fatal(err)
	}
	// The inventory service's runner gave up on the created event.
	if _, err := deadletter.Write(ctx, h.js, deadletter.Letter{
		Consumer: "inventory-orders", OriginalStream: events.StreamOrders, OriginalSequence: seq, OriginalSubject: orig.Subject,
		Data: orig.Data, Header: orig.Header, Deliveries: 10, Reason: "gave up after 10 deliveries: db down", Time: time.Now(),
	}); err != nil {
		t.Fatal(err)
	}
	// The order service's own poison is a letter of an INVENTORY message:
	// the inventory service manages it, not this one.
	ack, err := h.js.Publish(ctx, "inventory.x-9.rejected", []byte(`{}`))
	if err != nil {
		t.Fatal(err)
	}
	h.wantDeadLetter("order-inventory", events.StreamInventory, ack.Sequence, "invalid event")

	auth := map[string]string{"Authorization": "Bearer " + adminToken}
	for _, hdr := range []map[string]string{nil, {"Authorization": "Bearer wrong"}} {
		status, rh, out := h.do(http.MethodGet, "/admin/dlq", nil, hdr)
		wantProblem(t, status, rh, out, http.StatusUnauthorized, "unauthorized")
		status, rh, out = h.do(http.MethodPost, "/admin/dlq/replay?all=true", nil, hdr)
		wantProblem(t, status, rh, out, http.StatusUnauthorized, "unauthorized")
	}

	var list struct {
		Count       int `json:"count"`
		DeadLetters []struct {
			Sequence        uint64 `json:"sequence"`
			Consumer        string `json:"consumer"`
			OriginalSubject string `json:"original_subject"`
			OrderID         string `json:"order_id"`
			Error           string `json:"error"`
		} `json:"dead_letters"`
	}
	status, _, out := h.do(http.MethodGet, "/admin/dlq", nil, auth)
	if status != http.StatusOK {
		t.Fatalf("GET /admin/dlq = %d %s", status, out)
	}
	if err := json.Unmarshal(out, &list); err != nil {
		t.Fatal(err)
	}
	if list.Count != 1 || list.DeadLetters[0].Consumer != "inventory-orders" || list.DeadLetters[0].OrderID != id ||
		list.DeadLetters[0].OriginalSubject != "orders."+id+".created" || !strings.Contains(list.DeadLetters[0].Error, "db down") {
		t.Fatalf("dead letters = %s", out)
	}
	path := "/admin/dlq/" + strconv.FormatUint(list.DeadLetters[0].Sequence, 10)
	if status, _, out := h.do(http.MethodGet, path, nil, auth); status != http.StatusOK || !strings.Contains(string(out), `"payment_token"`) {
		t.Fatalf("GET %s = %d %s", path, status, out)
	}
	if status, _, out := h.do(http.MethodPost, path+"/replay", nil, auth); status != http.StatusOK {
		t.Fatalf("replay = %d %s", status, out)
	}
	copyMsg, err := orders.GetLastMsgForSubject(ctx, "orders."+id+".created")
	if err != nil || copyMsg.Sequence == seq || string(copyMsg.Data) != string(orig.Data) {
		t.Fatalf("replayed copy = %+v, %v; want a new message with the original payload", copyMsg, err)
	}
	status, rh, out := h.do(http.MethodPost, path+"/replay", nil, auth)
	wantProblem(t, status, rh, out, http.StatusConflict, "dead-letter-resolved")
	if last := h.lastSeq(events.StreamOrders); last != copyMsg.Sequence {
		t.Fatalf("a second replay published again: last sequence %d, copy %d", last, copyMsg.Sequence)
	}

	status, _, out = h.do(http.MethodGet, "/metrics", nil, nil)
	if status != http.StatusOK || !strings.Contains(string(out), `eventshop_dead_letters_total{consumer="order-inventory",service="order-service"} 1`) ||
		!strings.Contains(string(out), `eventshop_dead_letters_resolved_total{consumer="inventory-orders",resolution="replayed",service="order-service"} 1`) {
		t.Fatalf("metrics lack the dead-letter counts:\n%s", grep(string(out), "dead_letter"))
	}
}

func grep(text, sub string) string {
	var out []string
	for line := range strings.Lines(text) {
		if strings.Contains(line, sub) {
			out = append(out, line)
		}
	}
	return strings.Join(out, "")
}
