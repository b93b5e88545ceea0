package events_test

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/eventshop/shared/events"
	"github.com/eventshop/shared/platform/natstest"
	"github.com/eventshop/shared/platform/trace"
)

func TestRegistryKnowsEveryType(t *testing.T) {
	t.Parallel()
	reg, err := events.NewRegistry()
	if err != nil {
		t.Fatal(err)
	}
	want := []events.Type{events.OrderCreated, events.OrderConfirmed, events.OrderCancelled,
		events.InventoryReserved, events.InventoryRejected, events.InventoryReleased, events.InventoryCommitted,
		events.PaymentSucceeded, events.PaymentFailed, events.PaymentRefunded, events.NotificationSent}
	for _, typ := range want {
		if _, err := reg.SchemaFor(typ); err != nil {
			t.Errorf("SchemaFor(%s): %v", typ, err)
		}
		if _, err := events.Subject(typ, "o-1"); err != nil {
			t.Errorf("Subject(%s): %v", typ, err)
		}
	}
	if got := len(reg.Types()); got != len(want) {
		t.Errorf("registry has %d types, want %d", got, len(want))
	}
}

func validEnvelope(t *testing.T) map[string]any {
	t.Helper()
	return map[string]any{
		"specversion": "1.0", "id": "e-1", "source": "order-service", "type": "shop.order.confirmed",
		"subject": "o-1", "time": "2026-11-23T10:00:00Z", "datacontenttype": "application/json",
		"dataschema":  "https://schemas.eventshop.dev/events/order.confirmed/v1.json",
		"traceparent": trace.New().String(),
		"data":        map[string]any{"order_id": "o-1", "customer_id": "c-1", "total_cents": 100, "currency": "USD"},
	}
}

func TestParse(t *testing.T) {
	t.Parallel()
	reg := events.DefaultRegistry()
	tests := []struct {
		name    string
		mutate  func(m map[string]any)
		raw     string
		wantErr string
	}{
		{name: "valid", mutate: func(map[string]any) {}},
		{name: "not json", raw: "{nope", wantErr: "not JSON"},
		{name: "missing id", mutate: func(m map[string]any) { delete(m, "id") }, wantErr: "envelope"},
		{name: "bad specversion", mutate: func(m map[string]any) { m["specversion"] = "0.3" }, wantErr: "/specversion"},
		{name: "unknown schema", mutate: func(m map[string]any) { m["dataschema"] = "https://x/y.json" }, wantErr: "unknown event type"},
		{name: "schema of another type", mutate: func(m map[string]any) { m["type"] = "shop.order.created" }, wantErr: "is for shop.order.confirmed"},
		{name: "float money", mutate: func(m map[string]any) { m["data"].(map[string]any)["total_cents"] = 1.5 }, wantErr: "/total_cents"},
		{name: "bad currency", mutate: func(m map[string]any) { m["data"].(map[string]any)["currency"] = "usd" }, wantErr: "/currency"},
		{name: "extra field", mutate: func(m map[string]any) { m["data"].(map[string]any)["x"] = 1 }, wantErr: "data"},
		{name: "dotted order id", mutate: func(m map[string]any) { m["subject"] = "o.1" }, wantErr: "/subject"},
		{name: "bad traceparent", mutate: func(m map[string]any) { m["traceparent"] = "x" }, wantErr: "/traceparent"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			raw := []byte(tt.raw)
			if tt.raw == "" {
				m := validEnvelope(t)
				tt.mutate(m)
				raw, _ = json.Marshal(m)
			}
			env, err := reg.Parse(raw)
			if tt.wantErr == "" {
				if err != nil {
					t.Fatalf("Parse: %v", err)
				}
				var d events.OrderConfirmedData
				if err := env.DecodeData(&d); err != nil || d.TotalCents != 100 {
					t.Fatalf("DecodeData = %+v, %v", d, err)
				}
				return
			}
			if !errors.Is(err, events.ErrInvalidEvent) {
				t.Fatalf("err = %v, want ErrInvalidEvent", err)
			}
			if !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("err = %q, want it to mention %q", err, tt.wantErr)
			}
		})
	}
}

func TestValidateRequest(t *testing.T) {
	t.Parallel()
	reg := events.DefaultRegistry()
	ok := `{"customer_id":"c-42","items":[{"sku":"SKU-1","quantity":2}],"payment_token":"tok_visa"}`
	if err := reg.ValidateRequest("order.create-request", []byte(ok)); err != nil {
		t.Fatalf("valid request: %v", err)
	}
	for _, bad := range []string{
		`{"customer_id":"c","items":[],"payment_token":"t"}`,
		`{"customer_id":"c","items":[{"sku":"S","quantity":0}],"payment_token":"t"}`,
		`{"customer_id":"c","items":[{"sku":"S","quantity":1,"price_cents":1}],"payment_token":"t"}`,
		`{"items":[{"sku":"S","quantity":1}],"payment_token":"t"}`,
	} {
		if err := reg.ValidateRequest("order.create-request", []byte(bad)); !errors.Is(err, events.ErrInvalidEvent) {
			t.Errorf("ValidateRequest(%s) = %v, want ErrInvalidEvent", bad, err)
		}
	}
}

func TestPublishIsCreateOnce(t *testing.T) {
	t.Parallel()
	srv := natstest.Start(t)
	_, js := natstest.Connect(t, srv)
	ctx := context.Background()
	if _, err := events.EnsureStream(ctx, js, events.StreamOrders, events.StreamOptions{}); err != nil {
		t.Fatal(err)
	}
	pub, err := events.NewPublisher(js, "order-service", events.WithClock(func() time.Time { return time.Unix(0, 0) }))
	if err != nil {
		t.Fatal(err)
	}
	data := events.OrderConfirmedData{OrderID: "o-1", CustomerID: "c-1", TotalCents: 2598, Currency: "USD"}
	tp := trace.New().String()
	first, err := pub.Publish(ctx, events.OrderConfirmed, "o-1", tp, data)
	if err != nil || first.Duplicate || first.Sequence == 0 {
		t.Fatalf("first publish = %+v, %v", first, err)
	}
	second, err := pub.Publish(ctx, events.OrderConfirmed, "o-1", tp, data)
	if err != nil || !second.Duplicate {
		t.Fatalf("second publish = %+v, %v; want a duplicate", second, err)
	}
	s, _ := js.Stream(ctx, events.StreamOrders)
	info, _ := s.Info(ctx)
	if info.State.Msgs != 1 {
		t.Fatalf("stream holds %d messages, want 1", info.State.Msgs)
	}
	stored, err := s.GetLastMsgForSubject(ctx, "orders.o-1.confirmed")
	if err != nil {
		t.Fatal(err)
	}
	if stored.Header.Get("traceparent") != tp {
		t.Errorf("traceparent header = %q, want %q", stored.Header.Get("traceparent"), tp)
	}
	env, err := events.DefaultRegistry().Parse(stored.Data)
	if err != nil || env.ID != first.Envelope.ID {
		t.Fatalf("stored event = %+v, %v", env, err)
	}
	// The stored event is the event; the same bytes stored again under
	// another message id (a replayed dead letter) are a copy.
	if events.Republished(stored.Header, env) {
		t.Error("the published event reads as a copy")
	}
	cp := nats.NewMsg(stored.Subject)
	cp.Data = stored.Data
	ack, err := js.PublishMsg(ctx, cp, jetstream.WithMsgID("replayed-1"))
	if err != nil {
		t.Fatal(err)
	}
	copied, err := s.GetMsg(ctx, ack.Sequence)
	if err != nil {
		t.Fatal(err)
	}
	if !events.Republished(copied.Header, env) {
		t.Error("a copy under another message id does not read as a copy")
	}
	// Producer-side validation refuses an invalid payload before it is sent.
	if _, err := pub.Publish(ctx, events.OrderConfirmed, "o-2", tp, events.OrderConfirmedData{OrderID: "o-2", Currency: "dollars"}); !errors.Is(err, events.ErrInvalidEvent) {
		t.Fatalf("invalid publish err = %v, want ErrInvalidEvent", err)
	}
	if _, err := pub.Publish(ctx, events.OrderConfirmed, "bad.id", tp, data); !errors.Is(err, events.ErrInvalidID) {
		t.Fatalf("dotted id err = %v, want ErrInvalidID", err)
	}
}

func TestValidateRequestListsEveryProblem(t *testing.T) {
	t.Parallel()
	err := events.DefaultRegistry().ValidateRequest("order.create-request",
		[]byte(`{"customer_id":"","items":[{"sku":"S","quantity":0}],"payment_token":"t"}`))
	var ve *events.ValidationError
	if !errors.As(err, &ve) || !errors.Is(err, events.ErrInvalidEvent) {
		t.Fatalf("err = %v, want a *ValidationError wrapping ErrInvalidEvent", err)
	}
	if len(ve.Problems) != 2 || !strings.HasPrefix(ve.Problems[0], "/") {
		t.Fatalf("problems = %q, want two located problems", ve.Problems)
	}
}

// TestPublishTellsARepeatFromAConflict: create-once used to take any event
// already on the subject for a duplicate of the one being published, so a
// forged inventory.<id>.reserved (5 units for 1 cent, published first with
// a stolen credential) silently stood in for the real reservation. A
// repeat must say the same; anything else is ErrConflictingDuplicate.
func TestPublishTellsARepeatFromAConflict(t *testing.T) {
	t.Parallel()
	srv := natstest.Start(t)
	_, js := natstest.Connect(t, srv)
	ctx := context.Background()
	for _, name := range []string{events.StreamOrders, events.StreamInventory} {
		if _, err := events.EnsureStream(ctx, js, name, events.StreamOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	inv, err := events.NewPublisher(js, "inventory-service")
	if err != nil {
		t.Fatal(err)
	}
	reserved := func(id string, total int64) events.InventoryReservedData {
		return events.InventoryReservedData{OrderID: id, TotalCents: total, Currency: "USD",
			Lines: []events.PricedLine{{SKU: "SKU-1", Name: "Mug", Quantity: 5, UnitPriceCents: total / 5, LineTotalCents: total}}}
	}

	// A forged reservation whose total contradicts its lines, put on the
	// subject straight through NATS (the publisher refuses to build it).
	real := reserved("o-forged", 3000)
	forgedData := `{"order_id":"o-forged","lines":[{"sku":"SKU-1","name":"Mug","quantity":5,"unit_price_cents":600,"line_total_cents":3000}],"total_cents":1,"currency":"USD"}`
	forged := `{"specversion":"1.0","id":"forged-1","source":"inventory-service","type":"shop.inventory.reserved","subject":"o-forged",` +
		`"time":"2026-11-23T10:00:00Z","datacontenttype":"application/json","dataschema":"https://schemas.eventshop.dev/events/inventory.reserved/v1.json",` +
		`"traceparent":"` + trace.New().String() + `","data":` + forgedData + `}`
	if _, err := js.Publish(ctx, "inventory.o-forged.reserved", []byte(forged)); err != nil {
		t.Fatal(err)
	}
	res, err := inv.Publish(ctx, events.InventoryReserved, "o-forged", trace.New().String(), real)
	if !errors.Is(err, events.ErrConflictingDuplicate) || res.Duplicate {
		t.Fatalf("real reservation over a forged one = %+v, %v; want ErrConflictingDuplicate", res, err)
	}
	if !strings.Contains(err.Error(), "not valid") {
		t.Errorf("error %q does not say the stored event is invalid", err)
	}

	// A valid stored event with another total is a conflict too.
	if _, err := inv.Publish(ctx, events.InventoryReserved, "o-2", trace.New().String(), reserved("o-2", 5)); err != nil {
		t.Fatal(err)
	}
	if _, err := inv.Publish(ctx, events.InventoryReserved, "o-2", trace.New().String(), reserved("o-2", 3000)); !errors.Is(err, events.ErrConflictingDuplicate) ||
		!strings.Contains(err.Error(), "other data") {
		t.Fatalf("other total = %v, want ErrConflictingDuplicate naming the data", err)
	}
	// So is the same data from another source.
	pay, err := events.NewPublisher(js, "payment-service")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := pay.Publish(ctx, events.InventoryReserved, "o-2", trace.New().String(), reserved("o-2", 5)); !errors.Is(err, events.ErrConflictingDuplicate) {
		t.Fatalf("other source = %v, want ErrConflictingDuplicate", err)
	}
	// A true repeat (new event id, time and trace) is a duplicate, and
	// the result is the stored event.
	again, err := inv.Publish(ctx, events.InventoryReserved, "o-2", trace.New().String(), reserved("o-2", 5))
	if err != nil || !again.Duplicate || again.Sequence == 0 {
		t.Fatalf("repeat = %+v, %v; want a duplicate", again, err)
	}

	// A retried POST stamps its own created_at on the same request: a repeat.
	ord, err := events.NewPublisher(js, "order-service")
	if err != nil {
		t.Fatal(err)
	}
	created := events.OrderCreatedData{OrderID: "o-3", CustomerID: "c", Items: []events.Item{{SKU: "S", Quantity: 1}}, PaymentToken: "t",
		CreatedAt: time.Date(2026, 11, 23, 10, 0, 0, 0, time.UTC)}
	if _, err := ord.Publish(ctx, events.OrderCreated, "o-3", trace.New().String(), created); err != nil {
		t.Fatal(err)
	}
	retry := created
	retry.CreatedAt = created.CreatedAt.Add(time.Second)
	if res, err := ord.Publish(ctx, events.OrderCreated, "o-3", trace.New().String(), retry); err != nil || !res.Duplicate {
		t.Fatalf("retried create = %+v, %v; want a duplicate", res, err)
	}
	retry.PaymentToken = "another card"
	if _, err := ord.Publish(ctx, events.OrderCreated, "o-3", trace.New().String(), retry); !errors.Is(err, events.ErrConflictingDuplicate) {
		t.Fatalf("create with another card = %v, want ErrConflictingDuplicate", err)
	}
}

// The events that decide an order exclude each other: of a confirmation
// and a cancellation published after the same event, only the first is
// stored; a repeat of the winner is a duplicate; the loser learns which
// event came first.
func TestPublishAfterLetsOneDecisionWin(t *testing.T) {
	t.Parallel()
	srv := natstest.Start(t)
	_, js := natstest.Connect(t, srv)
	ctx := context.Background()
	if _, err := events.EnsureStream(ctx, js, events.StreamOrders, events.StreamOptions{}); err != nil {
		t.Fatal(err)
	}
	pub, err := events.NewPublisher(js, "order-service")
	if err != nil {
		t.Fatal(err)
	}
	created := events.OrderCreatedData{OrderID: "o-1", CustomerID: "c-1", PaymentToken: "tok_visa",
		Items: []events.Item{{SKU: "SKU-1", Quantity: 1}}, CreatedAt: time.Now().UTC()}
	first, err := pub.PublishAfter(ctx, events.OrderCreated, "o-1", trace.New().String(), created, 0)
	if err != nil || first.Sequence == 0 {
		t.Fatalf("created after nothing = %+v, %v", first, err)
	}
	// Nothing may be published as the order's first event any more.
	if _, err := pub.PublishAfter(ctx, events.OrderCancelled, "o-1", trace.New().String(), events.OrderCancelledData{OrderID: "o-1", CustomerID: "c-1", Reason: events.ReasonTimeout}, 0); !errors.Is(err, events.ErrOvertaken) {
		t.Fatalf("a second first event = %v, want ErrOvertaken", err)
	}

	confirmed := events.OrderConfirmedData{OrderID: "o-1", CustomerID: "c-1", TotalCents: 500, Currency: "USD"}
	cancelled := events.OrderCancelledData{OrderID: "o-1", CustomerID: "c-1", Reason: events.ReasonTimeout}
	// Twenty deciders race, half of each kind: exactly one event is stored.
	var wg sync.WaitGroup
	results := make([]error, 20)
	for i := range results {
		wg.Go(func() {
			if i%2 == 0 {
				_, results[i] = pub.PublishAfter(ctx, events.OrderConfirmed, "o-1", trace.New().String(), confirmed, first.Sequence)
			} else {
				_, results[i] = pub.PublishAfter(ctx, events.OrderCancelled, "o-1", trace.New().String(), cancelled, first.Sequence)
			}
		})
	}
	wg.Wait()
	s, _ := js.Stream(ctx, events.StreamOrders)
	info, _ := s.Info(ctx)
	if info.State.Msgs != 2 {
		t.Fatalf("stream holds %d messages, want the created event and one decision", info.State.Msgs)
	}
	last, err := s.GetLastMsgForSubject(ctx, "orders.o-1.*")
	if err != nil {
		t.Fatal(err)
	}
	won := events.OrderConfirmed
	if strings.HasSuffix(last.Subject, ".cancelled") {
		won = events.OrderCancelled
	}
	for i, err := range results {
		kind := events.OrderConfirmed
		if i%2 == 1 {
			kind = events.OrderCancelled
		}
		var over *events.OvertakenError
		switch {
		case kind == won && err != nil:
			t.Errorf("decider %d (%s, the winning kind) = %v, want success or duplicate", i, kind, err)
		case kind != won && (!errors.As(err, &over) || over.Stored.Type != won || over.Sequence != last.Sequence):
			t.Errorf("decider %d (%s) = %v, want ErrOvertaken naming the %s at %d", i, kind, err, won, last.Sequence)
		}
	}
	// Another confirmation with other data is overtaken, not a duplicate.
	if won == events.OrderConfirmed {
		other := confirmed
		other.TotalCents = 1
		if _, err := pub.PublishAfter(ctx, events.OrderConfirmed, "o-1", trace.New().String(), other, first.Sequence); !errors.Is(err, events.ErrOvertaken) {
			t.Errorf("confirmation with another total = %v, want ErrOvertaken", err)
		}
	}
}
