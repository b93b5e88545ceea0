// Package consumer holds the inventory's JetStream handlers: it reads the
// order saga's events from ORDERS and reserves, releases or commits stock.
//
// Every handler writes state first (compare-and-set, atomic where several
// records change together) and publishes its event second; a redelivered
// or concurrently delivered message finds the state already changed and
// only re-publishes the event, which the create-once publisher turns into a
// no-op if it was sent before.
package consumer

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"go.uber.org/zap"

	"github.com/eventshop/inventory-service/internal/stock"
	"github.com/eventshop/shared/events"
	jsconsumer "github.com/eventshop/shared/platform/consumer"
	"github.com/eventshop/shared/platform/logging"
	"github.com/eventshop/shared/platform/trace"
)

// Durable is the name of the inventory's consumer on ORDERS.
const Durable = "inventory-orders"

// retry is the redelivery schedule of a failed orders event. Its transient
// failures are NATS writes and compare-and-set conflicts that outlasted
// the in-process CAS retries: NakWithDelay after 0.1-0.2s, doubling up to
// 15-30s (full jitter), until maxDeliver deliveries (CONSUMER_MAX_DELIVER,
// 10 by default: one to one and a half minutes) dead-letter it. Invalid
// events are dead-lettered at once.
var retry = jsconsumer.Backoff{Initial: 200 * time.Millisecond, Max: 30 * time.Second, Multiplier: 2}

// RunnerConfig returns the consumer configuration of the orders handler.
func RunnerConfig(concurrency, maxDeliver int) jsconsumer.Config {
	return jsconsumer.Config{
		Stream:  events.StreamOrders,
		Durable: Durable,
		FilterSubjects: []string{
			events.FilterSubject(events.OrderCreated),
			events.FilterSubject(events.OrderConfirmed),
			events.FilterSubject(events.OrderCancelled),
		},
		Concurrency: concurrency,
		MaxDeliver:  maxDeliver,
		Retry:       retry,
	}
}

// Store is the state the handlers read and write.
type Store interface {
	// CachedItem may answer from this process's last known version: fine
	// for compare-and-set writes, not for decisions that write nothing.
	CachedItem(ctx context.Context, sku string) (stock.Item, uint64, error)
	Forget(skus ...string)
	Reservation(ctx context.Context, orderID string) (stock.Reservation, uint64, error)
	CreateReservation(ctx context.Context, r stock.Reservation) error
	Apply(ctx context.Context, items []stock.Versioned[stock.Item], r stock.Versioned[stock.Reservation]) error
}

// Publisher publishes the inventory's events create-once.
type Publisher interface {
	Publish(ctx context.Context, t events.Type, orderID, traceparent string, data any) (events.Published, error)
}

// Retrier re-runs an operation that lost a compare-and-set race.
type Retrier interface {
	Do(ctx context.Context, op string, fn func(ctx context.Context) error) error
}

// ErrInvalidOption is returned by an option given a value it cannot use.
var ErrInvalidOption = errors.New("invalid option")

// Option configures Orders.
type Option func(*Orders) error

// WithClock sets the clock records are stamped with.
func WithClock(now func() time.Time) Option {
	return func(o *Orders) error {
		if now == nil {
			return fmt.Errorf("clock: %w", ErrInvalidOption)
		}
		o.now = now
		return nil
	}
}

// WithMetrics counts reservation outcomes in m.
func WithMetrics(m *Metrics) Option {
	return func(o *Orders) error {
		if m == nil {
			return fmt.Errorf("metrics: %w", ErrInvalidOption)
		}
		o.metrics = m
		return nil
	}
}

// Orders handles orders.*.created, orders.*.confirmed and
// orders.*.cancelled.
type Orders struct {
	store   Store
	pub     Publisher
	retry   Retrier
	log     *zap.Logger
	metrics *Metrics
	now     func() time.Time
	locks   *skuLocks
}

// NewOrders returns the orders handler.
func NewOrders(store Store, pub Publisher, retry Retrier, log *zap.Logger, opts ...Option) (*Orders, error) {
	if store == nil || pub == nil || retry == nil || log == nil {
		return nil, fmt.Errorf("store, publisher, retrier and logger are required: %w", ErrInvalidOption)
	}
	o := &Orders{store: store, pub: pub, retry: retry, log: log, now: time.Now, locks: newSKULocks()}
	for _, opt := range opts {
		if err := opt(o); err != nil {
			return nil, err
		}
	}
	return o, nil
}

// Handle is the jsconsumer.Handler of the orders consumer.
func (o *Orders) Handle(ctx context.Context, msg jetstream.Msg) error {
	env, err := events.DefaultRegistry().Parse(msg.Data())
	if err != nil {
		return jsconsumer.Permanent(fmt.Errorf("%s: %w", msg.Subject(), err))
	}
	if want, err := events.Subject(env.Type, env.Subject); err != nil || want != msg.Subject() {
		return jsconsumer.Permanent(fmt.Errorf("%w: %s event about order %s arrived on %s",
			events.ErrInvalidEvent, env.Type, env.Subject, msg.Subject()))
	}
	log := o.log.With(logging.Order(env.Subject, env.TraceID())...)
	switch env.Type {
	case events.OrderCreated:
		var d events.OrderCreatedData
		if err := decode(env, &d, func() string { return d.OrderID }); err != nil {
			return err
		}
		err = o.retry.Do(ctx, "reserve", func(ctx context.Context) error { return o.created(ctx, log, env, d) })
	case events.OrderCancelled:
		var d events.OrderCancelledData
		if err := decode(env, &d, func() string { return d.OrderID }); err != nil {
			return err
		}
		err = o.retry.Do(ctx, "release", func(ctx context.Context) error { return o.cancelled(ctx, log, env, d) })
	case events.OrderConfirmed:
		var d events.OrderConfirmedData
		if err := decode(env, &d, func() string { return d.OrderID }); err != nil {
			return err
		}
		err = o.retry.Do(ctx, "commit", func(ctx context.Context) error { return o.confirmed(ctx, log, env, d) })
	default:
		return jsconsumer.Permanent(fmt.Errorf("%w: the inventory does not handle %s", events.ErrUnknownType, env.Type))
	}
	if errors.Is(err, stock.ErrInvariant) || errors.Is(err, stock.ErrInvalidTransition) {
		// Redelivery cannot repair the state or the saga: dead-letter it
		// with the reason for an operator.
		return jsconsumer.Permanent(err)
	}
	return err
}

// decode decodes the payload into d and checks that it is about the
// envelope's order (the order id the payload names, via orderID).
func decode(env events.Envelope, d any, orderID func() string) error {
	if err := env.DecodeData(d); err != nil {
		return jsconsumer.Permanent(err)
	}
	if id := orderID(); id != env.Subject {
		return jsconsumer.Permanent(fmt.Errorf("%w: %s data is about order %q, envelope about %q",
			events.ErrInvalidEvent, env.Type, id, env.Subject))
	}
	return nil
}

// created reserves the order's lines all-or-nothing, or records why not.
func (o *Orders) created(ctx context.Context, log *zap.Logger, env events.Envelope, d events.OrderCreatedData) error {
	r, _, err := o.store.Reservation(ctx, d.OrderID)
	switch {
	case err == nil:
		return o.replayDecision(ctx, log, env, r)
	case !errors.Is(err, stock.ErrNoReservation):
		return err
	}
	lines := stock.MergeLines(d.Items)
	skus := make([]string, len(lines))
	for i, l := range lines {
		skus[i] = l.SKU
	}
	unlock := o.locks.lock(skus)
	defer func() { unlock() }() // the publish below runs unlocked: see the explicit unlocks
	catalogue, revs, err := o.items(ctx, skus)
	if err != nil {
		return err
	}
	dec := stock.Decide(lines, catalogue)
	if !dec.Accepted {
		// A rejection writes nothing to the items, so no compare-and-set
		// would catch a stale cached version: decide again on fresh reads.
		o.store.Forget(skus...)
		if catalogue, revs, err = o.items(ctx, skus); err != nil {
			return err
		}
		dec = stock.Decide(lines, catalogue)
	}
	now := o.now()
	res := dec.Reservation(d.OrderID, env.TraceParent, now)
	if !dec.Accepted {
		// Record the decision before announcing it, so a redelivery
		// repeats it instead of reserving stock that arrived meanwhile.
		if err := o.store.CreateReservation(ctx, res); err != nil {
			return err // a conflict: another delivery decided first; the retry replays its decision
		}
		unlock()
		unlock = func() {}
		o.metrics.outcome(stock.StatusRejected)
		log.Info("order rejected", zap.String("reason", res.Reason), zap.String("sku", res.SKU), zap.String("detail", res.Detail))
		return o.publishRejected(ctx, env, res)
	}
	updated, err := dec.Reserve(catalogue, now)
	if err != nil {
		return err
	}
	writes := make([]stock.Versioned[stock.Item], len(updated))
	for i, it := range updated {
		writes[i] = stock.Versioned[stock.Item]{Value: it, Revision: revs[it.SKU]}
	}
	// One atomic batch: every SKU at the revision read, and the
	// reservation only if none exists. Any concurrent change to any of
	// them and nothing is written; the retry decides again on fresh stock.
	if err := o.store.Apply(ctx, writes, stock.Versioned[stock.Reservation]{Value: res}); err != nil {
		return err
	}
	unlock()
	unlock = func() {}
	o.metrics.outcome(stock.StatusReserved)
	log.Info("order reserved", zap.Int("lines", len(res.Lines)), zap.Int64("total_cents", res.TotalCents), zap.String("currency", res.Currency))
	return o.publishReserved(ctx, env, res)
}

// items reads the items of skus (from the cache where it has them) with
// their revisions; unknown SKUs are left out for Decide to reject.
func (o *Orders) items(ctx context.Context, skus []string) (map[string]stock.Item, map[string]uint64, error) {
	catalogue := make(map[string]stock.Item, len(skus))
	revs := make(map[string]uint64, len(skus))
	for _, sku := range skus {
		it, rev, err := o.store.CachedItem(ctx, sku)
		if errors.Is(err, stock.ErrUnknownSKU) {
			continue
		}
		if err != nil {
			return nil, nil, err
		}
		catalogue[sku], revs[sku] = it, rev
	}
	return catalogue, revs, nil
}

// replayDecision re-publishes the event of a decision already taken.
func (o *Orders) replayDecision(ctx context.Context, log *zap.Logger, env events.Envelope, r stock.Reservation) error {
	switch r.Status {
	case stock.StatusReserved:
		return o.publishReserved(ctx, env, r)
	case stock.StatusRejected:
		return o.publishRejected(ctx, env, r)
	default:
		// void: cancelled before it was seen, nothing to announce.
		// released/committed: the order moved on; announcing a reservation
		// now could only restart a saga that has ended.
		log.Debug("created event for a settled order ignored", zap.String("status", string(r.Status)))
		return nil
	}
}

// cancelled gives a reserved order's units back, or makes sure an order
// cancelled before it was seen never reserves.
func (o *Orders) cancelled(ctx context.Context, log *zap.Logger, env events.Envelope, d events.OrderCancelledData) error {
	r, rev, err := o.store.Reservation(ctx, d.OrderID)
	if errors.Is(err, stock.ErrNoReservation) {
		if err := o.store.CreateReservation(ctx, stock.Void(d.OrderID, env.TraceParent, o.now())); err != nil {
			return err // a conflict: it was reserved meanwhile; the retry releases it
		}
		o.metrics.outcome(stock.StatusVoid)
		log.Info("order cancelled before it was seen; voided", zap.String("reason", d.Reason))
		return nil
	}
	if err != nil {
		return err
	}
	switch r.Status {
	case stock.StatusReserved:
		if err := o.settle(ctx, r, rev, stock.Reservation.Release); err != nil {
			return err
		}
		o.metrics.outcome(stock.StatusReleased)
		log.Info("reservation released", zap.String("reason", d.Reason))
		return o.publishReleased(ctx, env, r)
	case stock.StatusReleased:
		return o.publishReleased(ctx, env, r)
	case stock.StatusCommitted:
		log.Warn("cancel of a committed order ignored: its units are sold")
		return nil
	default: // rejected or void: nothing was reserved
		return nil
	}
}

// confirmed turns a reserved order's units into sold ones.
func (o *Orders) confirmed(ctx context.Context, log *zap.Logger, env events.Envelope, d events.OrderConfirmedData) error {
	r, rev, err := o.store.Reservation(ctx, d.OrderID)
	if err != nil {
		// No reservation: the confirmation overtook its own order (it
		// cannot be paid without one); retry, and dead-letter if it never
		// shows up.
		return err
	}
	switch r.Status {
	case stock.StatusReserved:
		if err := o.settle(ctx, r, rev, stock.Reservation.Commit); err != nil {
			return err
		}
		o.metrics.outcome(stock.StatusCommitted)
		log.Info("reservation committed")
		return o.publishCommitted(ctx, env, r)
	case stock.StatusCommitted:
		return o.publishCommitted(ctx, env, r)
	default:
		return fmt.Errorf("order %s confirmed but its reservation is %s: %w", r.OrderID, r.Status, stock.ErrInvalidTransition)
	}
}

type transition func(stock.Reservation, map[string]stock.Item, time.Time) (stock.Reservation, []stock.Item, error)

// settle applies a transition of a reserved order (release or commit) to
// the reservation and its SKUs in one atomic batch.
func (o *Orders) settle(ctx context.Context, r stock.Reservation, rev uint64, next transition) error {
	skus := make([]string, len(r.Lines))
	for i, l := range r.Lines {
		skus[i] = l.SKU
	}
	defer o.locks.lock(skus)()
	catalogue, revs, err := o.items(ctx, skus) // a vanished SKU is reported by the transition as an invariant breach
	if err != nil {
		return err
	}
	nr, updated, err := next(r, catalogue, o.now())
	if err != nil {
		return err
	}
	writes := make([]stock.Versioned[stock.Item], len(updated))
	for i, it := range updated {
		writes[i] = stock.Versioned[stock.Item]{Value: it, Revision: revs[it.SKU]}
	}
	return o.store.Apply(ctx, writes, stock.Versioned[stock.Reservation]{Value: nr, Revision: rev})
}

func (o *Orders) publishReserved(ctx context.Context, env events.Envelope, r stock.Reservation) error {
	return o.publish(ctx, env, events.InventoryReserved, r.OrderID, events.InventoryReservedData{
		OrderID: r.OrderID, Lines: r.Lines, TotalCents: r.TotalCents, Currency: r.Currency,
	})
}

func (o *Orders) publishRejected(ctx context.Context, env events.Envelope, r stock.Reservation) error {
	return o.publish(ctx, env, events.InventoryRejected, r.OrderID, events.InventoryRejectedData{
		OrderID: r.OrderID, Reason: r.Reason, SKU: r.SKU, Detail: r.Detail,
	})
}

func (o *Orders) publishReleased(ctx context.Context, env events.Envelope, r stock.Reservation) error {
	return o.publish(ctx, env, events.InventoryReleased, r.OrderID, events.InventoryReleasedData{OrderID: r.OrderID, Lines: r.Items()})
}

func (o *Orders) publishCommitted(ctx context.Context, env events.Envelope, r stock.Reservation) error {
	return o.publish(ctx, env, events.InventoryCommitted, r.OrderID, events.InventoryCommittedData{OrderID: r.OrderID, Lines: r.Items()})
}

// publish sends an event caused by env, in env's trace. A failure is
// transient: the state is already written, so the redelivery re-publishes.
func (o *Orders) publish(ctx context.Context, env events.Envelope, t events.Type, orderID string, data any) error {
	if _, err := o.pub.Publish(ctx, t, orderID, trace.Child(env.TraceParent).String(), data); err != nil {
		if errors.Is(err, events.ErrInvalidEvent) || errors.Is(err, events.ErrInvalidID) {
			return jsconsumer.Permanent(err)
		}
		return fmt.Errorf("publish %s: %w", t, err)
	}
	return nil
}
