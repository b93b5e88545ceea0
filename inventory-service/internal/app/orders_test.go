package app_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"go.uber.org/zap"

	"github.com/eventshop/inventory-service/internal/app"
	"github.com/eventshop/inventory-service/internal/stock"
	"github.com/eventshop/inventory-service/internal/store"
	"github.com/eventshop/shared/events"
	"github.com/eventshop/shared/platform/natstest"
	"github.com/eventshop/shared/platform/trace"
)

var errDead = errors.New("process killed")

// dyingStore is a real store whose process dies after a number of writes:
// the writes before land in NATS, every call after fails.
type dyingStore struct {
	*store.Store
	writesLeft atomic.Int64
}

func (d *dyingStore) write() error {
	if d.writesLeft.Add(-1) < 0 {
		return errDead
	}
	return nil
}

func (d *dyingStore) alive() error {
	if d.writesLeft.Load() < 0 {
		return errDead
	}
	return nil
}

func (d *dyingStore) Item(ctx context.Context, sku string) (stock.Item, uint64, error) {
	if err := d.alive(); err != nil {
		return stock.Item{}, 0, err
	}
	return d.Store.Item(ctx, sku)
}

func (d *dyingStore) Reservation(ctx context.Context, orderID string) (stock.Reservation, uint64, error) {
	if err := d.alive(); err != nil {
		return stock.Reservation{}, 0, err
	}
	return d.Store.Reservation(ctx, orderID)
}

func (d *dyingStore) UpdateItem(ctx context.Context, it stock.Item, rev uint64) (uint64, error) {
	if err := d.write(); err != nil {
		return 0, err
	}
	return d.Store.UpdateItem(ctx, it, rev)
}

func (d *dyingStore) CreateReservation(ctx context.Context, r stock.Reservation) error {
	if err := d.write(); err != nil {
		return err
	}
	return d.Store.CreateReservation(ctx, r)
}

func (d *dyingStore) UpdateReservation(ctx context.Context, r stock.Reservation, rev uint64) (uint64, error) {
	if err := d.write(); err != nil {
		return 0, err
	}
	return d.Store.UpdateReservation(ctx, r, rev)
}

// recorder stands in for the event publisher: it keeps what was announced.
type recorder struct {
	mu  sync.Mutex
	got map[string][]events.Type // by order
}

func (r *recorder) Publish(_ context.Context, t events.Type, orderID, _ string, _ any) (events.Published, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.got == nil {
		r.got = map[string][]events.Type{}
	}
	r.got[orderID] = append(r.got[orderID], t)
	return events.Published{}, nil
}

func (r *recorder) last(orderID string) events.Type {
	r.mu.Lock()
	defer r.mu.Unlock()
	if l := r.got[orderID]; len(l) > 0 {
		return l[len(l)-1]
	}
	return ""
}

// msg is one delivery of an order event: its subject, and the call of the
// app's handler with the envelope and the payload decoded as the consumer
// decodes them.
type msg struct {
	subject string
	deliver func(ctx context.Context, a *app.App) error
}

// instance is one inventory process: the app over its own store.
type instance struct{ *app.App }

// Handle delivers m to the process.
func (p instance) Handle(ctx context.Context, m msg) error { return m.deliver(ctx, p.App) }

// world is one embedded nats-server holding the inventory's bucket.
type world struct {
	t   *testing.T
	js  jetstream.JetStream
	pub *events.Publisher
	rec *recorder
}

func newWorld(t *testing.T) *world {
	t.Helper()
	srv := natstest.Start(t)
	_, js := natstest.Connect(t, srv)
	pub, err := events.NewPublisher(js, "order-service")
	if err != nil {
		t.Fatal(err)
	}
	return &world{t: t, js: js, pub: pub, rec: &recorder{}}
}

// process starts an inventory process: its own store (cache, done marks)
// over the shared bucket. writes < 0 means it never dies.
func (w *world) process(writes int64, opts ...app.Option) (instance, *dyingStore) {
	w.t.Helper()
	s, err := store.Open(context.Background(), w.js, store.Options{})
	if err != nil {
		w.t.Fatal(err)
	}
	d := &dyingStore{Store: s}
	if writes < 0 {
		writes = 1 << 40
	}
	d.writesLeft.Store(writes)
	a, err := app.New(d, w.rec, zap.NewNop(), append([]app.Option{app.WithCASBackoff(time.Millisecond, 20*time.Millisecond), app.WithCASAttempts(50)}, opts...)...)
	if err != nil {
		w.t.Fatal(err)
	}
	return instance{a}, d
}

func (w *world) seed(sku string, available int64) {
	w.t.Helper()
	_, d := w.process(-1)
	if _, err := d.CreateItem(context.Background(), stock.Item{SKU: sku, Name: sku, PriceCents: 100, Currency: "USD", Available: available}); err != nil {
		w.t.Fatal(err)
	}
}

// item is sku as a reader sees it (app.Get): the marks of final orders
// resolved, looked up by a process that knows none of them.
func (w *world) item(sku string) stock.Item {
	w.t.Helper()
	p, _ := w.process(-1)
	it, err := p.Get(context.Background(), sku)
	if err != nil {
		w.t.Fatal(err)
	}
	return it
}

// stored is sku as stored, marks unresolved.
func (w *world) stored(sku string) stock.Item {
	w.t.Helper()
	_, d := w.process(-1)
	it, _, err := d.Item(context.Background(), sku)
	if err != nil {
		w.t.Fatal(err)
	}
	return it
}

// kvWrites returns how many messages the inventory bucket has stored so
// far (its stream's last sequence: every write is one message).
func (w *world) kvWrites() uint64 {
	w.t.Helper()
	s, err := w.js.Stream(context.Background(), "KV_"+store.Bucket)
	if err != nil {
		w.t.Fatal(err)
	}
	info, err := s.Info(context.Background())
	if err != nil {
		w.t.Fatal(err)
	}
	return info.State.LastSeq
}

// legacyReserved stores orderID reserved as the version before KeepsMarks
// left it: each line's units reserved, the record reserved without
// keeps_marks, and the reserve marks of the lines in swept dropped (that
// version dropped them with its next write of the item once the record
// was written).
func (w *world) legacyReserved(orderID string, swept map[string]bool, lines ...events.Item) {
	w.t.Helper()
	ctx := context.Background()
	_, d := w.process(-1)
	r := stock.Reservation{OrderID: orderID, Status: stock.StatusReserved, Currency: "USD", UpdatedAt: time.Now().UTC()}
	for _, l := range lines {
		it, rev, err := d.Item(ctx, l.SKU)
		if err != nil {
			w.t.Fatal(err)
		}
		next, err := it.Apply(orderID, stock.OpReserve, l.Quantity, time.Now())
		if err != nil {
			w.t.Fatal(err)
		}
		if swept[l.SKU] {
			delete(next.Marks, orderID)
		}
		if _, err := d.UpdateItem(ctx, next, rev); err != nil {
			w.t.Fatal(err)
		}
		r.Lines = append(r.Lines, stock.PricedLine{SKU: l.SKU, Name: l.SKU, Quantity: l.Quantity, UnitPriceCents: 100, LineTotalCents: 100 * l.Quantity})
		r.TotalCents += 100 * l.Quantity
	}
	raw, err := json.Marshal(r)
	if err != nil {
		w.t.Fatal(err)
	}
	if strings.Contains(string(raw), "keeps_marks") {
		w.t.Fatalf("a legacy record carries keeps_marks: %s", raw)
	}
	if _, err := d.KeyValue().Create(ctx, "reservation."+orderID, raw); err != nil {
		w.t.Fatal(err)
	}
}

// clock is a test clock the processes of a world share.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock() *clock { return &clock{t: time.Now()} }

func (c *clock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

func (w *world) status(orderID string) stock.Status {
	w.t.Helper()
	_, d := w.process(-1)
	r, _, err := d.Reservation(context.Background(), orderID)
	if errors.Is(err, stock.ErrNoReservation) {
		return ""
	}
	if err != nil {
		w.t.Fatal(err)
	}
	return r.Status
}

// event builds the event as the order service publishes it and decodes
// its envelope as the consumer does.
func (w *world) event(t events.Type, orderID string, data any) (string, events.Envelope) {
	w.t.Helper()
	_, raw, err := w.pub.Build(t, orderID, trace.New().String(), data)
	if err != nil {
		w.t.Fatal(err)
	}
	subject, err := events.Subject(t, orderID)
	if err != nil {
		w.t.Fatal(err)
	}
	env, err := events.Decode(subject, raw)
	if err != nil {
		w.t.Fatal(err)
	}
	return subject, env
}

// deliver is the call of handler with env and its payload, decoded as the
// consumer decodes it.
func deliver[D any](env events.Envelope, handler func(*app.App, context.Context, events.Envelope, D) error) func(context.Context, *app.App) error {
	return func(ctx context.Context, a *app.App) error {
		var d D
		if err := env.DecodeData(&d); err != nil {
			return err
		}
		return handler(a, ctx, env, d)
	}
}

func (w *world) created(orderID string, lines ...events.Item) msg {
	subject, env := w.event(events.OrderCreated, orderID, events.OrderCreatedData{OrderID: orderID, CustomerID: "c-1", Items: lines,
		PaymentToken: "tok_visa", CreatedAt: time.Date(2026, 11, 23, 10, 0, 0, 0, time.UTC)})
	return msg{subject: subject, deliver: deliver(env, (*app.App).OrderCreated)}
}

// confirmed is the order's confirmation, for the total its reservation
// holds (the order service confirms what was reserved and paid).
func (w *world) confirmed(orderID string) msg {
	w.t.Helper()
	_, d := w.process(-1)
	r, _, err := d.Reservation(context.Background(), orderID)
	if err != nil && !errors.Is(err, stock.ErrNoReservation) {
		w.t.Fatal(err)
	}
	subject, env := w.event(events.OrderConfirmed, orderID, events.OrderConfirmedData{OrderID: orderID, CustomerID: "c-1", TotalCents: r.TotalCents, Currency: r.Currency})
	return msg{subject: subject, deliver: deliver(env, (*app.App).OrderConfirmed)}
}

func (w *world) cancelled(orderID string) msg {
	subject, env := w.event(events.OrderCancelled, orderID, events.OrderCancelledData{OrderID: orderID, CustomerID: "c-1", Reason: events.ReasonPaymentDeclined})
	return msg{subject: subject, deliver: deliver(env, (*app.App).OrderCancelled)}
}

func line(sku string, q int64) events.Item { return events.Item{SKU: sku, Quantity: q} }

// counts is an item's available, reserved and sold units.
type counts struct{ available, reserved, sold int64 }

func (w *world) counts(sku string) counts {
	it := w.item(sku)
	return counts{it.Available, it.Reserved, it.Sold}
}

// TestEveryCrashPointRecovers kills the process after each write of a
// handler in turn — after 0 writes, after 1, ... — and redelivers the event
// to a new process. Whatever landed, the end state must be the one a run
// without a crash leaves: no unit reserved, sold or released twice, none
// lost, the record final, the event announced.
func TestEveryCrashPointRecovers(t *testing.T) {
	t.Parallel()
	type scenario struct {
		name   string
		stock  map[string]int64
		setup  func(w *world)       // state stored before anything is handled
		before func(w *world) []msg // handled by a healthy process first
		event  func(w *world) msg
		status stock.Status
		event2 events.Type
		want   map[string]counts
	}
	reserved := func(w *world) []msg { return []msg{w.created("o-1", line("A", 2), line("B", 1))} }
	// An order the version before KeepsMarks reserved: A's mark swept, B's not yet.
	legacy := func(w *world) { w.legacyReserved("o-1", map[string]bool{"A": true}, line("A", 2), line("B", 1)) }
	scenarios := []scenario{
		{name: "reserve one line", stock: map[string]int64{"A": 5},
			event:  func(w *world) msg { return w.created("o-1", line("A", 2)) },
			status: stock.StatusReserved, event2: events.InventoryReserved,
			want: map[string]counts{"A": {3, 2, 0}}},
		{name: "reserve two lines", stock: map[string]int64{"A": 5, "B": 1},
			event:  func(w *world) msg { return w.created("o-1", line("A", 2), line("B", 1)) },
			status: stock.StatusReserved, event2: events.InventoryReserved,
			want: map[string]counts{"A": {3, 2, 0}, "B": {0, 1, 0}}},
		{name: "reject", stock: map[string]int64{"A": 5, "B": 0},
			event:  func(w *world) msg { return w.created("o-1", line("A", 2), line("B", 1)) },
			status: stock.StatusRejected, event2: events.InventoryRejected,
			want: map[string]counts{"A": {5, 0, 0}, "B": {0, 0, 0}}},
		{name: "commit", stock: map[string]int64{"A": 5, "B": 1}, before: reserved,
			event:  func(w *world) msg { return w.confirmed("o-1") },
			status: stock.StatusCommitted, event2: events.InventoryCommitted,
			want: map[string]counts{"A": {3, 0, 2}, "B": {0, 0, 1}}},
		{name: "release", stock: map[string]int64{"A": 5, "B": 1}, before: reserved,
			event:  func(w *world) msg { return w.cancelled("o-1") },
			status: stock.StatusReleased, event2: events.InventoryReleased,
			want: map[string]counts{"A": {5, 0, 0}, "B": {1, 0, 0}}},
		{name: "commit an earlier version's record", stock: map[string]int64{"A": 5, "B": 1}, setup: legacy,
			event:  func(w *world) msg { return w.confirmed("o-1") },
			status: stock.StatusCommitted, event2: events.InventoryCommitted,
			want: map[string]counts{"A": {3, 0, 2}, "B": {0, 0, 1}}},
		{name: "release an earlier version's record", stock: map[string]int64{"A": 5, "B": 1}, setup: legacy,
			event:  func(w *world) msg { return w.cancelled("o-1") },
			status: stock.StatusReleased, event2: events.InventoryReleased,
			want: map[string]counts{"A": {5, 0, 0}, "B": {1, 0, 0}}},
		{name: "void before seen", stock: map[string]int64{"A": 5},
			event:  func(w *world) msg { return w.cancelled("o-1") },
			status: stock.StatusVoid,
			want:   map[string]counts{"A": {5, 0, 0}}},
	}
	for _, sc := range scenarios {
		t.Run(sc.name, func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			for crashAfter := int64(0); ; crashAfter++ {
				w := newWorld(t)
				for sku, n := range sc.stock {
					w.seed(sku, n)
				}
				if sc.setup != nil {
					sc.setup(w)
				}
				healthy, _ := w.process(-1)
				if sc.before != nil {
					for _, m := range sc.before(w) {
						if err := healthy.Handle(ctx, m); err != nil {
							t.Fatal(err)
						}
					}
				}
				m := sc.event(w)
				dying, _ := w.process(crashAfter)
				err := dying.Handle(ctx, m)
				if err == nil {
					// The handler needs no more writes than this: every
					// crash point has been tried.
					if crashAfter == 0 && sc.status != "" && sc.name != "void before seen" {
						t.Fatal("a handler that changes state finished without a write")
					}
					break
				}
				if !errors.Is(err, errDead) {
					t.Fatalf("crash after %d writes: handler err = %v, want the crash", crashAfter, err)
				}
				next, _ := w.process(-1)
				if err := next.Handle(ctx, m); err != nil {
					t.Fatalf("crash after %d writes: redelivery err = %v", crashAfter, err)
				}
				// And once more: a duplicate after recovery changes nothing.
				if err := next.Handle(ctx, m); err != nil {
					t.Fatalf("crash after %d writes: duplicate err = %v", crashAfter, err)
				}
				if got := w.status("o-1"); got != sc.status {
					t.Errorf("crash after %d writes: record %s, want %s", crashAfter, got, sc.status)
				}
				if sc.event2 != "" && w.rec.last("o-1") != sc.event2 {
					t.Errorf("crash after %d writes: last event %q, want %s", crashAfter, w.rec.last("o-1"), sc.event2)
				}
				for sku, want := range sc.want {
					if got := w.counts(sku); got != want {
						t.Errorf("crash after %d writes: %s = %+v, want %+v", crashAfter, sku, got, want)
					}
				}
				if crashAfter > 10 {
					t.Fatal("the handler never finished")
				}
			}
		})
	}
}

// TestInterruptedReservationIsUndoneWhenTheRestRunsOut: a process reserved
// the first line and died; before the redelivery another order took the
// second line's last unit. The order is rejected and the first line's units
// come back.
func TestInterruptedReservationIsUndoneWhenTheRestRunsOut(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	w := newWorld(t)
	w.seed("A", 5)
	w.seed("B", 1)
	m := w.created("o-1", line("A", 2), line("B", 1))
	dying, _ := w.process(1)
	if err := dying.Handle(ctx, m); !errors.Is(err, errDead) {
		t.Fatalf("err = %v, want the crash", err)
	}
	if got := w.counts("A"); got != (counts{3, 2, 0}) {
		t.Fatalf("precondition: A = %+v, want 2 reserved by the dead process", got)
	}
	other, _ := w.process(-1)
	if err := other.Handle(ctx, w.created("o-2", line("B", 1))); err != nil {
		t.Fatal(err)
	}
	next, _ := w.process(-1)
	if err := next.Handle(ctx, m); err != nil {
		t.Fatal(err)
	}
	if got := w.status("o-1"); got != stock.StatusRejected {
		t.Fatalf("o-1 is %s, want rejected", got)
	}
	if a, b := w.counts("A"), w.counts("B"); a != (counts{5, 0, 0}) || b != (counts{0, 1, 0}) {
		t.Fatalf("A = %+v, B = %+v; want A whole again and B held by o-2", a, b)
	}
	if it := w.item("A"); len(it.Marks) != 0 {
		t.Fatalf("A keeps marks %+v", it.Marks)
	}
}

// TestCancelThatWinsAgainstAnInterruptedReservation: a process reserved an
// order's line and died before recording it; the cancel arrives first and
// voids the order; the created event's redelivery must give the units back.
func TestCancelThatWinsAgainstAnInterruptedReservation(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	w := newWorld(t)
	w.seed("A", 5)
	m := w.created("o-1", line("A", 2))
	dying, _ := w.process(1)
	if err := dying.Handle(ctx, m); !errors.Is(err, errDead) {
		t.Fatalf("err = %v, want the crash", err)
	}
	p, _ := w.process(-1)
	if err := p.Handle(ctx, w.cancelled("o-1")); err != nil {
		t.Fatal(err)
	}
	if err := p.Handle(ctx, m); err != nil {
		t.Fatal(err)
	}
	if got := w.status("o-1"); got != stock.StatusVoid {
		t.Fatalf("o-1 is %s, want void", got)
	}
	if got := w.counts("A"); got != (counts{5, 0, 0}) {
		t.Fatalf("A = %+v, want every unit back", got)
	}
	if w.rec.last("o-1") != "" {
		t.Fatalf("a voided order was announced: %v", w.rec.got["o-1"])
	}
}

// TestDuplicateDeliveriesToTwoProcesses delivers every event of many
// orders to two processes at once (as after an ack timeout), on a SKU with
// less stock than is ordered. Each order must be decided once, and every
// unit counted once: reserved = held by reserved records, sold = committed.
func TestDuplicateDeliveriesToTwoProcesses(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	w := newWorld(t)
	const units, orders = 40, 60
	w.seed("HOT", units)
	w.seed("COLD", 1000)
	p1, _ := w.process(-1)
	p2, _ := w.process(-1)
	both := func(m msg) error {
		var wg sync.WaitGroup
		errs := make([]error, 2)
		for i, p := range []instance{p1, p2} {
			wg.Add(1)
			go func() {
				defer wg.Done()
				errs[i] = p.Handle(ctx, m)
			}()
		}
		wg.Wait()
		return errors.Join(errs...)
	}
	// Every order at once, each to both processes; then every reserved one
	// settled at once, each to both.
	run := func(stage string, event func(i int, id string) (msg, bool)) {
		var wg sync.WaitGroup
		errs := make(chan error, orders)
		for i := range orders {
			id := fmt.Sprintf("o-%02d", i)
			m, ok := event(i, id)
			if !ok {
				continue
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				if err := both(m); err != nil {
					errs <- fmt.Errorf("%s %s: %w", id, stage, err)
				}
			}()
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Error(err)
		}
	}
	run("created", func(i int, id string) (msg, bool) {
		if i%3 == 0 {
			return w.created(id, line("HOT", 1), line("COLD", 2)), true
		}
		return w.created(id, line("HOT", 1)), true
	})
	var reserved, rejected int
	for i := range orders {
		switch st := w.status(fmt.Sprintf("o-%02d", i)); st {
		case stock.StatusReserved:
			reserved++
		case stock.StatusRejected:
			rejected++
		default:
			t.Errorf("o-%02d is %s", i, st)
		}
	}
	if reserved != units || rejected != orders-units {
		t.Fatalf("%d reserved, %d rejected; want %d and %d", reserved, rejected, units, orders-units)
	}
	if got := w.counts("HOT"); got != (counts{0, units, 0}) {
		t.Fatalf("HOT = %+v, want every unit reserved once", got)
	}
	run("settle", func(i int, id string) (msg, bool) {
		if w.status(id) != stock.StatusReserved {
			return msg{}, false
		}
		if i%2 == 0 {
			return w.cancelled(id), true
		}
		return w.confirmed(id), true
	})
	sold := map[string]int64{}
	for i := range orders {
		id := fmt.Sprintf("o-%02d", i)
		switch st := w.status(id); st {
		case stock.StatusCommitted:
			sold["HOT"]++
			if i%3 == 0 {
				sold["COLD"] += 2
			}
		case stock.StatusReleased, stock.StatusRejected:
		default:
			t.Errorf("%s is %s after settling", id, st)
		}
	}
	for sku, total := range map[string]int64{"HOT": units, "COLD": 1000} {
		got := w.counts(sku)
		if got.reserved != 0 || got.sold != sold[sku] || got.available+got.sold != total {
			t.Errorf("%s = %+v, want %d sold and the rest available", sku, got, sold[sku])
		}
	}
}

// TestStaleMarksAreResolvedByLaterWrites: marks whose orders ended without
// the writing process knowing are resolved by its next write of the SKU
// once they are older than the stale mark age: a commit mark the earlier
// version left (its process died before dropping it) just goes; units an
// attempt whose redelivery never came (dead-lettered) reserved for an order
// since voided come back; an order another instance committed is sold.
// Younger marks, and marks of orders not final, stay.
func TestStaleMarksAreResolvedByLaterWrites(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	w := newWorld(t)
	c := newClock()
	w.seed("A", 10)
	proc := func() instance {
		o, _ := w.process(-1, app.WithClock(c.now))
		return o
	}
	handle := func(o instance, m msg) {
		t.Helper()
		if err := o.Handle(ctx, m); err != nil {
			t.Fatal(err)
		}
	}
	// o-1: reserved by the earlier version, committed by a process that died.
	w.legacyReserved("o-1", map[string]bool{"A": true}, line("A", 2))
	handle(proc(), w.confirmed("o-1"))
	// o-2: an attempt that died after reserving, then voided.
	dying, _ := w.process(1, app.WithClock(c.now))
	if err := dying.Handle(ctx, w.created("o-2", line("A", 3))); !errors.Is(err, errDead) {
		t.Fatalf("err = %v, want the crash", err)
	}
	handle(proc(), w.cancelled("o-2"))
	// o-3: reserved by one instance, committed by another.
	handle(proc(), w.created("o-3", line("A", 1)))
	handle(proc(), w.confirmed("o-3"))

	it := w.stored("A")
	if !it.Marked("o-1", stock.OpCommit) || !it.Marked("o-2", stock.OpReserve) || !it.Marked("o-3", stock.OpReserve) ||
		(counts{it.Available, it.Reserved, it.Sold}) != (counts{4, 4, 2}) {
		t.Fatalf("precondition: stored A = %+v", it)
	}
	if got := w.counts("A"); got != (counts{7, 0, 3}) {
		t.Fatalf("viewed A = %+v, want o-2's units available and o-3's sold", got)
	}

	// Young marks are left alone.
	handle(proc(), w.created("o-4", line("A", 1)))
	if it := w.stored("A"); len(it.Marks) != 4 || it.Reserved != 5 {
		t.Fatalf("young marks resolved: stored A = %+v", it)
	}

	c.advance(10 * time.Second)
	handle(proc(), w.created("o-5", line("A", 1)))
	it = w.stored("A")
	if len(it.Marks) != 2 || !it.Marked("o-4", stock.OpReserve) || !it.Marked("o-5", stock.OpReserve) {
		t.Errorf("stored A keeps marks %+v, want o-4's and o-5's only", it.Marks)
	}
	// o-1 and o-3 bought three; o-4 and o-5 hold one each; o-2's three are back.
	if got := (counts{it.Available, it.Reserved, it.Sold}); got != (counts{5, 2, 3}) {
		t.Fatalf("stored A = %+v, want 5 available, 2 reserved, 3 sold", got)
	}
}

// TestMarksOfAnotherInstanceDoNotPileUp: one instance reserves many orders
// that another confirms; the first never learns of them, yet its writes of
// the SKU resolve them all, a few per write, so the item never carries the
// history of its orders.
func TestMarksOfAnotherInstanceDoNotPileUp(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	w := newWorld(t)
	c := newClock()
	w.seed("A", 100)
	p1, _ := w.process(-1, app.WithClock(c.now))
	p2, _ := w.process(-1, app.WithClock(c.now))
	const orders = 20
	for i := range orders {
		id := fmt.Sprintf("o-%02d", i)
		if err := p1.Handle(ctx, w.created(id, line("A", 1))); err != nil {
			t.Fatal(err)
		}
		if err := p2.Handle(ctx, w.confirmed(id)); err != nil {
			t.Fatal(err)
		}
	}
	if it := w.stored("A"); len(it.Marks) != orders || it.Reserved != orders {
		t.Fatalf("precondition: stored A = %+v", it)
	}
	c.advance(10 * time.Second)
	for i := range orders {
		if err := p1.Handle(ctx, w.created(fmt.Sprintf("n-%02d", i), line("A", 1))); err != nil {
			t.Fatal(err)
		}
	}
	it := w.stored("A")
	if len(it.Marks) != orders || it.Sold != orders || it.Reserved != orders || it.Available != 100-2*orders {
		t.Fatalf("stored A = %d available, %d reserved, %d sold with %d marks; want the first %d sold and only the new orders' marks",
			it.Available, it.Reserved, it.Sold, len(it.Marks), orders)
	}
	for id := range it.Marks {
		if !strings.HasPrefix(id, "n-") {
			t.Errorf("mark of %s kept", id)
		}
	}
}

// TestCommitWritesOneMessage counts the inventory bucket's stored messages
// per step of an order: a commit is one compare-and-set of the record, no
// item write; a reservation writes each SKU and the record; a release
// writes the record and gives each SKU's units back at once.
func TestCommitWritesOneMessage(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name                     string
		lines                    []events.Item
		reserve, commit, release uint64
	}{
		{name: "one sku", lines: []events.Item{line("A", 2)}, reserve: 2, commit: 1, release: 2},
		{name: "two skus", lines: []events.Item{line("A", 2), line("B", 1)}, reserve: 3, commit: 1, release: 3},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			w := newWorld(t)
			w.seed("A", 10)
			w.seed("B", 10)
			p, _ := w.process(-1)
			step := func(m msg) uint64 {
				t.Helper()
				before := w.kvWrites()
				if err := p.Handle(ctx, m); err != nil {
					t.Fatal(err)
				}
				return w.kvWrites() - before
			}
			if n := step(w.created("o-1", tt.lines...)); n != tt.reserve {
				t.Errorf("reserve wrote %d messages, want %d", n, tt.reserve)
			}
			if n := step(w.confirmed("o-1")); n != tt.commit {
				t.Errorf("commit wrote %d messages, want %d", n, tt.commit)
			}
			if n := step(w.created("o-2", tt.lines...)); n != tt.reserve {
				t.Errorf("second reserve wrote %d messages, want %d (resolving o-1 rides on it)", n, tt.reserve)
			}
			if n := step(w.cancelled("o-2")); n != tt.release {
				t.Errorf("release wrote %d messages, want %d", n, tt.release)
			}
			if got := w.status("o-1"); got != stock.StatusCommitted {
				t.Fatalf("o-1 is %s", got)
			}
			for _, l := range tt.lines {
				want := counts{10 - l.Quantity, 0, l.Quantity}
				if got := w.counts(l.SKU); got != want {
					t.Errorf("%s viewed = %+v, want %+v", l.SKU, got, want)
				}
				// The stored item too: o-1 resolved by o-2's reservation,
				// o-2's units given back by its release.
				if it := w.stored(l.SKU); (counts{it.Available, it.Reserved, it.Sold}) != want || len(it.Marks) != 0 {
					t.Errorf("%s stored = %+v, want %+v and no marks", l.SKU, it, want)
				}
			}
		})
	}
}

// TestReleasedUnitsAreForSaleAtOnce: the units of a cancelled order are
// back before the cancellation is acknowledged, for the next order on any
// instance, without waiting for another write of the SKU.
func TestReleasedUnitsAreForSaleAtOnce(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	w := newWorld(t)
	w.seed("A", 2)
	w.seed("B", 1)
	p1, _ := w.process(-1)
	p2, _ := w.process(-1)
	if err := p1.Handle(ctx, w.created("o-1", line("A", 2), line("B", 1))); err != nil {
		t.Fatal(err)
	}
	if err := p2.Handle(ctx, w.cancelled("o-1")); err != nil {
		t.Fatal(err)
	}
	for _, sku := range []string{"A", "B"} {
		if it := w.stored(sku); it.Reserved != 0 || it.Sold != 0 || len(it.Marks) != 0 {
			t.Fatalf("stored %s = %+v, want every unit available", sku, it)
		}
	}
	// p1 remembers A and B with o-1's units reserved: it must still sell them.
	if err := p1.Handle(ctx, w.created("o-2", line("A", 2), line("B", 1))); err != nil {
		t.Fatal(err)
	}
	if got := w.status("o-2"); got != stock.StatusReserved {
		t.Fatalf("o-2 is %s, want reserved with o-1's units", got)
	}
	if a, b := w.counts("A"), w.counts("B"); a != (counts{0, 2, 0}) || b != (counts{0, 1, 0}) {
		t.Fatalf("A = %+v, B = %+v", a, b)
	}
}

// TestConfirmAndCancelRaceToOneOutcome delivers the confirmation and the
// cancellation of each order at once, each to two processes: every order
// ends committed or released, never both, its units sold or available
// accordingly, and the loser is refused as an illegal transition. Orders
// of the earlier version race the same way.
func TestConfirmAndCancelRaceToOneOutcome(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	w := newWorld(t)
	const orders, total = 24, 100
	w.seed("A", total)
	w.seed("B", total)
	p1, _ := w.process(-1)
	p2, _ := w.process(-1)
	ids := make([]string, orders)
	for i := range orders {
		ids[i] = fmt.Sprintf("o-%02d", i)
		if i%4 == 3 {
			w.legacyReserved(ids[i], map[string]bool{"A": i%8 == 3}, line("A", 2), line("B", 1))
			continue
		}
		if err := p1.Handle(ctx, w.created(ids[i], line("A", 2), line("B", 1))); err != nil {
			t.Fatal(err)
		}
	}
	var wg sync.WaitGroup
	errs := make(chan error, 4*orders)
	for _, id := range ids {
		for _, m := range []msg{w.confirmed(id), w.cancelled(id)} {
			for _, p := range []instance{p1, p2} {
				wg.Add(1)
				go func() {
					defer wg.Done()
					err := p.Handle(ctx, m)
					if err != nil && !errors.Is(err, stock.ErrInvalidTransition) {
						errs <- fmt.Errorf("%s %s: %w", id, m.subject, err)
					}
				}()
			}
		}
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	var committed int64
	for _, id := range ids {
		var outcomes []events.Type
		for _, e := range w.rec.got[id] {
			if e == events.InventoryCommitted || e == events.InventoryReleased {
				outcomes = append(outcomes, e)
			}
		}
		switch st := w.status(id); st {
		case stock.StatusCommitted:
			committed++
			for _, e := range outcomes {
				if e != events.InventoryCommitted {
					t.Errorf("%s committed but announced %v", id, outcomes)
				}
			}
		case stock.StatusReleased:
			for _, e := range outcomes {
				if e != events.InventoryReleased {
					t.Errorf("%s released but announced %v", id, outcomes)
				}
			}
		default:
			t.Errorf("%s is %s", id, st)
		}
		if len(outcomes) == 0 {
			t.Errorf("%s: no outcome announced", id)
		}
	}
	t.Logf("%d of %d orders committed, the rest released", committed, orders)
	for sku, q := range map[string]int64{"A": 2, "B": 1} {
		if got, want := w.counts(sku), (counts{total - committed*q, 0, committed * q}); got != want {
			t.Errorf("%s = %+v, want %+v (%d orders committed)", sku, got, want, committed)
		}
		if it := w.stored(sku); it.Total() != total || it.Available < 0 || it.Reserved < 0 {
			t.Errorf("stored %s = %+v, want %d units in all", sku, it, total)
		}
	}
}

// TestStaleCacheNeverDeadLettersASettle: a process remembers a SKU from
// before another instance reserved an order of the earlier version on it;
// confirming that order (claim, then each SKU) from the stale version
// looks like selling units nobody reserved. It is a conflict, not an
// invariant breach: the commit re-reads and succeeds.
func TestStaleCacheNeverDeadLettersASettle(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	w := newWorld(t)
	w.seed("A", 5)
	p1, _ := w.process(-1)
	if err := p1.Handle(ctx, w.created("o-0", line("A", 1))); err != nil {
		t.Fatal(err)
	}
	// Another instance, of the earlier version, reserves o-1.
	w.legacyReserved("o-1", map[string]bool{"A": true}, line("A", 2))
	// p1 remembers A with 1 reserved; o-1's 2 units are not in its version.
	if err := p1.Handle(ctx, w.confirmed("o-1")); err != nil {
		t.Fatalf("confirm from a stale version: %v", err)
	}
	if got := w.status("o-1"); got != stock.StatusCommitted {
		t.Fatalf("o-1 is %s, want committed", got)
	}
	if got := w.counts("A"); got != (counts{2, 1, 2}) {
		t.Fatalf("A = %+v, want 2 available, o-0's 1 reserved, o-1's 2 sold", got)
	}
}
