// Package consumer holds the order service's JetStream handlers: they turn
// inventory and payment events (and the order deadline, timed by the
// order's own created event) into order transitions, and publish the
// order's final event only if it is still the order's next event: that
// event is the decision (docs/architecture.md, "Order creation and the
// order's state").
package consumer

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"go.uber.org/zap"

	"github.com/eventshop/order-service/internal/order"
	"github.com/eventshop/order-service/internal/store"
	"github.com/eventshop/shared/events"
	"github.com/eventshop/shared/platform/logging"
	"github.com/eventshop/shared/platform/runner"
	"github.com/eventshop/shared/platform/trace"
)

// Durable consumer names.
const (
	InventoryDurable = "order-inventory"
	PaymentsDurable  = "order-payments"
)

// maxAttempts bounds the read-decide-publish loop when other events about
// the order keep coming first; past it the message is retried later
// rather than spinning.
const maxAttempts = 16

// errBusy means the order's events kept changing under maxAttempts
// decisions in a row: retried later.
var errBusy = errors.New("the order's events kept changing")

// Orders is what the handlers need from the order store.
type Orders interface {
	// Head reads the order's last event in ORDERS.
	Head(ctx context.Context, orderID string) (store.Head, error)
	// State returns the order whose last event is h.
	State(ctx context.Context, orderID string, h store.Head) (store.State, error)
}

// Publisher publishes an order's decision after the order's last event.
type Publisher interface {
	PublishAfter(ctx context.Context, t events.Type, orderID, traceparent string, data any, after uint64) (events.Published, error)
}

// Handler applies upstream events to orders.
type Handler struct {
	orders  Orders
	pub     Publisher
	log     *zap.Logger
	now     func() time.Time
	metrics *Metrics
}

// Option configures a Handler.
type Option func(*Handler) error

// ErrInvalidOption is returned by an option given a value it cannot use.
var ErrInvalidOption = errors.New("invalid option")

// WithClock sets the clock used for updated_at.
func WithClock(now func() time.Time) Option {
	return func(h *Handler) error {
		if now == nil {
			return fmt.Errorf("clock: %w", ErrInvalidOption)
		}
		h.now = now
		return nil
	}
}

// WithMetrics observes every decision the handler stores in m.
func WithMetrics(m *Metrics) Option {
	return func(h *Handler) error {
		if m == nil {
			return fmt.Errorf("metrics: %w", ErrInvalidOption)
		}
		h.metrics = m
		return nil
	}
}

// NewHandler returns a handler over the store and publisher.
func NewHandler(orders Orders, pub Publisher, log *zap.Logger, opts ...Option) (*Handler, error) {
	if orders == nil || pub == nil || log == nil {
		return nil, fmt.Errorf("store, publisher and logger are required: %w", ErrInvalidOption)
	}
	h := &Handler{orders: orders, pub: pub, log: log, now: time.Now}
	for _, opt := range opts {
		if err := opt(h); err != nil {
			return nil, err
		}
	}
	return h, nil
}

// The retry schedule of the order consumers. Their only transient
// failures are NATS reads and the decision's publish, so: NakWithDelay
// after 0.1-0.2s, doubling up to 15-30s (full jitter), and after 10
// deliveries (one to one and a half minutes) the message is
// dead-lettered. Invalid events are dead-lettered at once.
const maxDeliver = 10

var retry = runner.Backoff{Initial: 200 * time.Millisecond, Max: 30 * time.Second, Multiplier: 2}

// InventoryConfig is the consumer of inventory rejections. A reservation
// changes nothing the order service must store: the order reads its
// inventory.<id>.reserved event when it needs the lines and total (the
// store's Current), so it costs no delivery and no write.
func InventoryConfig(concurrency int) runner.Config {
	return runner.Config{
		Stream:         events.StreamInventory,
		Durable:        InventoryDurable,
		FilterSubjects: []string{events.FilterSubject(events.InventoryRejected)},
		Concurrency:    concurrency,
		MaxDeliver:     maxDeliver,
		Retry:          retry,
	}
}

// PaymentsConfig is the consumer of payment outcomes.
func PaymentsConfig(concurrency int) runner.Config {
	return runner.Config{
		Stream:         events.StreamPayments,
		Durable:        PaymentsDurable,
		FilterSubjects: []string{events.FilterSubject(events.PaymentSucceeded), events.FilterSubject(events.PaymentFailed)},
		Concurrency:    concurrency,
		MaxDeliver:     maxDeliver,
		Retry:          retry,
	}
}

// transition applies one event to an order (one of the order.Apply
// functions bound to the event's content).
type transition func(o order.Order, now time.Time) (order.Order, bool, error)

// Handle handles one inventory or payment event. Invalid events are
// dead-lettered; read and publish failures are retried.
func (h *Handler) Handle(ctx context.Context, msg jetstream.Msg) error {
	env, err := events.Decode(msg.Subject(), msg.Data())
	if err != nil {
		return runner.Refused(ReasonInvalidEvent, err)
	}
	apply, err := transitionFor(env)
	if err != nil {
		return runner.Refused(ReasonInvalidEvent, err)
	}
	log := h.log.With(logging.Order(env.Subject, env.TraceID())...).With(zap.String("event_type", string(env.Type)), zap.String("event_id", env.ID))
	if err := h.decide(ctx, env.Subject, apply, nil, env.TraceParent, log); err != nil {
		if reason, ok := refusal(err); ok {
			return runner.Refused(reason, fmt.Errorf("%s from %s: %w", env.Type, env.Source, err))
		}
		if errors.Is(err, store.ErrCorrupt) {
			return runner.Permanent(err)
		}
		return err
	}
	return nil
}

// Reasons an event is refused for (the reason label of
// eventshop_events_refused_total).
const (
	ReasonInvalidEvent         = "invalid_event"
	ReasonUnknownOrder         = "unknown_order"
	ReasonNotReserved          = "not_reserved"
	ReasonAmountMismatch       = "amount_mismatch"
	ReasonIllegalTransition    = "illegal_transition"
	ReasonConflictingDuplicate = "conflicting_duplicate"
)

// refusal tells an event refused for what it claims from a failure to
// handle it, and names the reason.
func refusal(err error) (string, bool) {
	switch {
	case errors.Is(err, order.ErrAmountMismatch):
		return ReasonAmountMismatch, true
	case errors.Is(err, order.ErrNotReserved):
		return ReasonNotReserved, true
	case errors.Is(err, order.ErrInvalidTransition):
		return ReasonIllegalTransition, true
	case errors.Is(err, order.ErrNotFound):
		return ReasonUnknownOrder, true
	case errors.Is(err, order.ErrInvalidEvent):
		return ReasonInvalidEvent, true
	}
	return "", false
}

// decide reads the order (from head, if the caller read it), applies the
// event and, if that decides the order, publishes the decision after the
// order's last event. A decider another decision overtook applies its
// event to that decision, as if it had read it (a payment success for an
// order the deadline cancelled is acknowledged: the payment service
// refunds it). An order decided by a record of an earlier version whose
// event was never published gets that event published.
func (h *Handler) decide(ctx context.Context, orderID string, apply transition, head *store.Head, incoming string, log *zap.Logger) error {
	for range maxAttempts {
		var (
			hd  store.Head
			err error
		)
		if head != nil {
			hd, head = *head, nil
		} else if hd, err = h.orders.Head(ctx, orderID); err != nil {
			return err
		}
		st, err := h.orders.State(ctx, orderID, hd)
		if err != nil {
			return err
		}
		for {
			next, err := h.applyTo(st.Order, apply, log)
			if err != nil {
				return err
			}
			if !next.Final() || st.After == 0 {
				return nil // nothing decided, or decided by its stored event
			}
			res, err := h.publishFinal(ctx, next, st.After, incoming)
			var over *events.OvertakenError
			if errors.As(err, &over) && over.Stored.Type != events.OrderCreated {
				d, err := store.DecisionOf(over.Stored)
				if err != nil {
					return err
				}
				o, err := order.ApplyDecision(st.Order, d)
				if err != nil {
					return fmt.Errorf("%w: %w", store.ErrCorrupt, err)
				}
				log.Info("order decided by another event first", zap.String("decided_by", string(over.Stored.Type)), zap.Uint64("stream_seq", over.Sequence))
				st = store.State{Order: o}
				continue
			}
			if errors.As(err, &over) {
				break // a replayed created event came first: read again
			}
			if err != nil {
				return err
			}
			if !res.Duplicate {
				// Stored by this decider: observed here and nowhere else.
				// One overtaken applies the stored decision, a duplicate
				// is a decision another stored; neither gets here.
				h.metrics.decided(next)
				log.Info("order decided", zap.String("from", string(st.Order.Status)), zap.String("to", string(next.Status)), zap.Uint64("stream_seq", res.Sequence))
			}
			return nil
		}
	}
	return fmt.Errorf("order %s: %d decisions overtaken in a row: %w", orderID, maxAttempts, errBusy)
}

// applyTo applies the event to o. A payment that succeeded for an order
// cancelled meanwhile leaves it cancelled.
func (h *Handler) applyTo(o order.Order, apply transition, log *zap.Logger) (order.Order, error) {
	next, _, err := apply(o, h.now())
	if errors.Is(err, order.ErrPaidAfterCancel) {
		// The order stays cancelled (it missed its deadline, say): the
		// payment service refunds the charge when it handles the
		// cancellation. Acknowledge so the saga moves on.
		log.Warn("payment succeeded for a cancelled order: the payment service refunds it", zap.Error(err))
		return o, nil
	}
	return next, err
}

// publishFinal publishes the event of a final order after the order's
// event at stream sequence after: the first decision published wins, a
// repeat of it is a duplicate, and any other gets an *events.OvertakenError.
func (h *Handler) publishFinal(ctx context.Context, o order.Order, after uint64, incoming string) (events.Published, error) {
	tp := trace.Child(incoming).String()
	var (
		t    events.Type
		data any
	)
	switch o.Status {
	case order.StatusConfirmed:
		d := events.OrderConfirmedData{OrderID: o.ID, CustomerID: o.CustomerID, TotalCents: o.TotalCents, Currency: o.Currency}
		if events.ProducedVersion(events.OrderConfirmed) >= 2 { // v1 has no address: a rollback emits v1 again
			d.ShippingAddress = (*events.Address)(o.ShipTo)
		}
		t, data = events.OrderConfirmed, d
	case order.StatusCancelled:
		t, data = events.OrderCancelled, events.OrderCancelledData{
			OrderID: o.ID, CustomerID: o.CustomerID, Reason: o.CancelReason, Detail: o.CancelDetail,
		}
	default:
		return events.Published{}, fmt.Errorf("order %s is %s: %w", o.ID, o.Status, order.ErrInvalidTransition)
	}
	res, err := h.pub.PublishAfter(ctx, t, o.ID, tp, data, after)
	switch {
	case errors.Is(err, events.ErrConflictingDuplicate):
		// The order's last event is not a valid event: it was not written
		// by this service.
		return res, runner.Refused(ReasonConflictingDuplicate, err)
	case errors.Is(err, events.ErrInvalidEvent):
		return res, runner.Permanent(err)
	}
	return res, err
}

// transitionFor decodes the event's data and binds it to its transition.
func transitionFor(env events.Envelope) (transition, error) {
	switch env.Type {
	case events.InventoryRejected:
		var d events.InventoryRejectedData
		if err := env.DecodeData(&d); err != nil {
			return nil, err
		}
		r := order.Rejection{OrderID: d.OrderID, Reason: d.Reason, SKU: d.SKU, Detail: d.Detail}
		return func(o order.Order, now time.Time) (order.Order, bool, error) { return order.ApplyRejected(o, r, now) }, nil
	case events.PaymentSucceeded:
		var d events.PaymentSucceededData
		if err := env.DecodeData(&d); err != nil {
			return nil, err
		}
		p := order.Payment{OrderID: d.OrderID, ChargeID: d.ChargeID, AmountCents: d.AmountCents, Currency: d.Currency}
		return func(o order.Order, now time.Time) (order.Order, bool, error) {
			return order.ApplyPaymentSucceeded(o, p, now)
		}, nil
	case events.PaymentFailed:
		var d events.PaymentFailedData
		if err := env.DecodeData(&d); err != nil {
			return nil, err
		}
		dec := order.Decline{OrderID: d.OrderID, DeclineCode: d.DeclineCode, AmountCents: d.AmountCents, Currency: d.Currency}
		if dec.DeclineCode == "" {
			dec.DeclineCode = d.Reason
		}
		return func(o order.Order, now time.Time) (order.Order, bool, error) {
			return order.ApplyPaymentFailed(o, dec, now)
		}, nil
	}
	return nil, fmt.Errorf("%w: the order service does not handle %s", events.ErrUnknownType, env.Type)
}
