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
	"github.com/eventshop/shared/platform/kit/kittest"
)

const adminToken = "test-admin-token"

// TestDeadLetterAdmin: the payment service manages the dead letters of
// PAYMENTS events behind the admin token and replays them to their subject.
func TestDeadLetterAdmin(t *testing.T) {
	h := start(t)
	ctx := context.Background()
	id := newOrderID("dlq")
	h.placeOrder(id, "tok_visa", 1000)
	h.paymentEvent(id, "succeeded")
	orig, err := h.lastMsg(events.StreamPayments, "payments."+id+".succeeded")
	if err != nil {
		t.Fatal(err)
	}
	// The order service's runner gave up on the payment outcome.
	if _, err := deadletter.Write(ctx, h.js, deadletter.Letter{
		Consumer: "order-payments", OriginalStream: events.StreamPayments, OriginalSequence: orig.Sequence, OriginalSubject: orig.Subject,
		Data: orig.Data, Header: orig.Header, Deliveries: 10, Reason: "gave up", Time: time.Now(),
	}); err != nil {
		t.Fatal(err)
	}

	call := func(method, path, token string) (int, string) {
		t.Helper()
		status, header, body := h.in.Request(method, path, nil, kittest.Bearer(token)...)
		if status >= 400 && header.Get("Content-Type") != "application/problem+json" {
			t.Errorf("%s %s = %d with %s, want problem+json", method, path, status, header.Get("Content-Type"))
		}
		return status, string(body)
	}
	if code, body := call(http.MethodGet, "/admin/dlq", ""); code != http.StatusUnauthorized || !strings.Contains(body, "unauthorized") {
		t.Fatalf("without token = %d %s, want 401 problem", code, body)
	}
	code, body := call(http.MethodGet, "/admin/dlq?consumer=order-payments", adminToken)
	var list struct {
		DeadLetters []struct {
			Sequence uint64 `json:"sequence"`
		} `json:"dead_letters"`
	}
	if code != http.StatusOK || json.Unmarshal([]byte(body), &list) != nil || len(list.DeadLetters) != 1 {
		t.Fatalf("list = %d %s", code, body)
	}
	if code, body := call(http.MethodPost, "/admin/dlq/replay?consumer=order-payments", adminToken); code != http.StatusOK ||
		!strings.Contains(body, `"sequence":`+strconv.FormatUint(list.DeadLetters[0].Sequence, 10)) {
		t.Fatalf("replay by consumer = %d %s", code, body)
	}
	if n := h.countMsgs(events.StreamPayments, "payments."+id+".succeeded"); n != 2 {
		t.Fatalf("payments.%s.succeeded holds %d messages, want the original and the replayed copy", id, n)
	}
	if code, body := call(http.MethodGet, "/admin/dlq", adminToken); code != http.StatusOK || !strings.Contains(body, `"count":0`) {
		t.Fatalf("after replay = %d %s", code, body)
	}
}
