package e2e

import (
	"context"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/eventshop/shared/api"
	"github.com/eventshop/shared/platform/deadletter"
	"github.com/eventshop/tools/loadgen"
	"github.com/eventshop/tools/natsauth"
)

// testPoisonIsDeadLettered publishes events no service can accept straight
// onto the orders stream: each consumer of that stream dead-letters them
// with the reason, once, and orders placed around them are unaffected.
func testPoisonIsDeadLettered(t *testing.T) {
	nc := sys.adminConn(t)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	sku := uniq("DLQ")
	putSKU(t, sku, 100, 10)
	before := postOrder(t, api.CreateOrderRequest{CustomerID: uniq("c"), Items: []api.Item{{SKU: sku, Quantity: 1}}, PaymentToken: "tok_visa"}, "")

	poison := map[string][]byte{
		"orders." + uniq("p") + ".created": []byte(`{"not":"an event"}`),
		"orders." + uniq("p") + ".created": []byte(`{"specversion":"1.0","id":"x1","source":"evil","type":"shop.order.created","subject":"o","time":"2026-01-01T00:00:00Z","datacontenttype":"application/json","dataschema":"https://schemas.eventshop.dev/events/order.created/v1.json","traceparent":"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01","data":{"order_id":"o","items":[]}}`),
	}
	seqs := map[uint64]string{}
	for subj, data := range poison {
		ack, err := js.Publish(ctx, subj, data)
		if err != nil {
			t.Fatal(err)
		}
		seqs[ack.Sequence] = subj
	}
	after := postOrder(t, api.CreateOrderRequest{CustomerID: uniq("c"), Items: []api.Item{{SKU: sku, Quantity: 1}}, PaymentToken: "tok_visa"}, "")
	for _, id := range []string{before, after} {
		checkSaga(t, waitFinal(t, id, 20*time.Second), "CONFIRMED", confirmedTypes...)
	}

	dlq, err := js.Stream(ctx, deadletter.DefaultStream)
	if err != nil {
		t.Fatal(err)
	}
	// inventory-orders, order-deadlines and audit-orders read every created
	// event; each dead-letters each poison message exactly once, with the
	// reason.
	for seq, subj := range seqs {
		for _, durable := range []string{"inventory-orders", "order-deadlines", "audit-orders"} {
			eventually(t, 20*time.Second, durable+" dead-letters "+subj, func() bool {
				m, err := dlq.GetLastMsgForSubject(ctx, "dlq."+durable+".ORDERS."+strconv.FormatUint(seq, 10))
				if err != nil {
					return false
				}
				if m.Header.Get(deadletter.HeaderOriginalSubject) != subj || !strings.Contains(m.Header.Get(deadletter.HeaderError), "invalid event") {
					t.Fatalf("dead letter of %s by %s has headers %v", subj, durable, m.Header)
				}
				return true
			})
		}
	}
	// Poison is never audited: the audit trail holds only valid events.
	for _, subj := range seqs {
		if entries := timeline(t, strings.Split(subj, ".")[1]); len(entries) != 0 {
			t.Fatalf("poison %s was audited: %+v", subj, entries)
		}
	}
}

// testLoadMixKeepsInvariants drives the system with the load generator's
// mix (a hot SKU, declined cards, unknown SKUs) for a few seconds and checks
// every business invariant through the public APIs.
func testLoadMixKeepsInvariants(t *testing.T) {
	r, err := loadgen.New(loadgen.Config{
		OrderURL: sys.urls["order-service"], InventoryURL: sys.urls["inventory-service"],
		GatewayURL: sys.urls["payment-gateway"], NotificationURL: sys.urls["notification-service"],
		AuditURL: sys.urls["audit-service"], AdminToken: adminToken,
		NATSURL: sys.nats.ClientURL(), NATSUser: natsauth.Admin, NATSPassword: sys.natsPw[natsauth.Admin],
		Mode: "closed", Concurrency: 8, Duration: 10 * time.Second, MaxOrders: 300, SKUs: 5, StockPerSKU: 100_000,
		HotShare: 0.3, DeclineShare: 0.1, UnknownShare: 0.05, SettleTimeout: time.Minute, Check: true,
	}, testWriter{t})
	if err != nil {
		t.Fatal(err)
	}
	rep, err := r.Run(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("load mix:\n%s", rep.Text())
	if rep.Accepted == 0 || rep.NotFinal != 0 || len(rep.Violations) != 0 {
		t.Fatalf("load mix: accepted %d, not final %d, violations %v", rep.Accepted, rep.NotFinal, rep.Violations)
	}
	if rep.Final["CANCELLED"] == 0 || rep.Final["CONFIRMED"] == 0 {
		t.Fatalf("load mix produced %v; want both outcomes", rep.Final)
	}
}

type testWriter struct{ t *testing.T }

func (w testWriter) Write(b []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(b), "\n"))
	return len(b), nil
}
