package contracttest_test

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/eventshop/shared/events"
	"github.com/eventshop/shared/events/contracttest"
	"github.com/eventshop/shared/platform/natstest"
	"github.com/eventshop/shared/platform/trace"
)

// recorder keeps what Check reports instead of failing the test.
type recorder struct {
	*testing.T
	errs []string
}

func (r *recorder) Errorf(format string, args ...any) {
	r.errs = append(r.errs, fmt.Sprintf(format, args...))
}

func TestCheckFindsAnEventThatBreaksItsSchema(t *testing.T) {
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
	good := events.OrderConfirmedData{OrderID: "o-1", CustomerID: "c-1", TotalCents: 100, Currency: "USD"}
	if _, err := pub.Publish(ctx, events.OrderConfirmed, "o-1", trace.New().String(), good); err != nil {
		t.Fatal(err)
	}
	// What a producer with a bug might store: valid JSON, a field the
	// schema does not have. Another source's event and poison are not this
	// producer's and are left alone.
	_, raw, err := pub.Build(events.OrderConfirmed, "o-2", trace.New().String(), good)
	if err != nil {
		t.Fatal(err)
	}
	bad := strings.Replace(string(raw), `"currency":"USD"`, `"currency":"USD","discount_cents":5`, 1)
	other := strings.Replace(bad, `"source":"order-service"`, `"source":"someone-else"`, 1)
	for subject, data := range map[string]string{"orders.o-2.confirmed": bad, "orders.o-3.confirmed": other, "orders.o-4.created": "{poison"} {
		if _, err := js.Publish(ctx, subject, []byte(data)); err != nil {
			t.Fatal(err)
		}
	}

	r := &recorder{T: t}
	if n := contracttest.Check(r, js, events.StreamOrders, "order-service"); n != 2 {
		t.Errorf("checked %d events, want the 2 of order-service", n)
	}
	if len(r.errs) != 1 || !strings.Contains(r.errs[0], "orders.o-2.confirmed") || !strings.Contains(r.errs[0], "discount_cents") {
		t.Fatalf("Check reported %q, want the one event that breaks its schema", r.errs)
	}
}

// A service that publishes a type contract.json does not list for it
// fails the check: the contract's producer table is the code's.
func TestCheckFindsATypeTheContractDoesNotList(t *testing.T) {
	srv := natstest.Start(t)
	_, js := natstest.Connect(t, srv)
	ctx := context.Background()
	if _, err := events.EnsureStream(ctx, js, events.StreamOrders, events.StreamOptions{}); err != nil {
		t.Fatal(err)
	}
	// payment-service publishing an order confirmation: valid, and not its.
	pub, err := events.NewPublisher(js, "payment-service")
	if err != nil {
		t.Fatal(err)
	}
	good := events.OrderConfirmedData{OrderID: "o-1", CustomerID: "c-1", TotalCents: 100, Currency: "USD"}
	if _, err := pub.Publish(ctx, events.OrderConfirmed, "o-1", trace.New().String(), good); err != nil {
		t.Fatal(err)
	}
	r := &recorder{T: t}
	contracttest.Check(r, js, events.StreamOrders, "payment-service")
	if len(r.errs) != 1 || !strings.Contains(r.errs[0], "does not say it produces") {
		t.Fatalf("Check reported %q, want the type payment-service does not produce", r.errs)
	}
	r = &recorder{T: t}
	contracttest.Check(r, js, events.StreamOrders, "order-service")
	if len(r.errs) != 0 {
		t.Fatalf("order-service: %q", r.errs)
	}
}
