package events_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/eventshop/shared/events"
	"github.com/eventshop/shared/platform/natstest"
	"github.com/eventshop/shared/platform/runner"
	"github.com/eventshop/shared/platform/trace"
)

// TestConsumeDecodesOnceAndRoutesByType publishes events to a real ORDERS
// stream, fetches them with a consumer, and hands each to one handler made
// by Consume: each event reaches the use case of its type with its payload
// decoded; what cannot be decoded or has no use case is refused as
// invalid_event; a use case's error goes through the verdict with its
// message.
func TestConsumeDecodesOnceAndRoutesByType(t *testing.T) {
	t.Parallel()
	_, js := natstest.Connect(t, natstest.Start(t))
	ctx := context.Background()
	if _, err := events.EnsureStream(ctx, js, events.StreamOrders, events.StreamOptions{}); err != nil {
		t.Fatal(err)
	}
	pub, err := events.NewPublisher(js, "order-service")
	if err != nil {
		t.Fatal(err)
	}
	created := events.OrderCreatedData{OrderID: "o-1", CustomerID: "c-1", PaymentToken: "tok_visa",
		Items: []events.Item{{SKU: "S", Quantity: 2}}, CreatedAt: time.Now().UTC()}
	if _, err := pub.Publish(ctx, events.OrderCreated, "o-1", trace.New().String(), created); err != nil {
		t.Fatal(err)
	}
	cancelled := events.OrderCancelledData{OrderID: "o-2", CustomerID: "c-2", Reason: events.ReasonTimeout}
	if _, err := pub.Publish(ctx, events.OrderCancelled, "o-2", trace.New().String(), cancelled); err != nil {
		t.Fatal(err)
	}
	if _, err := pub.Publish(ctx, events.OrderCancelled, "o-6", trace.New().String(), events.OrderCancelledData{OrderID: "o-6", CustomerID: "c-6", Reason: events.ReasonTimeout}); err != nil {
		t.Fatal(err)
	}
	confirmed := events.OrderConfirmedData{OrderID: "o-3", CustomerID: "c-3", TotalCents: 1000, Currency: "EUR"}
	if _, err := pub.Publish(ctx, events.OrderConfirmed, "o-3", trace.New().String(), confirmed); err != nil {
		t.Fatal(err)
	}
	// A created event whose payload breaks its type: the envelope decodes.
	raw, err := js.Stream(ctx, events.StreamOrders)
	if err != nil {
		t.Fatal(err)
	}
	first, err := raw.GetMsg(ctx, 1)
	if err != nil {
		t.Fatal(err)
	}
	var env map[string]any
	if err := json.Unmarshal(first.Data, &env); err != nil {
		t.Fatal(err)
	}
	env["id"], env["subject"], env["data"] = "e-bad-payload", "o-4", map[string]any{"order_id": "o-4", "bogus": 1}
	badPayload, _ := json.Marshal(env)
	for subject, data := range map[string][]byte{"orders.o-4.created": badPayload, "orders.o-5.created": []byte("not json")} {
		if _, err := js.Publish(ctx, subject, data); err != nil {
			t.Fatal(err)
		}
	}

	var (
		gotCreated  []events.OrderCreatedData
		verdictMsgs []string
	)
	errBusy := errors.New("busy")
	handle := events.Consume(
		func(msg jetstream.Msg, err error) error {
			verdictMsgs = append(verdictMsgs, msg.Subject())
			return runner.Permanent(err)
		},
		events.On(events.OrderCreated, func(_ context.Context, env events.Envelope, d events.OrderCreatedData) error {
			if env.Subject != d.OrderID {
				t.Errorf("envelope of %s handed with the payload of %s", env.Subject, d.OrderID)
			}
			gotCreated = append(gotCreated, d)
			return nil
		}),
		events.On(events.OrderCancelled, func(_ context.Context, env events.Envelope, _ events.OrderCancelledData) error {
			if env.Subject == "o-6" {
				return fmt.Errorf("announce: %w", events.ErrConflictingDuplicate)
			}
			return errBusy
		}),
	)
	cons, err := js.CreateConsumer(ctx, events.StreamOrders, jetstream.ConsumerConfig{AckPolicy: jetstream.AckNonePolicy})
	if err != nil {
		t.Fatal(err)
	}
	batch, err := cons.FetchNoWait(6)
	if err != nil {
		t.Fatal(err)
	}
	results := map[string]error{}
	for msg := range batch.Messages() {
		results[msg.Subject()] = handle(ctx, msg)
	}
	if len(results) != 6 {
		t.Fatalf("handled %d messages, want 6", len(results))
	}

	if err := results["orders.o-1.created"]; err != nil {
		t.Errorf("created: %v", err)
	}
	if len(gotCreated) != 1 || gotCreated[0].Items[0].Quantity != 2 || gotCreated[0].PaymentToken != "tok_visa" {
		t.Errorf("created use case got %+v, want the published payload once", gotCreated)
	}
	if err := results["orders.o-2.cancelled"]; !errors.Is(err, errBusy) || !runner.IsPermanent(err) {
		t.Errorf("cancelled: %v, want the use case's error through the verdict", err)
	}
	if len(verdictMsgs) != 1 || verdictMsgs[0] != "orders.o-2.cancelled" {
		t.Errorf("verdict saw %q, want only the cancelled event's message", verdictMsgs)
	}
	// A conflicting duplicate is refused the same way by every consumer,
	// without asking the service's verdict.
	if reason, _ := runner.RefusalReason(results["orders.o-6.cancelled"]); reason != events.ReasonConflictingDuplicate {
		t.Errorf("conflicting duplicate: %v (reason %q), want refused as %s", results["orders.o-6.cancelled"], reason, events.ReasonConflictingDuplicate)
	}
	for subject, want := range map[string]string{
		"orders.o-3.confirmed": "no use case for a shop.order.confirmed event",
		"orders.o-4.created":   "bogus",
		"orders.o-5.created":   "orders.o-5.created",
	} {
		err := results[subject]
		reason, refused := runner.RefusalReason(err)
		if !refused || reason != events.ReasonInvalidEvent || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: %v (refused %v as %q), want refused as invalid_event saying %q", subject, err, refused, reason, want)
		}
	}
}
