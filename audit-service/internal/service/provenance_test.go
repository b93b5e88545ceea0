package service_test

import (
	"context"
	"net/http"
	"strings"
	"testing"

	"github.com/eventshop/audit-service/internal/httpapi"
	"github.com/eventshop/shared/events"
	"github.com/eventshop/shared/platform/deadletter"
	"github.com/eventshop/shared/platform/natstest"
	"github.com/eventshop/shared/platform/trace"
)

// TestEventsThatDoNotBelongOnTheirStreamAreNotAudited: well-formed events
// stored where their claimed origin could not have put them -- a payment
// type on an order subject, an event naming order-service as its source on
// PAYMENTS, one naming payment-service on ORDERS -- are dead-lettered with
// a reason that says so, and the chain holds only the honest saga.
func TestEventsThatDoNotBelongOnTheirStreamAreNotAudited(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	in := w.start(t)
	ctx := context.Background()
	// build returns a valid event of type typ about order, as published by src.
	build := func(src string, typ events.Type, order string, data any) []byte {
		t.Helper()
		p, err := events.NewPublisher(w.JS, src)
		if err != nil {
			t.Fatal(err)
		}
		_, raw, err := p.Build(typ, order, trace.New().String(), data)
		if err != nil {
			t.Fatal(err)
		}
		return raw
	}
	paid := func(order string) events.PaymentSucceededData {
		return events.PaymentSucceededData{OrderID: order, ChargeID: "ch_forged", AmountCents: 1, Currency: "EUR"}
	}
	tests := []struct {
		name       string
		stream     string
		subject    string
		raw        []byte
		wantReason string
	}{
		{
			name: "payment type on an order subject", stream: events.StreamOrders, subject: "orders.o-f1.created",
			raw:        build("payment-service", events.PaymentSucceeded, "o-f1", paid("o-f1")),
			wantReason: "arrived on orders.o-f1.created",
		},
		{
			name: "order-service as the source on PAYMENTS", stream: events.StreamPayments, subject: "payments.o-f2.succeeded",
			raw:        build("order-service", events.PaymentSucceeded, "o-f2", paid("o-f2")),
			wantReason: `source "order-service", but only payment-service publishes on PAYMENTS`,
		},
		{
			name: "payment-service as the source on ORDERS", stream: events.StreamOrders, subject: "orders.o-f3.confirmed",
			raw: build("payment-service", events.OrderConfirmed, "o-f3",
				events.OrderConfirmedData{OrderID: "o-f3", CustomerID: "c-1", TotalCents: 1, Currency: "EUR"}),
			wantReason: `source "payment-service", but only order-service publishes on ORDERS`,
		},
		{
			name: "a made-up source on NOTIFICATIONS", stream: events.StreamNotifications, subject: "notifications.o-f4.sent",
			raw: build("evil", events.NotificationSent, "o-f4",
				events.NotificationSentData{OrderID: "o-f4", NotificationID: "n-1", Kind: "order_confirmed", Channel: "log"}),
			wantReason: `source "evil", but only notification-service publishes on NOTIFICATIONS`,
		},
	}
	for _, tt := range tests {
		ack, err := w.JS.Publish(ctx, tt.subject, tt.raw)
		if err != nil {
			t.Fatal(err)
		}
		letter := natstest.DeadLetter(t, w.JS, "audit-"+strings.ToLower(tt.stream), tt.stream, ack.Sequence)
		if reason := letter.Header.Get(deadletter.HeaderError); !strings.Contains(reason, tt.wantReason) {
			t.Errorf("%s: Dlq-Error = %q, want it to say %q", tt.name, reason, tt.wantReason)
		}
	}
	// The honest saga after them is audited, and nothing else.
	w.saga(t, "o-ok")
	in.waitEntries(t, 5)
	w.idle(t)
	if res := in.verify(t); !res.OK || res.Entries != 5 {
		t.Fatalf("verify = %+v, want only the 5 events of o-ok", res)
	}
	for _, o := range []string{"o-f1", "o-f2", "o-f3", "o-f4"} {
		in.getJSON(t, "/audit/orders/"+o, http.StatusNotFound, nil)
	}
	var tl httpapi.Timeline
	in.getJSON(t, "/audit/orders/o-ok", http.StatusOK, &tl)
	if len(tl.Entries) != 5 {
		t.Fatalf("timeline of o-ok = %d entries, want 5", len(tl.Entries))
	}
}
