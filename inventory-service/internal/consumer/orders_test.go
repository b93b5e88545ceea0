package consumer_test

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

	"github.com/eventshop/inventory-service/internal/cas"
	"github.com/eventshop/inventory-service/internal/consumer"
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

func (d *dyingStore) CachedItem(ctx context.Context, sku string) (stock.Item, uint64, error) {
	if err := d.alive(); err != nil {
		return stock.Item{}, 0, err
	}
	return d.Store.CachedItem(ctx, sku)
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

// msg is the part of a JetStream message the handler reads.
type msg struct {
	jetstream.Msg
	subject string
	data    []byte
}

func (m msg) Subject() string { return m.subject }
func (m msg) Data() []byte    { return m.data }

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
func (w *world) process(writes int64, opts ...consumer.Option) (*consumer.Orders, *dyingStore) {
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
	retry, err := cas.New(nil, cas.WithBackoff(time.Millisecond, 20*time.Millisecond), cas.WithAttempts(50))
	if err != nil {
		w.t.Fatal(err)
	}
	o, err := consumer.NewOrders(d, w.rec, retry, zap.NewNop(), opts...)
	if err != nil {
		w.t.Fatal(err)
	}
	return o, d
}

func (w *world) seed(sku string, available int64) {
	w.t.Helper()
	_, d := w.process(-1)
	if _, err := d.CreateItem(context.Background(), stock.Item{SKU: sku, Name: sku, PriceCents: 100, Currency: "USD", Available: available}); err != nil {
		w.t.Fatal(err)
	}
}

func (w *world) item(sku string) stock.Item {
	w.t.Helper()
	_, d := w.process(-1)
	it, _, err := d.Item(context.Background(), sku)
	if err != nil {
		w.t.Fatal(err)
	}
	return it
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

func (w *world) event(t events.Type, orderID string, data any) msg {
	w.t.Helper()
	_, raw, err := w.pub.Build(t, orderID, trace.New().String(), data)
	if err != nil {
		w.t.Fatal(err)
	}
	subject, err := events.Subject(t, orderID)
	if err != nil {
		w.t.Fatal(err)
	}
	return msg{subject: subject, data: raw}
}

func (w *world) created(orderID string, lines ...events.Item) msg {
	return w.event(events.OrderCreated, orderID, events.OrderCreatedData{OrderID: orderID, CustomerID: "c-1", Items: lines,
		PaymentToken: "tok_visa", CreatedAt: time.Date(2026, 11, 23, 10, 0, 0, 0, time.UTC)})
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
	return w.event(events.OrderConfirmed, orderID, events.OrderConfirmedData{OrderID: orderID, CustomerID: "c-1", TotalCents: r.TotalCents, Currency: r.Currency})
}

func (w *world) cancelled(orderID string) msg {
	return w.event(events.OrderCancelled, orderID, events.OrderCancelledData{OrderID: orderID, CustomerID: "c-1", Reason: events.ReasonPaymentDeclined})
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
		before func(w *world) []msg // handled by a healthy process first
		event  func(w *world) msg
		status stock.Status
		event2 events.Type
		want   map[string]counts
	}
	reserved := func(w *world) []msg { return []msg{w.created("o-1", line("A", 2), line("B", 1))} }
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
		for i, p := range []*consumer.Orders{p1, p2} {
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

// TestStaleMarksOfDeadProcessesAreTidied: a process that finished an order
// and died leaves its mark on the SKU; an attempt whose redelivery never
// came (dead-lettered) leaves units reserved for an order that was voided.
// Once old enough, the next write of the SKU lets the first go and gives
// the second's units back.
func TestStaleMarksOfDeadProcessesAreTidied(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	w := newWorld(t)
	w.seed("A", 10)
	gone, _ := w.process(-1)
	if err := gone.Handle(ctx, w.created("o-1", line("A", 2))); err != nil {
		t.Fatal(err)
	}
	if err := gone.Handle(ctx, w.confirmed("o-1")); err != nil {
		t.Fatal(err)
	}
	dying, _ := w.process(1)
	if err := dying.Handle(ctx, w.created("o-2", line("A", 3))); !errors.Is(err, errDead) {
		t.Fatalf("err = %v, want the crash", err)
	}
	p, _ := w.process(-1)
	if err := p.Handle(ctx, w.cancelled("o-2")); err != nil {
		t.Fatal(err)
	}
	it := w.item("A")
	if !it.Marked("o-1", stock.OpCommit) || !it.Marked("o-2", stock.OpReserve) || it.Reserved != 3 {
		t.Fatalf("precondition: A = %+v, want o-1's commit mark and o-2's 3 units held", it)
	}

	// Young marks are left alone.
	young, _ := w.process(-1)
	if err := young.Handle(ctx, w.created("o-3", line("A", 1))); err != nil {
		t.Fatal(err)
	}
	if it := w.item("A"); !it.Marked("o-1", stock.OpCommit) || it.Reserved != 4 {
		t.Fatalf("young marks tidied: A = %+v", it)
	}

	later := func() time.Time { return time.Now().Add(10 * time.Minute) }
	tidier, _ := w.process(-1, consumer.WithClock(later))
	if err := tidier.Handle(ctx, w.created("o-4", line("A", 1))); err != nil {
		t.Fatal(err)
	}
	it = w.item("A")
	if _, ok := it.Marks["o-1"]; ok {
		t.Errorf("o-1's stale commit mark kept: %+v", it.Marks)
	}
	if _, ok := it.Marks["o-2"]; ok {
		t.Errorf("o-2's stale reservation kept: %+v", it.Marks)
	}
	// o-3 and o-4 hold one unit each, o-1 bought two; o-2's three are back.
	if got := w.counts("A"); got != (counts{6, 2, 2}) {
		t.Fatalf("A = %+v, want 6 available, 2 reserved, 2 sold", got)
	}
}

// TestStaleCacheNeverDeadLettersASettle: a process remembers a SKU from
// before another instance reserved an order on it; confirming that order
// from the stale version looks like selling units nobody reserved. It is a
// conflict, not an invariant breach: the commit re-reads and succeeds.
func TestStaleCacheNeverDeadLettersASettle(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	w := newWorld(t)
	w.seed("A", 5)
	p1, _ := w.process(-1)
	if err := p1.Handle(ctx, w.created("o-0", line("A", 1))); err != nil {
		t.Fatal(err)
	}
	p2, _ := w.process(-1) // another instance
	if err := p2.Handle(ctx, w.created("o-1", line("A", 2))); err != nil {
		t.Fatal(err)
	}
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
