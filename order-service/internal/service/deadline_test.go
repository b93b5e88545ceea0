package service_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/eventshop/order-service/internal/config"
	"github.com/eventshop/order-service/internal/consumer"
	"github.com/eventshop/order-service/internal/order"
	"github.com/eventshop/shared/events"
	"github.com/eventshop/shared/platform/deadletter"
	"github.com/eventshop/shared/platform/natstest"
)

func withDeadline(d time.Duration) func(*config.Config) {
	return func(c *config.Config) { c.OrderDeadline = d }
}

// wantTimedOut checks an order was cancelled for timeout exactly once, under
// the order's trace.
func (h *harness) wantTimedOut(id string) {
	h.t.Helper()
	v := h.waitStatus(id, "CANCELLED")
	if v.CancelReason != "timeout" || !strings.Contains(v.CancelDetail, "no final outcome within") {
		h.t.Fatalf("cancelled order = %+v, want reason timeout", v)
	}
	natstest.EventuallyNil(h.t, "cancelled event of "+id, func() error {
		_, err := h.lastOrNil(events.StreamOrders, "orders."+id+".cancelled")
		return err
	})
	if n := h.count(events.StreamOrders, "orders."+id+".cancelled"); n != 1 {
		h.t.Fatalf("%d cancelled events, want 1", n)
	}
	env := h.last(events.StreamOrders, "orders."+id+".cancelled")
	var d events.OrderCancelledData
	if err := env.DecodeData(&d); err != nil || d.Reason != events.ReasonTimeout || d.CustomerID == "" {
		h.t.Fatalf("cancelled event data = %+v (%v)", d, err)
	}
	if created := h.last(events.StreamOrders, "orders."+id+".created"); env.TraceID() != created.TraceID() {
		h.t.Fatalf("cancelled event trace %s, want the order's %s", env.TraceID(), created.TraceID())
	}
}

// lastOrNil is last without failing the test while the event is missing.
func (h *harness) lastOrNil(stream, subject string) (uint64, error) {
	s, err := h.js.Stream(context.Background(), stream)
	if err != nil {
		return 0, err
	}
	m, err := s.GetLastMsgForSubject(context.Background(), subject)
	if err != nil {
		return 0, err
	}
	return m.Sequence, nil
}

// TestOrderWithoutAnswerTimesOut: an order nobody answers (inventory never
// reserves, or payment never answers) is cancelled with reason timeout once
// its deadline passes, and a redelivery of its timer publishes nothing new.
func TestOrderWithoutAnswerTimesOut(t *testing.T) {
	h := start(t, withDeadline(300*time.Millisecond))

	pending := h.create(validBody) // inventory never answers
	reserved := h.create(validBody)
	h.reserve(reserved) // payment never answers
	h.wantTimedOut(pending)
	h.wantTimedOut(reserved)

	// The timer again, as after a lost ack: the order stays as it is and
	// the cancellation is not published twice.
	_, before := h.get(pending)
	h.redeliver(events.StreamOrders, consumer.DeadlinesDurable, "orders."+pending+".created")
	_, after := h.get(pending)
	if !after.UpdatedAt.Equal(before.UpdatedAt) || after.Status != "CANCELLED" {
		t.Fatalf("redelivery changed the order: before %+v after %+v", before, after)
	}
	h.wantTimedOut(pending)

	// Answers that arrive after the deadline change nothing: the late
	// payment is the payment service's to refund.
	h.paid(reserved)
	paidSeq := h.lastSeq(events.StreamPayments)
	h.waitAcked(events.StreamPayments, consumer.PaymentsDurable, paidSeq)
	if n := h.count(deadletter.DefaultStream, fmt.Sprintf("dlq.%s.%s.%d", consumer.PaymentsDurable, events.StreamPayments, paidSeq)); n != 0 {
		t.Fatal("the late payment of a reserved order was dead-lettered, want it acknowledged (the payment service refunds it)")
	}
	if _, v := h.get(reserved); v.Status != "CANCELLED" || v.CancelReason != "timeout" {
		t.Fatalf("order after a late payment = %+v, want still cancelled for timeout", v)
	}
	if n := h.count(events.StreamOrders, "orders."+reserved+".confirmed"); n != 0 {
		t.Fatalf("a timed-out order was confirmed by a late payment")
	}
}

// TestOrderFinalInTimeIsUntouched: an order confirmed (or cancelled for
// another reason) before its deadline is left alone when the deadline
// passes, and its timer is acknowledged.
func TestOrderFinalInTimeIsUntouched(t *testing.T) {
	const deadline = 1500 * time.Millisecond
	h := start(t, withDeadline(deadline))
	confirmed := h.create(validBody)
	created := h.lastSeq(events.StreamOrders)
	h.reserve(confirmed)
	h.paid(confirmed)
	before := h.waitStatus(confirmed, "CONFIRMED")

	h.waitAcked(events.StreamOrders, consumer.DeadlinesDurable, created)
	time.Sleep(200 * time.Millisecond) // past the deadline, for good measure
	if _, after := h.get(confirmed); after.Status != "CONFIRMED" || !after.UpdatedAt.Equal(before.UpdatedAt) {
		t.Fatalf("the deadline touched a confirmed order: before %+v after %+v", before, after)
	}
	if n := h.count(events.StreamOrders, "orders."+confirmed+".cancelled"); n != 0 {
		t.Fatalf("a confirmed order got %d cancelled events", n)
	}
	if n := h.count(events.StreamOrders, "orders."+confirmed+".confirmed"); n != 1 {
		t.Fatalf("%d confirmed events, want 1", n)
	}
}

// TestTimeoutCrashBeforePublishConverges: an earlier version's deadline
// handler stored CANCELLED (timeout) in the order's record and died before
// publishing: the redelivered timer publishes the cancellation the record
// says.
func TestTimeoutCrashBeforePublishConverges(t *testing.T) {
	h := startAfter(t, func(js jetstream.JetStream) {
		seedOrder(t, js, "old-timed-out", order.StatusCancelled, false)
	}, withDeadline(time.Second))
	h.wantTimedOut("old-timed-out")
	if _, v := h.get("old-timed-out"); v.CancelDetail != "no final outcome within 2m0s (was RESERVED)" {
		t.Fatalf("order = %+v, want the record's cancellation", v)
	}
}

// TestDeadlinePassedWhileDown: an order whose deadline passed while the
// service was down (here: created long ago, never stored) is cancelled at
// its first look, materialized from its created event.
func TestDeadlinePassedWhileDown(t *testing.T) {
	h := start(t) // the default deadline, 2m
	id := "old-order-1"
	h.mustPublish(h.ord, events.OrderCreated, id, events.OrderCreatedData{
		OrderID: id, CustomerID: "dave", Items: []events.Item{{SKU: "SKU-1", Quantity: 1}}, PaymentToken: "t", CreatedAt: t0(),
	})
	h.wantTimedOut(id)
}
