package service_test

import (
	"context"
	"encoding/json"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"go.uber.org/zap"

	"github.com/eventshop/audit-service/internal/chain"
	"github.com/eventshop/audit-service/internal/config"
	"github.com/eventshop/audit-service/internal/consumer"
	"github.com/eventshop/audit-service/internal/httpapi"
	"github.com/eventshop/audit-service/internal/service"
	"github.com/eventshop/shared/api/apitest"
	"github.com/eventshop/shared/api/openapi"
	"github.com/eventshop/shared/events"
	"github.com/eventshop/shared/platform/deadletter"
	"github.com/eventshop/shared/platform/kit/kittest"
	"github.com/eventshop/shared/platform/natstest"
	"github.com/eventshop/shared/platform/trace"
)

// world is a real embedded nats-server with the domain streams the other
// services own, and publishers standing in for those services.
type world struct {
	*kittest.Broker
	pubs map[string]*events.Publisher
}

func newWorld(t *testing.T) *world {
	t.Helper()
	return worldOn(t, kittest.StartBroker(t))
}

// worldOn makes the world on b, whose client may do anything.
func worldOn(t *testing.T, b *kittest.Broker) *world {
	t.Helper()
	w := &world{Broker: b, pubs: map[string]*events.Publisher{}}
	for _, s := range events.DomainStreams {
		if _, err := events.EnsureStream(context.Background(), b.JS, s, events.StreamOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	for _, src := range []string{"order-service", "inventory-service", "payment-service", "notification-service"} {
		p, err := events.NewPublisher(b.JS, src)
		if err != nil {
			t.Fatal(err)
		}
		w.pubs[src] = p
	}
	return w
}

// instance is one running audit service.
type instance struct {
	*kittest.Instance[*service.Service]
}

func (w *world) start(t *testing.T, extraEnv ...map[string]string) *instance {
	t.Helper()
	cfg, err := config.Load(w.Env(extraEnv...))
	if err != nil {
		t.Fatal(err)
	}
	return &instance{kittest.Start(t, func(ctx context.Context) (*service.Service, error) {
		return service.New(ctx, cfg, zap.NewNop())
	}, kittest.WithFront(func(addr string) string { return apitest.Proxy(t, openapi.Audit, addr) }))}
}

// saga publishes one event on each domain stream for orderID, all in one
// trace, and returns the trace id and the event ids.
func (w *world) saga(t *testing.T, orderID string) (string, []string) {
	t.Helper()
	ctx := context.Background()
	tp := trace.New().String()
	steps := []struct {
		src  string
		typ  events.Type
		data any
	}{
		{"order-service", events.OrderCreated, events.OrderCreatedData{OrderID: orderID, CustomerID: "c-1",
			Items: []events.Item{{SKU: "SKU-1", Quantity: 2}}, PaymentToken: "tok_visa", CreatedAt: time.Now().UTC()}},
		{"inventory-service", events.InventoryReserved, events.InventoryReservedData{OrderID: orderID,
			Lines:      []events.PricedLine{{SKU: "SKU-1", Name: "Mug", Quantity: 2, UnitPriceCents: 1299, LineTotalCents: 2598}},
			TotalCents: 2598, Currency: "EUR"}},
		{"payment-service", events.PaymentSucceeded, events.PaymentSucceededData{OrderID: orderID, ChargeID: "ch_1", AmountCents: 2598, Currency: "EUR"}},
		{"order-service", events.OrderConfirmed, events.OrderConfirmedData{OrderID: orderID, CustomerID: "c-1", TotalCents: 2598, Currency: "EUR"}},
		{"notification-service", events.NotificationSent, events.NotificationSentData{OrderID: orderID, NotificationID: "n-1", Kind: "order_confirmed", Channel: "log"}},
	}
	var ids []string
	for _, s := range steps {
		p, err := w.pubs[s.src].Publish(ctx, s.typ, orderID, trace.Child(tp).String(), s.data)
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, p.Envelope.ID)
	}
	return trace.TraceID(tp), ids
}

// getJSON GETs path of the service, wants status wantStatus and decodes
// the body into v (unless nil).
func (in *instance) getJSON(t *testing.T, path string, wantStatus int, v any) {
	t.Helper()
	status, _, body := in.Get(path)
	if status != wantStatus {
		t.Fatalf("GET %s = %d %s, want %d", path, status, body, wantStatus)
	}
	if v != nil {
		if err := json.Unmarshal(body, v); err != nil {
			t.Fatalf("GET %s: %v in %s", path, err, body)
		}
	}
}

func (in *instance) verify(t *testing.T) chain.Result {
	t.Helper()
	var res chain.Result
	in.getJSON(t, "/audit/verify", http.StatusOK, &res)
	return res
}

func (in *instance) waitEntries(t *testing.T, n int) chain.Result {
	t.Helper()
	var res chain.Result
	natstest.Eventually(t, strconv.Itoa(n)+" audit entries", func() bool {
		res = in.verify(t)
		return res.Entries >= n
	})
	return res
}

// idle waits until every audit consumer has settled everything on its
// stream.
func (w *world) idle(t *testing.T) {
	t.Helper()
	ctx := context.Background()
	natstest.Eventually(t, "audit consumers idle", func() bool {
		for _, name := range events.DomainStreams {
			s, err := w.JS.Stream(ctx, name)
			if err != nil {
				return false
			}
			si, err := s.Info(ctx)
			if err != nil {
				return false
			}
			c, err := s.Consumer(ctx, consumer.Durable(name))
			if err != nil {
				return false
			}
			ci, err := c.Info(ctx)
			if err != nil || ci.NumPending != 0 || ci.NumAckPending != 0 || ci.Delivered.Stream < si.State.LastSeq {
				return false
			}
		}
		return true
	})
}

func TestEveryStreamIsAuditedOnceAndTheChainVerifies(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	in := w.start(t)
	traceID, ids := w.saga(t, "o-1")
	w.saga(t, "o-2")

	res := in.waitEntries(t, 10)
	w.idle(t)
	res = in.verify(t)
	if !res.OK || res.Entries != 10 || res.FirstBroken != nil || len(res.Head) != 64 {
		t.Fatalf("verify = %+v, want a valid chain of 10", res)
	}

	var tl httpapi.Timeline
	in.getJSON(t, "/audit/orders/o-1", http.StatusOK, &tl)
	if tl.OrderID != "o-1" || len(tl.Entries) != len(ids) {
		t.Fatalf("timeline = %+v, want %d entries", tl, len(ids))
	}
	seen := map[string]bool{}
	var prev uint64
	for _, e := range tl.Entries {
		if e.Index <= prev {
			t.Fatalf("timeline not in chain order: %d after %d", e.Index, prev)
		}
		prev = e.Index
		if e.TraceID != traceID || e.Time == nil || e.RecordedAt == "" || len(e.Data) == 0 || e.Source == "" {
			t.Fatalf("timeline entry = %+v, want trace %s, time, data", e, traceID)
		}
		var d struct {
			OrderID string `json:"order_id"`
		}
		if err := json.Unmarshal(e.Data, &d); err != nil || d.OrderID != "o-1" {
			t.Fatalf("entry data = %s", e.Data)
		}
		// The payment token is never served: only its fingerprint.
		if strings.Contains(string(e.Data), "tok_visa") ||
			(e.Type == string(events.OrderCreated) && !strings.Contains(string(e.Data), `"payment_token":"hmac-sha256:`)) {
			t.Fatalf("%s entry data = %s, want the payment token as a fingerprint only", e.Type, e.Data)
		}
		seen[e.EventID] = true
	}
	for _, id := range ids {
		if !seen[id] {
			t.Fatalf("event %s missing from the timeline", id)
		}
	}
	// Each stream's events appear in the order they were published there.
	var orderTypes []string
	for _, e := range tl.Entries {
		if strings.HasPrefix(e.Type, "shop.order.") {
			orderTypes = append(orderTypes, e.Type)
		}
	}
	if strings.Join(orderTypes, ",") != "shop.order.created,shop.order.confirmed" {
		t.Fatalf("order events in chain order: %v", orderTypes)
	}
}

func TestRedeliveredEventIsAuditedOnce(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	in := w.start(t)
	w.saga(t, "o-1")
	in.waitEntries(t, 5)

	// The same event stored again on its stream (a producer retry after
	// the duplicate window): a new message, the same event id.
	ctx := context.Background()
	s, err := w.JS.Stream(ctx, events.StreamOrders)
	if err != nil {
		t.Fatal(err)
	}
	stored, err := s.GetLastMsgForSubject(ctx, "orders.o-1.created")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.JS.Publish(ctx, "orders.o-1.created", stored.Data); err != nil {
		t.Fatal(err)
	}
	w.idle(t)
	if res := in.verify(t); !res.OK || res.Entries != 5 {
		t.Fatalf("verify = %+v, want 5 entries", res)
	}
	_, _, body := in.Get("/metrics")
	for _, want := range []string{
		`eventshop_audit_duplicates_skipped_total{service="audit-service"} 1`,
		`eventshop_audit_entries_appended_total{service="audit-service"} 5`,
		`eventshop_audit_chain_head_index{service="audit-service"} 5`,
	} {
		if !strings.Contains(string(body), want) {
			t.Errorf("metrics lack %q", want)
		}
	}
}

func TestForgedEntryIsDetected(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	in := w.start(t)
	w.saga(t, "o-1")
	before := in.waitEntries(t, 5)
	if !before.OK {
		t.Fatalf("verify before tampering = %+v", before)
	}
	// Someone with publish rights on audit.> forges a block.
	forged := chain.Entry{
		Index: 6, EventID: "x", Type: "shop.payment.succeeded", Source: "payment-service", OrderID: "o-1",
		Stream: events.StreamPayments, StreamSeq: 99, RecordedAt: time.Now().UTC().Format(time.RFC3339Nano),
		PrevHash: strings.Repeat("1", 64), Hash: strings.Repeat("2", 64),
		Event: json.RawMessage(`{"id":"x","data":{"order_id":"o-1","amount_cents":0}}`),
	}
	raw, err := chain.Encode(forged)
	if err != nil {
		t.Fatal(err)
	}
	msg := nats.NewMsg(chain.BlockSubject)
	msg.Data = chain.EncodeBlock(chain.Seal([]chain.Entry{forged}, time.Now()), [][]byte{raw})
	msg.Header.Set(chain.HeaderSeqs, "PAYMENTS:99")
	ack, err := w.JS.PublishMsg(context.Background(), msg)
	if err != nil {
		t.Fatal(err)
	}
	res := in.verify(t)
	if res.OK || res.FirstBroken == nil || res.FirstBroken.Index != 6 || res.FirstBroken.StreamSeq != ack.Sequence {
		t.Fatalf("verify = %+v, want the forged entry (index 6, seq %d) reported", res, ack.Sequence)
	}
	// The log keeps working after the forgery; verification keeps naming it.
	w.saga(t, "o-2")
	res = in.waitEntries(t, 11)
	if res.OK || res.FirstBroken.StreamSeq != ack.Sequence {
		t.Fatalf("verify after more events = %+v", res)
	}
}

func TestRestartContinuesTheChain(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	first := w.start(t)
	w.saga(t, "o-1")
	res := first.waitEntries(t, 5)
	w.idle(t)
	if !res.OK {
		t.Fatalf("verify before restart = %+v", res)
	}
	first.Stop()

	second := w.start(t)
	w.saga(t, "o-2")
	res = second.waitEntries(t, 10)
	if !res.OK || res.Entries != 10 {
		t.Fatalf("verify after restart = %+v", res)
	}
	var tl httpapi.Timeline
	second.getJSON(t, "/audit/orders/o-2", http.StatusOK, &tl)
	if len(tl.Entries) != 5 || tl.Entries[0].Index != 6 {
		t.Fatalf("timeline of o-2 after restart = %+v, want indexes from 6", tl.Entries)
	}
	var o1 httpapi.Timeline
	second.getJSON(t, "/audit/orders/o-1", http.StatusOK, &o1)
	if o1.Entries[len(o1.Entries)-1].Index != 5 {
		t.Fatalf("o-1 timeline = %+v", o1.Entries)
	}
}

func TestInvalidEventIsDeadLetteredNotAudited(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	in := w.start(t)
	ctx := context.Background()
	ack, err := w.JS.PublishMsg(ctx, &nats.Msg{Subject: "payments.o-9.succeeded", Data: []byte(`{"specversion":"1.0"}`)})
	if err != nil {
		t.Fatal(err)
	}
	dl := natstest.DeadLetter(t, w.JS, consumer.Durable(events.StreamPayments), events.StreamPayments, ack.Sequence)
	if reason := dl.Header.Get(deadletter.HeaderError); !strings.Contains(reason, events.ErrInvalidEvent.Error()) {
		t.Fatalf("Dlq-Error = %q", reason)
	}
	w.idle(t)
	if res := in.verify(t); !res.OK || res.Entries != 0 {
		t.Fatalf("verify = %+v, want an empty chain", res)
	}
}

func TestAuditAPIErrors(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	in := w.start(t)
	tests := []struct {
		name string
		path string
		want int
	}{
		{name: "unknown order", path: "/audit/orders/o-unknown", want: http.StatusNotFound},
		{name: "id with a dot", path: "/audit/orders/a.b", want: http.StatusBadRequest},
		{name: "id too long", path: "/audit/orders/" + strings.Repeat("x", 65), want: http.StatusBadRequest},
		{name: "id with a wildcard", path: "/audit/orders/%2A", want: http.StatusBadRequest},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			status, header, body := in.Get(tt.path)
			var p struct {
				Status int    `json:"status"`
				Type   string `json:"type"`
			}
			if err := json.Unmarshal(body, &p); err != nil {
				t.Fatal(err)
			}
			if status != tt.want || p.Status != tt.want ||
				!strings.HasPrefix(header.Get("Content-Type"), "application/problem+json") {
				t.Fatalf("GET %s = %d %+v (%s), want %d problem+json", tt.path, status, p, header.Get("Content-Type"), tt.want)
			}
		})
	}
	if res := in.verify(t); !res.OK || res.Entries != 0 || res.Head != chain.GenesisHash {
		t.Fatalf("verify of an empty chain = %+v", res)
	}
}

func TestServesItsOpenAPIDocument(t *testing.T) {
	t.Parallel()
	apitest.ServesDocument(t, newWorld(t).start(t).URL, openapi.Audit)
}
