package service_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"

	"github.com/eventshop/notification-service/internal/channel"
	"github.com/eventshop/notification-service/internal/config"
	"github.com/eventshop/notification-service/internal/consumer"
	"github.com/eventshop/notification-service/internal/httpapi"
	"github.com/eventshop/notification-service/internal/notification"
	"github.com/eventshop/notification-service/internal/service"
	"github.com/eventshop/shared/api/apitest"
	"github.com/eventshop/shared/api/openapi"
	"github.com/eventshop/shared/events"
	"github.com/eventshop/shared/events/contracttest"
	"github.com/eventshop/shared/platform/deadletter"
	"github.com/eventshop/shared/platform/kit/kittest"
	"github.com/eventshop/shared/platform/natstest"
	"github.com/eventshop/shared/platform/trace"
)

// harness runs the whole notification service in-process against a real
// embedded nats-server, as the order service's peer.
type harness struct {
	js     jetstream.JetStream
	in     *kittest.Instance[*service.Service]
	logs   *observer.ObservedLogs
	orders *events.Publisher
}

func start(t *testing.T, env map[string]string) *harness {
	t.Helper()
	b := kittest.StartBroker(t)
	// Every event the service produces in a test must pass its schema.
	t.Cleanup(func() { contracttest.Check(t, b.JS, events.StreamNotifications, service.Name) })
	// The order service owns ORDERS; in these tests we stand in for it.
	if _, err := events.EnsureStream(context.Background(), b.JS, events.StreamOrders, events.StreamOptions{}); err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Load(b.Env(env))
	if err != nil {
		t.Fatal(err)
	}
	core, logs := observer.New(zapcore.DebugLevel)
	h := &harness{js: b.JS, logs: logs}
	h.in = kittest.Start(t, func(ctx context.Context) (*service.Service, error) { return service.New(ctx, cfg, zap.New(core)) },
		kittest.WithFront(func(addr string) string { return apitest.Proxy(t, openapi.Notification, addr) }))
	contracttest.CheckConsumers(t, service.Name, h.in.Service.FilterSubjects())
	h.orders, err = events.NewPublisher(b.JS, "order-service")
	if err != nil {
		t.Fatal(err)
	}
	return h
}

func (h *harness) confirm(t *testing.T, orderID string) events.Published {
	t.Helper()
	return h.confirmTo(t, orderID, nil)
}

// confirmTo publishes the confirmation of an order that ships to a (nil:
// none said).
func (h *harness) confirmTo(t *testing.T, orderID string, a *events.Address) events.Published {
	t.Helper()
	p, err := h.orders.Publish(context.Background(), events.OrderConfirmed, orderID, trace.New().String(),
		events.OrderConfirmedData{OrderID: orderID, CustomerID: "c-42", TotalCents: 2598, Currency: "USD", ShippingAddress: a})
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// idle waits until the notification consumer has settled every message on
// ORDERS it will ever see so far.
func (h *harness) idle(t *testing.T) {
	t.Helper()
	ctx := context.Background()
	s, err := h.js.Stream(ctx, events.StreamOrders)
	if err != nil {
		t.Fatal(err)
	}
	natstest.Eventually(t, "consumer idle", func() bool {
		si, err := s.Info(ctx)
		if err != nil {
			return false
		}
		c, err := s.Consumer(ctx, consumer.Durable)
		if err != nil {
			return false
		}
		ci, err := c.Info(ctx)
		if err != nil {
			return false
		}
		return ci.NumPending == 0 && ci.NumAckPending == 0 && ci.Delivered.Stream >= si.State.LastSeq
	})
}

func (h *harness) list(t *testing.T, orderID string) httpapi.Response {
	t.Helper()
	status, _, body := h.in.Get("/notifications?order_id=" + orderID)
	if status != http.StatusOK {
		t.Fatalf("GET /notifications: %d", status)
	}
	var out httpapi.Response
	if err := json.Unmarshal(body, &out); err != nil {
		t.Fatal(err)
	}
	return out
}

// sentEvents returns the shop.notification.sent events stored for orderID.
func (h *harness) sentEvents(t *testing.T, orderID string) []events.Envelope {
	t.Helper()
	ctx := context.Background()
	s, err := h.js.Stream(ctx, events.StreamNotifications)
	if err != nil {
		t.Fatal(err)
	}
	info, err := s.Info(ctx, jetstream.WithSubjectFilter("notifications."+orderID+".>"))
	if err != nil {
		t.Fatal(err)
	}
	var out []events.Envelope
	for subj, n := range info.State.Subjects {
		if n != 1 {
			t.Fatalf("subject %s holds %d events", subj, n)
		}
		m, err := s.GetLastMsgForSubject(ctx, subj)
		if err != nil {
			t.Fatal(err)
		}
		env, err := events.DefaultRegistry().Parse(m.Data)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, env)
	}
	return out
}

func (h *harness) logLines(msg, orderID string) int {
	n := 0
	for _, e := range h.logs.FilterMessage(msg).All() {
		if e.ContextMap()["order_id"] == orderID {
			n++
		}
	}
	return n
}

func TestConfirmedOrderGetsOneLogNotification(t *testing.T) {
	t.Parallel()
	h := start(t, nil)
	created := h.confirm(t, "o-1")

	natstest.Eventually(t, "notification sent", func() bool { return len(h.sentEvents(t, "o-1")) == 1 })
	h.idle(t)
	got := h.list(t, "o-1")
	if got.OrderID != "o-1" || len(got.Notifications) != 1 {
		t.Fatalf("GET /notifications = %+v", got)
	}
	n := got.Notifications[0]
	if n.Status != notification.StatusSent || n.Kind != notification.KindOrderConfirmed || n.Channel != "log" ||
		n.Attempts != 1 || n.ID != notification.ID("o-1", notification.KindOrderConfirmed) ||
		*n.Payload.TotalCents != 2598 || n.Payload.Currency != "USD" || n.SentAt == nil {
		t.Fatalf("notification = %+v", n)
	}
	if lines := h.logLines("notification", "o-1"); lines != 1 {
		t.Fatalf("log channel wrote %d notification lines, want 1", lines)
	}
	sent := h.sentEvents(t, "o-1")[0]
	var d events.NotificationSentData
	if err := sent.DecodeData(&d); err != nil {
		t.Fatal(err)
	}
	if d.NotificationID != n.ID || d.Kind != "order_confirmed" || d.Channel != "log" || sent.Source != service.Name {
		t.Fatalf("sent event = %+v / %+v", sent, d)
	}
	if sent.TraceID() != created.Envelope.TraceID() {
		t.Fatalf("sent event trace %s, want the order's %s", sent.TraceID(), created.Envelope.TraceID())
	}
}

func TestRedeliveredConfirmedStillOneNotification(t *testing.T) {
	t.Parallel()
	h := start(t, nil)
	h.confirm(t, "o-2")
	natstest.Eventually(t, "notification sent", func() bool { return len(h.sentEvents(t, "o-2")) == 1 })

	// The same event again (as after a lost ack, or a producer retry that
	// slipped past the duplicate window): copy the stored bytes onto ORDERS.
	ctx := context.Background()
	s, err := h.js.Stream(ctx, events.StreamOrders)
	if err != nil {
		t.Fatal(err)
	}
	stored, err := s.GetLastMsgForSubject(ctx, "orders.o-2.confirmed")
	if err != nil {
		t.Fatal(err)
	}
	for range 2 {
		if _, err := h.js.Publish(ctx, "orders.o-2.confirmed", stored.Data); err != nil {
			t.Fatal(err)
		}
	}
	h.idle(t)
	if got := h.list(t, "o-2").Notifications; len(got) != 1 || got[0].Attempts != 1 || !got[0].Sent() {
		t.Fatalf("notifications = %+v, want one sent after one attempt", got)
	}
	if lines := h.logLines("notification", "o-2"); lines != 1 {
		t.Fatalf("log channel wrote %d notification lines, want 1", lines)
	}
	if got := h.sentEvents(t, "o-2"); len(got) != 1 {
		t.Fatalf("sent events = %d, want 1", len(got))
	}
}

func TestCancelledOrderNotification(t *testing.T) {
	t.Parallel()
	h := start(t, nil)
	_, err := h.orders.Publish(context.Background(), events.OrderCancelled, "o-3", trace.New().String(),
		events.OrderCancelledData{OrderID: "o-3", CustomerID: "c-1", Reason: events.ReasonInsufficientStock})
	if err != nil {
		t.Fatal(err)
	}
	natstest.Eventually(t, "notification sent", func() bool { return len(h.sentEvents(t, "o-3")) == 1 })
	got := h.list(t, "o-3").Notifications
	if len(got) != 1 || got[0].Kind != notification.KindOrderCancelled || got[0].Payload.Reason != events.ReasonInsufficientStock ||
		got[0].Payload.TotalCents != nil {
		t.Fatalf("notifications = %+v", got)
	}
}

// webhookReceiver is the customer-facing system: it verifies signatures,
// fails the first failFirst requests with 503, answers status afterwards and
// counts accepted deliveries per notification id.
type webhookReceiver struct {
	secret    string
	failFirst int
	status    int

	mu        sync.Mutex
	requests  int
	badSig    int
	delivered map[string]int
	lastBody  channel.Body
}

func (r *webhookReceiver) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	body, _ := io.ReadAll(req.Body)
	r.mu.Lock()
	defer r.mu.Unlock()
	r.requests++
	if req.Header.Get(channel.HeaderSignature) != channel.Sign([]byte(r.secret), body) {
		r.badSig++
		w.WriteHeader(http.StatusUnauthorized)
		return
	}
	if r.requests <= r.failFirst {
		w.WriteHeader(http.StatusServiceUnavailable)
		return
	}
	if r.status != http.StatusOK {
		w.WriteHeader(r.status)
		return
	}
	_ = json.Unmarshal(body, &r.lastBody)
	r.delivered[req.Header.Get(channel.HeaderNotificationID)]++
	w.WriteHeader(http.StatusOK)
}

func webhookEnv(url string) map[string]string {
	return map[string]string{
		"NOTIFY_CHANNEL": "webhook", "NOTIFY_WEBHOOK_URL": url, "NOTIFY_WEBHOOK_SECRET": "whsec-test",
		"NOTIFY_WEBHOOK_INITIAL_INTERVAL": "10ms", "NOTIFY_WEBHOOK_MAX_ELAPSED": "3s",
	}
}

func TestWebhookDeliveredOnceAfterTwoFailures(t *testing.T) {
	t.Parallel()
	rcv := &webhookReceiver{secret: "whsec-test", failFirst: 2, status: http.StatusOK, delivered: map[string]int{}}
	recv := httptest.NewServer(rcv)
	t.Cleanup(recv.Close)
	h := start(t, webhookEnv(recv.URL))
	h.confirm(t, "o-wh")

	natstest.Eventually(t, "notification sent", func() bool { return len(h.sentEvents(t, "o-wh")) == 1 })
	h.idle(t)
	id := notification.ID("o-wh", notification.KindOrderConfirmed)
	rcv.mu.Lock()
	defer rcv.mu.Unlock()
	if rcv.badSig != 0 || rcv.requests != 3 || len(rcv.delivered) != 1 || rcv.delivered[id] != 1 {
		t.Fatalf("receiver: %d requests, %d bad signatures, deliveries %v; want 3 requests and one delivery of %s",
			rcv.requests, rcv.badSig, rcv.delivered, id)
	}
	if rcv.lastBody.OrderID != "o-wh" || *rcv.lastBody.Payload.TotalCents != 2598 {
		t.Fatalf("delivered body = %+v", rcv.lastBody)
	}
	got := h.list(t, "o-wh").Notifications
	if len(got) != 1 || !got[0].Sent() || got[0].Channel != "webhook" || got[0].Attempts != 1 {
		t.Fatalf("notifications = %+v", got)
	}
}

// The shipping address of a v2 confirmation reaches the receiver, also
// when the delivery is retried: the record that carries it between
// attempts (the KV value, a layout v2 added a field to) keeps it through
// each compare-and-set update.
func TestWebhookDeliversTheShippingAddressAfterRetries(t *testing.T) {
	t.Parallel()
	rcv := &webhookReceiver{secret: "whsec-test", failFirst: 2, status: http.StatusOK, delivered: map[string]int{}}
	recv := httptest.NewServer(rcv)
	t.Cleanup(recv.Close)
	h := start(t, webhookEnv(recv.URL))
	to := &events.Address{Name: "Ada Lovelace", Line1: "12 St James's Square", City: "London", PostalCode: "SW1Y 4JH", Country: "GB"}
	h.confirmTo(t, "o-ship", to)

	natstest.Eventually(t, "notification sent", func() bool { return len(h.sentEvents(t, "o-ship")) == 1 })
	h.idle(t)
	rcv.mu.Lock()
	defer rcv.mu.Unlock()
	got := rcv.lastBody.Payload.ShipTo
	if rcv.requests != 3 || got == nil || *got != notification.Address(*to) {
		t.Fatalf("receiver: %d requests, last body ships to %+v; want 3 and %+v", rcv.requests, got, to)
	}
	list := h.list(t, "o-ship").Notifications
	if len(list) != 1 || list[0].Payload.ShipTo == nil || list[0].Payload.ShipTo.City != "London" {
		t.Fatalf("stored notification = %+v", list)
	}
}

func TestWebhookRejectionIsDeadLettered(t *testing.T) {
	t.Parallel()
	rcv := &webhookReceiver{secret: "whsec-test", status: http.StatusBadRequest, delivered: map[string]int{}}
	recv := httptest.NewServer(rcv)
	t.Cleanup(recv.Close)
	h := start(t, webhookEnv(recv.URL))
	p := h.confirm(t, "o-rej")

	dl := natstest.DeadLetter(t, h.js, consumer.Durable, events.StreamOrders, p.Sequence)
	if reason := dl.Header.Get(deadletter.HeaderError); !strings.Contains(reason, "400") {
		t.Fatalf("Dlq-Error = %q, want the receiver's 400", reason)
	}
	h.idle(t)
	rcv.mu.Lock()
	requests := rcv.requests
	rcv.mu.Unlock()
	if requests != 1 {
		t.Fatalf("receiver got %d requests, want 1 (400 is not retried)", requests)
	}
	got := h.list(t, "o-rej").Notifications
	if len(got) != 1 || got[0].Sent() {
		t.Fatalf("notifications = %+v, want one still pending", got)
	}
	if n := len(h.sentEvents(t, "o-rej")); n != 0 {
		t.Fatalf("%d sent events for a rejected notification", n)
	}
}

func TestInvalidEventIsDeadLettered(t *testing.T) {
	t.Parallel()
	h := start(t, nil)
	ack, err := h.js.PublishMsg(context.Background(), &nats.Msg{
		Subject: "orders.o-bad.confirmed",
		Data:    []byte(`{"specversion":"1.0","id":"e-1","type":"shop.order.confirmed","data":{"total_cents":1.5}}`),
	})
	if err != nil {
		t.Fatal(err)
	}
	dl := natstest.DeadLetter(t, h.js, consumer.Durable, events.StreamOrders, ack.Sequence)
	if reason := dl.Header.Get(deadletter.HeaderError); !strings.Contains(reason, events.ErrInvalidEvent.Error()) {
		t.Fatalf("Dlq-Error = %q, want it to say invalid event", reason)
	}
	if got := h.list(t, "o-bad").Notifications; len(got) != 0 {
		t.Fatalf("invalid event produced notifications %+v", got)
	}
}

func TestNotificationsAPIRejectsBadInput(t *testing.T) {
	t.Parallel()
	h := start(t, nil)
	tests := []struct {
		name  string
		query string
		want  int
	}{
		{name: "missing order_id", query: "", want: http.StatusBadRequest},
		{name: "empty order_id", query: "?order_id=", want: http.StatusBadRequest},
		{name: "order id with a dot", query: "?order_id=a.b", want: http.StatusBadRequest},
		{name: "unknown order has none", query: "?order_id=o-none", want: http.StatusOK},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			status, header, raw := h.in.Get("/notifications" + tt.query)
			if status != tt.want {
				t.Fatalf("status = %d, want %d", status, tt.want)
			}
			if tt.want == http.StatusOK {
				var body httpapi.Response
				if err := json.Unmarshal(raw, &body); err != nil || body.Notifications == nil || len(body.Notifications) != 0 {
					t.Fatalf("body = %+v, %v; want an empty list", body, err)
				}
				return
			}
			if ct := header.Get("Content-Type"); !strings.HasPrefix(ct, "application/problem+json") {
				t.Fatalf("content type = %q, want problem+json", ct)
			}
			var p struct {
				Status int    `json:"status"`
				Type   string `json:"type"`
			}
			if err := json.Unmarshal(raw, &p); err != nil || p.Status != tt.want {
				t.Fatalf("problem = %+v, %v", p, err)
			}
		})
	}
}

func TestMetricsCountSentNotifications(t *testing.T) {
	t.Parallel()
	h := start(t, nil)
	h.confirm(t, "o-m")
	natstest.Eventually(t, "notification sent", func() bool { return len(h.sentEvents(t, "o-m")) == 1 })
	_, _, body := h.in.Get("/metrics")
	want := `eventshop_notifications_sent_total{channel="log",kind="order_confirmed",service="notification-service"} 1`
	if !strings.Contains(string(body), want) {
		t.Fatalf("metrics lack %q", want)
	}
}

func TestServesItsOpenAPIDocument(t *testing.T) {
	t.Parallel()
	apitest.ServesDocument(t, start(t, nil).in.URL, openapi.Notification)
}
