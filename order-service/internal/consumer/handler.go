// Package consumer holds the order service's JetStream handlers: they turn
// inventory and payment events (and the order deadline, timed by the
// order's own created event) into order transitions, store them with a
// compare-and-set on the KV revision, and then publish the order's final
// event create-once.
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
	"github.com/eventshop/shared/platform/consumer"
	"github.com/eventshop/shared/platform/logging"
	"github.com/eventshop/shared/platform/trace"
)

// Durable consumer names.
const (
	InventoryDurable = "order-inventory"
	PaymentsDurable  = "order-payments"
)

// maxCASAttempts bounds the re-read-and-apply loop on revision conflicts;
// past it the message is retried later rather than spinning.
const maxCASAttempts = 16

// Orders is what the handlers need from the order store.
type Orders interface {
	// Current returns the stored order, or one not stored yet as its
	// events tell it, at revision 0.
	Current(ctx context.Context, orderID string) (order.Order, uint64, error)
	// Unstored returns the order as its events tell it, at revision 0,
	// without looking whether it is stored.
	Unstored(ctx context.Context, orderID string) (order.Order, error)
	// Update with rev 0 stores an order not stored yet.
	Update(ctx context.Context, o order.Order, rev uint64) (uint64, error)
}

// Publisher publishes an event create-once.
type Publisher interface {
	Publish(ctx context.Context, t events.Type, orderID, traceparent string, data any) (events.Published, error)
}

// Handler applies upstream events to orders.
type Handler struct {
	orders Orders
	pub    Publisher
	log    *zap.Logger
	now    func() time.Time
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
// failures are NATS writes (KV compare-and-set, publish), so: NakWithDelay
// after 0.1-0.2s, doubling up to 15-30s (full jitter), and after 10
// deliveries (one to one and a half minutes) the message is
// dead-lettered. Invalid events are dead-lettered at once.
const maxDeliver = 10

var retry = consumer.Backoff{Initial: 200 * time.Millisecond, Max: 30 * time.Second, Multiplier: 2}

// InventoryConfig is the consumer of inventory rejections. A reservation
// changes nothing the order service must store: the order reads its
// inventory.<id>.reserved event when it needs the lines and total (the
// store's Current), so it costs no delivery and no write.
func InventoryConfig(concurrency int) consumer.Config {
	return consumer.Config{
		Stream:         events.StreamInventory,
		Durable:        InventoryDurable,
		FilterSubjects: []string{events.FilterSubject(events.InventoryRejected)},
		Concurrency:    concurrency,
		MaxDeliver:     maxDeliver,
		Retry:          retry,
	}
}

// PaymentsConfig is the consumer of payment outcomes.
func PaymentsConfig(concurrency int) consumer.Config {
	return consumer.Config{
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
// dead-lettered; store and publish failures are retried.
func (h *Handler) Handle(ctx context.Context, msg jetstream.Msg) error {
	env, err := events.Decode(msg.Subject(), msg.Data())
	if err != nil {
		return consumer.Refused(ReasonInvalidEvent, err)
	}
	apply, err := transitionFor(env)
	if err != nil {
		return consumer.Refused(ReasonInvalidEvent, err)
	}
	log := h.log.With(logging.Order(env.Subject, env.TraceID())...).With(zap.String("event_type", string(env.Type)), zap.String("event_id", env.ID))
	// An outcome usually makes the order final, and it is stored from its
	// final transition on: try that first, without reading the bucket.
	o, err := h.apply(ctx, env.Subject, apply, true, log)
	if err != nil {
		if reason, ok := refusal(err); ok {
			return consumer.Refused(reason, fmt.Errorf("%s from %s: %w", env.Type, env.Source, err))
		}
		if errors.Is(err, store.ErrCorrupt) {
			return consumer.Permanent(err)
		}
		return err
	}
	return h.publishFinal(ctx, o, env.TraceParent, log)
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

// apply runs the CAS loop: read (an order not stored yet is the order its
// created and reserved events describe, at revision 0), apply, write at
// the read revision, and on a conflict start again from the new state.
// With unstored, the first attempt assumes the order is not stored yet and
// skips the read: if it is stored, its create is refused as a conflict and
// the loop reads it. Only a read order may decide that nothing changes.
func (h *Handler) apply(ctx context.Context, orderID string, apply transition, unstored bool, log *zap.Logger) (order.Order, error) {
	for range maxCASAttempts {
		var (
			o   order.Order
			rev uint64
			err error
		)
		guess := unstored
		unstored = false
		if guess {
			o, err = h.orders.Unstored(ctx, orderID)
		} else {
			o, rev, err = h.orders.Current(ctx, orderID)
		}
		if err != nil {
			return order.Order{}, err
		}
		next, changed, err := apply(o, h.now())
		if guess && (err != nil || !changed) {
			continue // decide on the stored order, if there is one
		}
		if errors.Is(err, order.ErrPaidAfterCancel) {
			// The order stays cancelled (it missed its deadline, say): the
			// payment service refunds the charge when it handles the
			// cancellation. Acknowledge so the saga moves on.
			log.Warn("payment succeeded for a cancelled order: the payment service refunds it", zap.Error(err))
			return o, nil
		}
		if err != nil {
			return order.Order{}, err
		}
		if !changed {
			return o, nil
		}
		if _, err := h.orders.Update(ctx, next, rev); err != nil {
			if errors.Is(err, store.ErrConflict) {
				continue
			}
			return order.Order{}, err
		}
		log.Info("order updated", zap.String("from", string(o.Status)), zap.String("to", string(next.Status)))
		return next, nil
	}
	return order.Order{}, fmt.Errorf("order %s: %d conflicting updates in a row: %w", orderID, maxCASAttempts, store.ErrConflict)
}

// publishFinal publishes the event of a final order. It runs for every event
// handled on a final order, not just the one that made it final: publishing
// is create-once, so a repeat is a harmless duplicate, and it is how a crash
// between the KV write and the publish converges on redelivery.
func (h *Handler) publishFinal(ctx context.Context, o order.Order, incoming string, log *zap.Logger) error {
	tp := trace.Child(incoming).String()
	var (
		t    events.Type
		data any
	)
	switch o.Status {
	case order.StatusConfirmed:
		t, data = events.OrderConfirmed, events.OrderConfirmedData{
			OrderID: o.ID, CustomerID: o.CustomerID, TotalCents: o.TotalCents, Currency: o.Currency,
		}
	case order.StatusCancelled:
		t, data = events.OrderCancelled, events.OrderCancelledData{
			OrderID: o.ID, CustomerID: o.CustomerID, Reason: o.CancelReason, Detail: o.CancelDetail,
		}
	default:
		return nil
	}
	res, err := h.pub.Publish(ctx, t, o.ID, tp, data)
	if err != nil {
		switch {
		case errors.Is(err, events.ErrConflictingDuplicate):
			// The order's final event on the subject says something else
			// than the stored order: it was not written by this service.
			return consumer.Refused(ReasonConflictingDuplicate, err)
		case errors.Is(err, events.ErrInvalidEvent):
			return consumer.Permanent(err)
		}
		return err
	}
	if !res.Duplicate {
		log.Info("order event published", zap.String("published_type", string(t)), zap.Uint64("stream_seq", res.Sequence))
	}
	return nil
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
