package app

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"go.uber.org/zap"

	"github.com/eventshop/notification-service/internal/notification"
	"github.com/eventshop/notification-service/internal/store"
	"github.com/eventshop/shared/events"
	"github.com/eventshop/shared/platform/natstest"
	"github.com/eventshop/shared/platform/trace"
)

// recorder is a channel outside the system: it records what it was asked to
// deliver and fails with err when set.
type recorder struct {
	mu   sync.Mutex
	sent []notification.Notification
	err  error
}

func (r *recorder) Send(_ context.Context, n notification.Notification) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.err != nil {
		return r.err
	}
	r.sent = append(r.sent, n)
	return nil
}

func (r *recorder) calls() []notification.Notification {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]notification.Notification(nil), r.sent...)
}

type fixture struct {
	js    jetstream.JetStream
	store *store.Notifications
	ch    *recorder
	app   *App
	pub   *events.Publisher
}

func setup(t *testing.T, opts ...Option) *fixture {
	t.Helper()
	return setupOn(t, func(js jetstream.JetStream) jetstream.JetStream { return js }, opts...)
}

// setupOn is setup with the store opened through storeJS(js).
func setupOn(t *testing.T, storeJS func(jetstream.JetStream) jetstream.JetStream, opts ...Option) *fixture {
	t.Helper()
	srv := natstest.Start(t)
	_, js := natstest.Connect(t, srv)
	ctx := context.Background()
	for _, s := range []string{events.StreamOrders, events.StreamNotifications} {
		if _, err := events.EnsureStream(ctx, js, s, events.StreamOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	st, err := store.Open(ctx, storeJS(js), 1)
	if err != nil {
		t.Fatal(err)
	}
	pubNotify, err := events.NewPublisher(js, "notification-service")
	if err != nil {
		t.Fatal(err)
	}
	ch := &recorder{}
	a, err := New(st, ch, "log", pubNotify, zap.NewNop(), opts...)
	if err != nil {
		t.Fatal(err)
	}
	pubOrder, err := events.NewPublisher(js, "order-service")
	if err != nil {
		t.Fatal(err)
	}
	return &fixture{js: js, store: st, ch: ch, app: a, pub: pubOrder}
}

// deliver hands a delivered orders.<id>.confirmed to a, decoded once as
// the consumer does.
func deliver(ctx context.Context, a *App, msg jetstream.Msg) error {
	env, err := events.Decode(msg.Subject(), msg.Data())
	if err != nil {
		return err
	}
	var d events.OrderConfirmedData
	if err := env.DecodeData(&d); err != nil {
		return err
	}
	return a.OrderConfirmed(ctx, env, d)
}

// permanent reports whether the consumer dead-letters err at once rather
// than retrying it (consumer.verdict).
func permanent(err error) bool {
	return errors.Is(err, notification.ErrRejected) || errors.Is(err, events.ErrConflictingDuplicate)
}

// confirmed publishes shop.order.confirmed for orderID and returns the
// stored message as a consumer would receive it.
func (f *fixture) confirmed(t *testing.T, orderID string) jetstream.Msg {
	t.Helper()
	ctx := context.Background()
	_, err := f.pub.Publish(ctx, events.OrderConfirmed, orderID, trace.New().String(),
		events.OrderConfirmedData{OrderID: orderID, CustomerID: "c-1", TotalCents: 1999, Currency: "EUR"})
	if err != nil {
		t.Fatal(err)
	}
	return f.fetch(t, "orders."+orderID+".confirmed")
}

// pending stores the record of msg's notification pending after one
// attempt, as a process that died before marking it sent left it.
func (f *fixture) pending(t *testing.T, msg jetstream.Msg) {
	t.Helper()
	env, err := events.DefaultRegistry().Parse(msg.Data())
	if err != nil {
		t.Fatal(err)
	}
	n, err := notificationOf(env, "log", time.Now())
	if err != nil {
		t.Fatal(err)
	}
	n.Attempt("log")
	if _, err := f.store.Create(context.Background(), n); err != nil {
		t.Fatal(err)
	}
}

func (f *fixture) fetch(t *testing.T, subject string) jetstream.Msg {
	t.Helper()
	ctx := context.Background()
	c, err := f.js.CreateConsumer(ctx, events.StreamOrders, jetstream.ConsumerConfig{
		FilterSubject: subject, AckPolicy: jetstream.AckExplicitPolicy, InactiveThreshold: time.Minute,
	})
	if err != nil {
		t.Fatal(err)
	}
	msg, err := c.Next(jetstream.FetchMaxWait(5 * time.Second))
	if err != nil {
		t.Fatal(err)
	}
	return msg
}

func (f *fixture) sentEvents(t *testing.T, orderID string) []events.NotificationSentData {
	t.Helper()
	s, err := f.js.Stream(context.Background(), events.StreamNotifications)
	if err != nil {
		t.Fatal(err)
	}
	info, err := s.Info(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	var out []events.NotificationSentData
	for seq := info.State.FirstSeq; seq <= info.State.LastSeq && info.State.Msgs > 0; seq++ {
		m, err := s.GetMsg(context.Background(), seq)
		if err != nil {
			t.Fatal(err)
		}
		env, err := events.DefaultRegistry().Parse(m.Data)
		if err != nil {
			t.Fatal(err)
		}
		var d events.NotificationSentData
		if err := env.DecodeData(&d); err != nil {
			t.Fatal(err)
		}
		if d.OrderID == orderID {
			out = append(out, d)
		}
	}
	return out
}

func TestCrashAfterSendResendsWithTheSameID(t *testing.T) {
	t.Parallel()
	f := setup(t)
	ctx := context.Background()
	msg := f.confirmed(t, "o-crash")
	// A previous process put the record pending, sent, and died before
	// marking it sent.
	f.pending(t, msg)

	if err := deliver(ctx, f.app, msg); err != nil {
		t.Fatalf("Handle: %v", err)
	}
	calls := f.ch.calls()
	if len(calls) != 1 || calls[0].ID != notification.ID("o-crash", notification.KindOrderConfirmed) {
		t.Fatalf("channel calls = %+v, want one with the deterministic id", calls)
	}
	n, _, err := f.store.Get(ctx, "o-crash", notification.KindOrderConfirmed)
	if err != nil {
		t.Fatal(err)
	}
	if !n.Sent() || n.Attempts != 2 || n.SentAt == nil || *n.Payload.TotalCents != 1999 {
		t.Fatalf("record = %+v, want sent after 2 attempts", n)
	}
	if got := f.sentEvents(t, "o-crash"); len(got) != 1 || got[0].NotificationID != n.ID || got[0].Kind != "order_confirmed" {
		t.Fatalf("sent events = %+v", got)
	}
}

func TestRedeliveryAfterSentOnlyRepublishes(t *testing.T) {
	t.Parallel()
	f := setup(t)
	ctx := context.Background()
	msg := f.confirmed(t, "o-again")
	for i := range 3 {
		if err := deliver(ctx, f.app, msg); err != nil {
			t.Fatalf("Handle #%d: %v", i+1, err)
		}
	}
	if got := len(f.ch.calls()); got != 1 {
		t.Fatalf("channel called %d times, want 1", got)
	}
	if got := f.sentEvents(t, "o-again"); len(got) != 1 {
		t.Fatalf("sent events = %+v, want 1", got)
	}
}

func TestConcurrentDeliveriesRecordOneNotification(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		name     string
		opts     []Option
		kvWrites uint64 // the record's writes: created pending, then marked sent; none when the event is the record
	}{
		{name: "pending record first", kvWrites: 2},
		{name: "send first (log channel)", opts: []Option{WithoutPendingRecord()}, kvWrites: 0},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			f := setup(t, tt.opts...)
			ctx := context.Background()
			msg := f.confirmed(t, "o-race")
			var wg sync.WaitGroup
			errs := make(chan error, 8)
			for range 8 {
				wg.Go(func() { errs <- deliver(ctx, f.app, msg) })
			}
			wg.Wait()
			close(errs)
			for err := range errs {
				if err != nil {
					t.Fatalf("Handle: %v", err)
				}
			}
			id := notification.ID("o-race", notification.KindOrderConfirmed)
			for _, c := range f.ch.calls() {
				if c.ID != id {
					t.Fatalf("delivery with id %s, want %s", c.ID, id)
				}
			}
			list, err := f.app.List(ctx, "o-race")
			if err != nil || len(list) != 1 || !list[0].Sent() || list[0].ID != id {
				t.Fatalf("notifications = %+v, %v; want one sent", list, err)
			}
			if got := f.sentEvents(t, "o-race"); len(got) != 1 {
				t.Fatalf("sent events = %+v, want 1", got)
			}
			if got := f.kvWrites(t); got < tt.kvWrites || tt.kvWrites == 0 && got != 0 {
				t.Fatalf("%d KV writes, want %d", got, tt.kvWrites)
			}
		})
	}
}

func TestChannelFailures(t *testing.T) {
	t.Parallel()
	f := setup(t)
	ctx := context.Background()
	tests := []struct {
		name          string
		err           error
		wantPermanent bool
	}{
		{name: "transient", err: errors.New("connection refused")},
		{name: "rejected", err: fmt.Errorf("receiver answered 400: %w", notification.ErrRejected), wantPermanent: true},
	}
	for i, tt := range tests { // sequential: they share the fixture's channel
		orderID := fmt.Sprintf("o-fail-%d", i)
		msg := f.confirmed(t, orderID)
		f.ch.mu.Lock()
		f.ch.err = tt.err
		f.ch.mu.Unlock()
		err := deliver(ctx, f.app, msg)
		if err == nil || permanent(err) != tt.wantPermanent {
			t.Fatalf("%s: Handle = %v, want permanent=%v", tt.name, err, tt.wantPermanent)
		}
		n, _, err := f.store.Get(ctx, orderID, notification.KindOrderConfirmed)
		if err != nil || n.Sent() || n.Attempts != 1 {
			t.Fatalf("%s: record = %+v, %v; want pending after 1 attempt", tt.name, n, err)
		}
		if got := f.sentEvents(t, orderID); len(got) != 0 {
			t.Fatalf("%s: sent events = %+v, want none", tt.name, got)
		}
	}
}

// kvWrites counts the writes stored in the notifications bucket.
func (f *fixture) kvWrites(t *testing.T) uint64 {
	t.Helper()
	s, err := f.js.Stream(context.Background(), "KV_notifications")
	if err != nil {
		t.Fatal(err)
	}
	info, err := s.Info(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return info.State.LastSeq
}

// publishFails is a publisher whose process dies at its first publish
// when armed: the event is not stored.
type publishFails struct {
	*events.Publisher
	armed atomic.Bool
}

func (p *publishFails) Publish(ctx context.Context, t events.Type, orderID, tp string, data any) (events.Published, error) {
	if p.armed.CompareAndSwap(true, false) {
		return events.Published{}, errors.New("process killed")
	}
	return p.Publisher.Publish(ctx, t, orderID, tp, data)
}

func TestSendFirstRecordsOnceAsSent(t *testing.T) {
	t.Parallel()
	f := setup(t, WithoutPendingRecord())
	ctx := context.Background()
	msg := f.confirmed(t, "o-1")
	for i := range 2 { // the second is a redelivery
		if err := deliver(ctx, f.app, msg); err != nil {
			t.Fatalf("Handle #%d: %v", i+1, err)
		}
	}
	if got := len(f.ch.calls()); got != 1 {
		t.Fatalf("channel called %d times, want 1", got)
	}
	list, err := f.app.List(ctx, "o-1")
	if err != nil || len(list) != 1 || !list[0].Sent() || list[0].Attempts != 1 || list[0].Channel != "log" {
		t.Fatalf("notifications = %+v, %v; want one sent through log after 1 attempt", list, err)
	}
	if p := list[0].Payload; p.CustomerID != "c-1" || p.TotalCents == nil || *p.TotalCents != 1999 || p.Currency != "EUR" {
		t.Fatalf("payload = %+v, want the confirmed order's", p)
	}
	if got := f.kvWrites(t); got != 0 {
		t.Fatalf("%d KV writes, want none: the sent event is the record", got)
	}
	if got := f.sentEvents(t, "o-1"); len(got) != 1 {
		t.Fatalf("sent events = %+v, want 1", got)
	}
}

func TestSendFirstCrashBeforeTheRecordSendsAgainWithTheSameID(t *testing.T) {
	t.Parallel()
	f := setup(t)
	pub, err := events.NewPublisher(f.js, "notification-service")
	if err != nil {
		t.Fatal(err)
	}
	dies := &publishFails{Publisher: pub}
	dies.armed.Store(true)
	h, err := New(f.store, f.ch, "log", dies, zap.NewNop(), WithoutPendingRecord())
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	msg := f.confirmed(t, "o-2")
	if err := deliver(ctx, h, msg); err == nil || permanent(err) {
		t.Fatalf("Handle with the record lost = %v, want a retryable error", err)
	}
	if err := deliver(ctx, h, msg); err != nil {
		t.Fatalf("redelivery: %v", err)
	}
	id := notification.ID("o-2", notification.KindOrderConfirmed)
	calls := f.ch.calls()
	if len(calls) != 2 || calls[0].ID != id || calls[1].ID != id {
		t.Fatalf("channel calls = %+v, want two with id %s", calls, id)
	}
	if list, err := f.app.List(ctx, "o-2"); err != nil || len(list) != 1 || !list[0].Sent() {
		t.Fatalf("notifications = %+v, %v", list, err)
	}
	if got := f.sentEvents(t, "o-2"); len(got) != 1 {
		t.Fatalf("sent events = %+v, want 1", got)
	}
}

// contended is the real JetStream whose notifications bucket has another
// writer: after each read that finds a record it stores the record again
// (a new revision), so the reader's compare-and-set loses. It gives up
// after limit such writes.
type contended struct {
	jetstream.JetStream
	limit  int64
	writes atomic.Int64
}

func (c *contended) CreateOrUpdateKeyValue(ctx context.Context, cfg jetstream.KeyValueConfig) (jetstream.KeyValue, error) {
	kv, err := c.JetStream.CreateOrUpdateKeyValue(ctx, cfg)
	if err != nil {
		return nil, err
	}
	return contendedKV{KeyValue: kv, c: c}, nil
}

type contendedKV struct {
	jetstream.KeyValue
	c *contended
}

func (kv contendedKV) Get(ctx context.Context, key string) (jetstream.KeyValueEntry, error) {
	e, err := kv.KeyValue.Get(ctx, key)
	if err != nil || kv.c.writes.Load() >= kv.c.limit {
		return e, err
	}
	if _, err := kv.KeyValue.Put(ctx, key, e.Value()); err != nil {
		return nil, err
	}
	kv.c.writes.Add(1)
	return e, nil
}

// TestContendedRecordGivesUp: a record another writer changes between
// every read and write of the handler makes Handle give up after a bounded
// number of conflicts, with a retryable error (the message comes back
// later), instead of spinning for as long as the other writer goes on.
func TestContendedRecordGivesUp(t *testing.T) {
	t.Parallel()
	const limit = 100
	other := &contended{limit: limit}
	f := setupOn(t, func(js jetstream.JetStream) jetstream.JetStream {
		other.JetStream = js
		return other
	})
	ctx := context.Background()
	msg := f.confirmed(t, "o-busy")
	f.pending(t, msg)

	err := deliver(ctx, f.app, msg)
	if n := other.writes.Load(); n >= limit {
		t.Fatalf("Handle = %v after the other writer won %d times in a row: it would have gone on for as long as that writer does", err, n)
	}
	if !errors.Is(err, notification.ErrConflict) || permanent(err) {
		t.Fatalf("Handle = %v, want a retryable ErrConflict", err)
	}
	if got := f.ch.calls(); len(got) != 0 {
		t.Fatalf("channel calls = %+v, want none before the record counts the attempt", got)
	}
}
