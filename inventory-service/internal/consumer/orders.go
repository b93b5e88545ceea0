// Package consumer holds the inventory's JetStream handlers: it reads the
// order saga's events from ORDERS and reserves, releases or commits stock.
//
// An order changes several keys — one item per SKU and its reservation
// record — each with its own compare-and-set write, in an order that
// keeps every crash and every duplicate delivery safe
// (docs/architecture.md, "Stock reservation"):
//
//   - the record is the decision. A reservation is made on each SKU (and
//     marked on the item, stock.Mark) before the record says reserved; a
//     redelivered handler finds the marks of the lines that landed and
//     makes only the others.
//   - a reserve mark stays until the order's record is final: one write of
//     the record (reserved -> committed or released) settles the order, and
//     the mark tells any later write of the item what its units became
//     (stock.Item.Resolve). A release gives each line back by its mark; a
//     commit writes no item at all.
//   - a handler applies a change to an item only from a version of it read
//     before it read the record (or before its own claim of the record
//     succeeded). Marks are dropped only by a write made after the record
//     is final, so a handler that read the record undecided either sees the
//     mark or fails its compare-and-set: no change is ever applied twice.
//     Resolving a mark moves its units and drops it in the same write, so
//     it happens once, whoever writes the item.
//   - marks of orders settled by another instance, or by a process that
//     died before giving units back, are resolved by later writes: the
//     records of marks older than the stale mark age are looked up, a few
//     per write (tidy); readers look up every one they need (store.View).
//   - records of the earlier version (without KeepsMarks) are settled as
//     it did: claimed (committing or releasing), SKU by SKU, finished.
//
// Events are published after the state is written; a redelivery finds the
// state changed and only re-publishes, which the create-once publisher
// turns into a no-op if it was sent before.
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
	"github.com/eventshop/shared/platform/logging"
	"github.com/eventshop/shared/platform/runner"
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
var retry = runner.Backoff{Initial: 200 * time.Millisecond, Max: 30 * time.Second, Multiplier: 2}

// RunnerConfig returns the consumer configuration of the orders handler.
func RunnerConfig(concurrency, maxDeliver int) runner.Config {
	return runner.Config{
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
	UpdateItem(ctx context.Context, it stock.Item, rev uint64) (uint64, error)
	// Reservation reads the record linearizably (from the stream's leader).
	Reservation(ctx context.Context, orderID string) (stock.Reservation, uint64, error)
	CreateReservation(ctx context.Context, r stock.Reservation) error
	UpdateReservation(ctx context.Context, r stock.Reservation, rev uint64) (uint64, error)
	// Settled lets the next writes of the items holding orderID's marks
	// resolve them (its record is final with status st).
	Settled(orderID string, st stock.Status)
	// Known returns orderID's final status if this process knows it.
	Known(orderID string) (stock.Status, bool)
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

// WithStaleMarkAge sets how old a mark must be before a write of its item
// looks up its order to resolve it (default 2 seconds; see tidy).
func WithStaleMarkAge(d time.Duration) Option {
	return func(o *Orders) error {
		if d <= 0 {
			return fmt.Errorf("stale mark age %v: %w", d, ErrInvalidOption)
		}
		o.staleAfter = d
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
	// staleAfter is the age from which a mark is tidied (see tidy).
	staleAfter time.Duration
	// undecided remembers when tidy may look up an order found undecided.
	undecided *lookups
}

// NewOrders returns the orders handler.
func NewOrders(store Store, pub Publisher, retry Retrier, log *zap.Logger, opts ...Option) (*Orders, error) {
	if store == nil || pub == nil || retry == nil || log == nil {
		return nil, fmt.Errorf("store, publisher, retrier and logger are required: %w", ErrInvalidOption)
	}
	o := &Orders{store: store, pub: pub, retry: retry, log: log, now: time.Now, locks: newSKULocks(), staleAfter: 2 * time.Second, undecided: newLookups()}
	for _, opt := range opts {
		if err := opt(o); err != nil {
			return nil, err
		}
	}
	return o, nil
}

// Handle is the runner.Handler of the orders consumer.
func (o *Orders) Handle(ctx context.Context, msg jetstream.Msg) error {
	env, err := events.Decode(msg.Subject(), msg.Data())
	if err != nil {
		return runner.Refused(reasonInvalidEvent, fmt.Errorf("%s: %w", msg.Subject(), err))
	}
	log := o.log.With(logging.Order(env.Subject, env.TraceID())...)
	switch env.Type {
	case events.OrderCreated:
		var d events.OrderCreatedData
		if err := decode(env, &d); err != nil {
			return err
		}
		err = o.retry.Do(ctx, "reserve", func(ctx context.Context) error { return o.created(ctx, log, env, d) })
	case events.OrderCancelled:
		var d events.OrderCancelledData
		if err := decode(env, &d); err != nil {
			return err
		}
		err = o.retry.Do(ctx, "release", func(ctx context.Context) error { return o.cancelled(ctx, log, env, d) })
	case events.OrderConfirmed:
		var d events.OrderConfirmedData
		if err := decode(env, &d); err != nil {
			return err
		}
		err = o.retry.Do(ctx, "commit", func(ctx context.Context) error { return o.confirmed(ctx, log, env, d) })
	default:
		return runner.Permanent(fmt.Errorf("%w: the inventory does not handle %s", events.ErrUnknownType, env.Type))
	}
	if _, refused := runner.RefusalReason(err); refused {
		return err
	}
	switch {
	case errors.Is(err, stock.ErrInvalidTransition):
		// The event contradicts what the inventory decided for the order
		// (a confirmation of an order it rejected, a cancellation of one
		// it sold): not from the saga. Dead-letter it, never apply it.
		return runner.Refused(reasonIllegalTransition, err)
	case errors.Is(err, events.ErrConflictingDuplicate):
		return runner.Refused(reasonConflictingDuplicate, err)
	case errors.Is(err, stock.ErrInvariant):
		// Redelivery cannot repair the state: dead-letter it with the
		// reason for an operator.
		return runner.Permanent(err)
	}
	return err
}

// Reasons an event is refused for (eventshop_events_refused_total).
const (
	reasonInvalidEvent         = "invalid_event"
	reasonIllegalTransition    = "illegal_transition"
	reasonConflictingDuplicate = "conflicting_duplicate"
	reasonAmountMismatch       = "amount_mismatch"
)

// decode decodes the payload into d; a payload that fails its checks is
// dead-lettered.
func decode(env events.Envelope, d any) error {
	if err := env.DecodeData(d); err != nil {
		return runner.Refused(reasonInvalidEvent, err)
	}
	return nil
}

// created reserves the order's lines all-or-nothing, or records why not.
func (o *Orders) created(ctx context.Context, log *zap.Logger, env events.Envelope, d events.OrderCreatedData) error {
	lines := stock.MergeLines(d.Items)
	skus := make([]string, len(lines))
	for i, l := range lines {
		skus[i] = l.SKU
	}
	return o.reserve(ctx, log, env, d.OrderID, lines, skus, false)
}

// reserve is one attempt at deciding an order; fresh says the items were
// just read, not taken from the cache.
func (o *Orders) reserve(ctx context.Context, log *zap.Logger, env events.Envelope, orderID string, lines []events.Item, skus []string, fresh bool) error {
	unlock := o.locks.lock(skus)
	defer func() { unlock() }() // the record write and the publish run unlocked: see the explicit unlocks
	// The items first, the record second: the record read undecided is the
	// proof that every mark dropped before these versions was of another
	// order (see the package comment).
	catalogue, revs, err := o.items(ctx, skus)
	if err != nil {
		return err
	}
	r, _, err := o.store.Reservation(ctx, orderID)
	switch {
	case err == nil:
		unlock()
		unlock = func() {}
		return o.replayDecision(ctx, log, env, r, skus)
	case !errors.Is(err, stock.ErrNoReservation):
		return err
	}
	dec := stock.Decide(orderID, lines, catalogue)
	if !dec.Accepted && !fresh {
		// A rejection writes nothing to the items, so no compare-and-set
		// would catch a stale cached version: decide again on fresh reads.
		o.store.Forget(skus...)
		unlock()
		unlock = func() {}
		return o.reserve(ctx, log, env, orderID, lines, skus, true)
	}
	now := o.now()
	res := dec.Reservation(orderID, env.TraceParent, now)
	if !dec.Accepted {
		unlock()
		unlock = func() {}
		// Record the decision before announcing it, so a redelivery
		// repeats it instead of reserving stock that arrived meanwhile.
		if err := o.store.CreateReservation(ctx, res); err != nil {
			return err // a conflict: another delivery decided first; the retry replays its decision
		}
		// Lines an earlier, interrupted attempt reserved go back.
		o.store.Settled(orderID, res.Status)
		if err := o.unreserve(ctx, orderID, skus); err != nil {
			return err
		}
		o.metrics.outcome(stock.StatusRejected)
		log.Info("order rejected", zap.String("reason", res.Reason), zap.String("sku", res.SKU), zap.String("detail", res.Detail))
		return o.publishRejected(ctx, env, res)
	}
	// A conflict re-runs the whole attempt on fresh versions; the lines
	// written so far carry their marks.
	if err := o.applyLines(ctx, orderID, stock.OpReserve, lines, catalogue, revs, now); err != nil {
		return err
	}
	unlock()
	unlock = func() {}
	if err := o.store.CreateReservation(ctx, res); err != nil {
		return err // a conflict: decided meanwhile (a cancel voided it?); the retry replays and undoes
	}
	o.metrics.outcome(stock.StatusReserved)
	log.Info("order reserved", zap.Int("lines", len(res.Lines)), zap.Int64("total_cents", res.TotalCents), zap.String("currency", res.Currency))
	return o.publishReserved(ctx, env, res)
}

// unreserve gives back the units of every line of orderID still marked
// reserved. A version without the mark is read afresh before it is
// believed: the mark may have been written by another process, which the
// cache would not show.
func (o *Orders) unreserve(ctx context.Context, orderID string, skus []string) error {
	for _, sku := range skus {
		if err := o.unreserveOne(ctx, orderID, sku); err != nil {
			return err
		}
	}
	return nil
}

func (o *Orders) unreserveOne(ctx context.Context, orderID, sku string) error {
	for fresh := false; ; fresh = true {
		it, rev, err := o.store.CachedItem(ctx, sku)
		if errors.Is(err, stock.ErrUnknownSKU) {
			return nil
		}
		if err != nil {
			return err
		}
		next, changed, err := it.Unreserve(orderID, o.now())
		if err != nil {
			return err
		}
		if changed {
			_, err := o.store.UpdateItem(ctx, next, rev) // a stale version fails here and the retry reads afresh
			return err
		}
		if fresh {
			return nil
		}
		o.store.Forget(sku)
	}
}

// applyLines makes op of orderID on the SKU of every line not marked with
// it yet (an earlier attempt made those), each a compare-and-set from the
// version in catalogue, read at revs.
func (o *Orders) applyLines(ctx context.Context, orderID string, op stock.Op, lines []events.Item,
	catalogue map[string]stock.Item, revs map[string]uint64, now time.Time) error {
	for _, l := range lines {
		it, ok := catalogue[l.SKU]
		if !ok {
			return fmt.Errorf("order %s: sku %s is gone: %w", orderID, l.SKU, stock.ErrInvariant)
		}
		if it.Marked(orderID, op) {
			continue
		}
		o.tidy(ctx, it)
		next, err := it.Apply(orderID, op, l.Quantity, now)
		if err != nil {
			return o.recheck(ctx, l.SKU, revs[l.SKU], err)
		}
		if _, err := o.store.UpdateItem(ctx, next, revs[l.SKU]); err != nil {
			return err
		}
	}
	return nil
}

// recheck decides whether err, an invariant breach found on the version of
// sku read at rev, is real. That version may be a cached one that another
// writer has moved on from (a reservation another instance wrote is not in
// this process's cache): then err is only a conflict, and the retry reads
// afresh. Only a breach on the current version goes to the dead letters.
func (o *Orders) recheck(ctx context.Context, sku string, rev uint64, err error) error {
	if !errors.Is(err, stock.ErrInvariant) {
		return err
	}
	o.store.Forget(sku)
	_, cur, rerr := o.store.CachedItem(ctx, sku)
	if rerr != nil {
		return rerr
	}
	if cur != rev {
		return fmt.Errorf("%w: sku %s moved on from revision %d (%v)", stock.ErrConflict, sku, rev, err)
	}
	return err
}

// tidy lets a write of it resolve the marks of orders that ended without
// this process knowing (another instance committed them, a process died
// before finishing a release, an attempt whose redelivery never came left
// units reserved for an order rejected or void): a mark older than
// staleAfter, of an order this process does not know final, has its record
// looked up, and a final status is given to the store (Settled), whose
// write resolves it. An order found undecided is not looked up again for
// staleAfter; nothing is, when a record cannot be read (the next write
// tries again).
func (o *Orders) tidy(ctx context.Context, it stock.Item) {
	now := o.now()
	looked := 0
	for id, m := range it.Marks {
		if looked == maxTidyLookups {
			return
		}
		if now.Sub(m.At) < o.staleAfter {
			continue
		}
		if _, ok := o.store.Known(id); ok || !o.undecided.due(id, now) {
			continue
		}
		looked++
		r, _, err := o.store.Reservation(ctx, id)
		if err != nil && !errors.Is(err, stock.ErrNoReservation) {
			continue
		}
		if err != nil || !r.Status.Final() {
			o.undecided.wait(id, now, o.staleAfter)
			continue
		}
		if _, _, err := it.Resolve(map[string]stock.Status{id: r.Status}); err != nil {
			o.log.Error("stale mark cannot be resolved", zap.String("sku", it.SKU), zap.String("order_id", id), zap.Error(err))
			continue
		}
		if m.Op == stock.OpReserve && r.Status != stock.StatusCommitted {
			o.log.Warn("units of a stale reservation given back", zap.String("sku", it.SKU), zap.String("order_id", id),
				zap.Int64("qty", m.Qty), zap.String("status", string(r.Status)))
		}
		o.store.Settled(id, r.Status)
	}
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

// replayDecision re-publishes the event of a decision already taken, and
// undoes what an attempt that lost the race to a rejection or a void left
// reserved.
func (o *Orders) replayDecision(ctx context.Context, log *zap.Logger, env events.Envelope, r stock.Reservation, skus []string) error {
	o.store.Settled(r.OrderID, r.Status) // a final one: its marks are resolved by the next writes
	switch r.Status {
	case stock.StatusReserved:
		return o.publishReserved(ctx, env, r)
	case stock.StatusRejected:
		if err := o.unreserve(ctx, r.OrderID, skus); err != nil {
			return err
		}
		return o.publishRejected(ctx, env, r)
	case stock.StatusVoid:
		// Cancelled before it was decided: nothing to announce, but an
		// attempt may have reserved lines before the void was written.
		return o.unreserve(ctx, r.OrderID, skus)
	default:
		// committing, committed, releasing, released: the order moved on;
		// announcing a reservation now could only restart a saga that has
		// ended.
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
			return err // a conflict: it was decided meanwhile; the retry releases it
		}
		// A dead attempt's reserve marks, if any, give their units back
		// with this process's next write of their items.
		o.store.Settled(d.OrderID, stock.StatusVoid)
		o.metrics.outcome(stock.StatusVoid)
		log.Info("order cancelled before it was seen; voided", zap.String("reason", d.Reason))
		return nil
	}
	if err != nil {
		return err
	}
	switch r.Status {
	case stock.StatusReserved, stock.StatusReleasing:
		if r.Status == stock.StatusReserved && r.KeepsMarks {
			// The record is the decision and the end: the units follow,
			// line by line, by their reserve marks.
			released, err := r.Settle(stock.StatusReleased, o.now())
			if err != nil {
				return err
			}
			if _, err := o.store.UpdateReservation(ctx, released, rev); err != nil {
				return err // a conflict: the retry reads what happened
			}
			if err := o.giveBack(ctx, released); err != nil {
				return err
			}
		} else if err := o.settle(ctx, r, rev, stock.StatusReleasing); err != nil {
			return err
		}
		o.metrics.outcome(stock.StatusReleased)
		log.Info("reservation released", zap.String("reason", d.Reason))
		return o.publishReleased(ctx, env, r)
	case stock.StatusReleased:
		// A release that died half way is finished here: the lines still
		// marked get their units back.
		if err := o.giveBack(ctx, r); err != nil {
			return err
		}
		return o.publishReleased(ctx, env, r)
	case stock.StatusCommitting, stock.StatusCommitted:
		// An order is confirmed or cancelled, never both: its units stay
		// sold, and the cancellation is refused for an operator to see.
		return fmt.Errorf("order %s cancelled (%s) but its units were sold to it: %w", r.OrderID, d.Reason, stock.ErrInvalidTransition)
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
	if r.Status == stock.StatusReserved || r.Status == stock.StatusCommitting || r.Status == stock.StatusCommitted {
		if d.TotalCents != r.TotalCents || d.Currency != r.Currency {
			return runner.Refused(reasonAmountMismatch, fmt.Errorf("order %s confirmed for %d %s, but its reservation totals %d %s",
				r.OrderID, d.TotalCents, d.Currency, r.TotalCents, r.Currency))
		}
	}
	switch r.Status {
	case stock.StatusReserved, stock.StatusCommitting:
		if r.Status == stock.StatusReserved && r.KeepsMarks {
			// One write: the units of the order's reserve marks are sold
			// from now on, and the next write of each item counts them so.
			committed, err := r.Settle(stock.StatusCommitted, o.now())
			if err != nil {
				return err
			}
			if _, err := o.store.UpdateReservation(ctx, committed, rev); err != nil {
				return err // a conflict: the retry reads what happened
			}
			o.store.Settled(r.OrderID, stock.StatusCommitted)
		} else if err := o.settle(ctx, r, rev, stock.StatusCommitting); err != nil {
			return err
		}
		o.metrics.outcome(stock.StatusCommitted)
		log.Info("reservation committed")
		return o.publishCommitted(ctx, env, r)
	case stock.StatusCommitted:
		o.store.Settled(r.OrderID, stock.StatusCommitted)
		return o.publishCommitted(ctx, env, r)
	default:
		return fmt.Errorf("order %s confirmed but its reservation is %s: %w", r.OrderID, r.Status, stock.ErrInvalidTransition)
	}
}

// giveBack makes the units of a released order available again: each line
// still marked reserved is given back (the mark's presence says whether it
// is yet), so a redelivery finishes a release that died half way.
func (o *Orders) giveBack(ctx context.Context, r stock.Reservation) error {
	o.store.Settled(r.OrderID, stock.StatusReleased)
	skus := make([]string, len(r.Lines))
	for i, l := range r.Lines {
		skus[i] = l.SKU
	}
	return o.unreserve(ctx, r.OrderID, skus)
}

// settle sells (to = committing) or gives back (to = releasing) the units
// of a reserved order of the earlier version (not KeepsMarks), read at
// revision rev: it claims the record, moves
// each SKU with a marked compare-and-set write, then records the end.
// Found already claimed for the same change, it finishes what an earlier
// attempt began.
func (o *Orders) settle(ctx context.Context, r stock.Reservation, rev uint64, to stock.Status) error {
	skus := make([]string, len(r.Lines))
	for i, l := range r.Lines {
		skus[i] = l.SKU
	}
	unlock := o.locks.lock(skus)
	defer func() { unlock() }()
	catalogue, revs, err := o.items(ctx, skus)
	if err != nil {
		return err
	}
	// The item versions above were read before the record is known
	// undecided: by the claim below, or by reading it again.
	now := o.now()
	if r.Status == stock.StatusReserved {
		claimed, err := r.Claim(to, now)
		if err != nil {
			return err
		}
		if rev, err = o.store.UpdateReservation(ctx, claimed, rev); err != nil {
			return err // a conflict: the retry reads what happened
		}
		r = claimed
	} else {
		cur, curRev, err := o.store.Reservation(ctx, r.OrderID)
		if err != nil {
			return err
		}
		if curRev != rev {
			return fmt.Errorf("order %s moved on to %s: %w", r.OrderID, cur.Status, stock.ErrConflict)
		}
	}
	if r.Status != to {
		return fmt.Errorf("order %s is %s, wanted %s: %w", r.OrderID, r.Status, to, stock.ErrInvalidTransition)
	}
	op, err := r.Op()
	if err != nil {
		return err
	}
	if err := o.applyLines(ctx, r.OrderID, op, r.Items(), catalogue, revs, now); err != nil {
		return err
	}
	unlock()
	unlock = func() {}
	done, err := r.Finish(now)
	if err != nil {
		return err
	}
	if _, err := o.store.UpdateReservation(ctx, done, rev); err != nil {
		return err
	}
	o.store.Settled(r.OrderID, done.Status)
	return nil
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
		if errors.Is(err, events.ErrConflictingDuplicate) {
			// Another event about the order is on the subject (a forged
			// reservation, say): ours is not published, and an operator
			// must look. The stock decision stays recorded.
			return runner.Refused(reasonConflictingDuplicate, err)
		}
		if errors.Is(err, events.ErrInvalidEvent) || errors.Is(err, events.ErrInvalidID) {
			return runner.Permanent(err)
		}
		return fmt.Errorf("publish %s: %w", t, err)
	}
	return nil
}
