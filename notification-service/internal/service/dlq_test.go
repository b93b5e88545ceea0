package service_test

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/eventshop/shared/events"
	"github.com/eventshop/shared/platform/deadletter"
	"github.com/eventshop/shared/platform/kit/kittest"
	"github.com/eventshop/shared/platform/natstest"
)

// TestDeadLetterAdmin: the notification service manages the dead letters
// of NOTIFICATIONS events behind ADMIN_TOKEN; its own consumer's poison
// (an ORDERS event) is dead-lettered once and managed by the order service.
func TestDeadLetterAdmin(t *testing.T) {
	t.Parallel()
	const token = "notify-admin"
	h := start(t, map[string]string{"ADMIN_TOKEN": token})
	ctx := context.Background()
	call := func(method, path, tok string) (int, string) {
		t.Helper()
		status, _, body := h.in.Request(method, path, nil, kittest.Bearer(tok)...)
		return status, string(body)
	}

	poison, err := h.js.PublishMsg(ctx, &nats.Msg{Subject: "orders.o-p.confirmed", Data: []byte(`{}`)})
	if err != nil {
		t.Fatal(err)
	}
	natstest.DeadLetter(t, h.js, "notification-orders", events.StreamOrders, poison.Sequence)
	natstest.Eventually(t, "terminated advisory seen", func() bool {
		_, body := call(http.MethodGet, "/metrics", "")
		return strings.Contains(body, `eventshop_dead_letter_advisories_total{kind="terminated",outcome="already",service="notification-service"} 1`)
	})

	h.confirm(t, "o-n")
	var sent uint64
	natstest.EventuallyNil(t, "notification sent", func() error {
		s, err := h.js.Stream(ctx, events.StreamNotifications)
		if err != nil {
			return err
		}
		m, err := s.GetLastMsgForSubject(ctx, "notifications.o-n.sent")
		if err != nil {
			return err
		}
		sent = m.Sequence
		return nil
	})
	// The audit service gave up on it.
	if _, err := deadletter.Write(ctx, h.js, deadletter.Letter{Consumer: "audit-notifications", OriginalStream: events.StreamNotifications,
		OriginalSequence: sent, OriginalSubject: "notifications.o-n.sent", Data: []byte(`{}`), Reason: "r", Time: time.Now()}); err != nil {
		t.Fatal(err)
	}

	if code, body := call(http.MethodGet, "/admin/dlq", ""); code != http.StatusUnauthorized || !strings.Contains(body, "unauthorized") {
		t.Fatalf("without token = %d %s, want 401", code, body)
	}
	if code, body := call(http.MethodGet, "/admin/dlq", token); code != http.StatusOK ||
		!strings.Contains(body, `"count":1`) || !strings.Contains(body, "audit-notifications") {
		t.Fatalf("list = %d %s; want only the NOTIFICATIONS letter", code, body)
	}
	if code, body := call(http.MethodDelete, "/admin/dlq?consumer=audit-notifications", token); code != http.StatusOK || !strings.Contains(body, `"discarded":[{`) {
		t.Fatalf("discard = %d %s", code, body)
	}
	if code, body := call(http.MethodGet, "/admin/dlq", token); code != http.StatusOK || !strings.Contains(body, `"count":0`) {
		t.Fatalf("after discard = %d %s", code, body)
	}
}
