package app

import (
	"context"
	"errors"
	"fmt"

	"go.uber.org/zap"

	"github.com/eventshop/inventory-service/internal/stock"
	"github.com/eventshop/shared/events"
	"github.com/eventshop/shared/platform/logging"
	"github.com/eventshop/shared/platform/trace"
)

// OrderCreated reserves the order's lines all-or-nothing and announces it
// (inventory.reserved), or records why not and announces that
// (inventory.rejected). A redelivery announces the decision again.
func (a *App) OrderCreated(ctx context.Context, env events.Envelope, d events.OrderCreatedData) error {
	log := a.orderLog(env)
	lines := make([]stock.Line, len(d.Items))
	for i, it := range d.Items {
		lines[i] = stock.Line(it)
	}
	return a.retry.do(ctx, "reserve", func(ctx context.Context) error {
		out, err := a.res.Reserve(ctx, d.OrderID, env.TraceParent, lines)
		if err != nil {
			return err
		}
		r := out.Record
		switch r.Status {
		case stock.StatusReserved:
			if out.Changed {
				a.metrics.outcome(stock.StatusReserved)
				log.Info("order reserved", zap.Int("lines", len(r.Lines)), zap.Int64("total_cents", r.TotalCents), zap.String("currency", r.Currency))
			}
			return a.publishReserved(ctx, env, r)
		case stock.StatusRejected:
			if out.Changed {
				a.metrics.outcome(stock.StatusRejected)
				log.Info("order rejected", zap.String("reason", r.Reason), zap.String("sku", r.SKU), zap.String("detail", r.Detail))
			}
			return a.publishRejected(ctx, env, r)
		case stock.StatusVoid:
			// Cancelled before it was decided: nothing to announce.
			return nil
		default:
			// committing, committed, releasing, released: the order moved on;
			// announcing a reservation now could only restart a saga that has
			// ended.
			log.Debug("created event for a settled order ignored", zap.String("status", string(r.Status)))
			return nil
		}
	})
}

// OrderCancelled gives a reserved order's units back and announces it
// (inventory.released), or makes sure an order cancelled before it was
// seen never reserves. The cancellation of an order whose units were sold
// fails with stock.ErrInvalidTransition.
func (a *App) OrderCancelled(ctx context.Context, env events.Envelope, d events.OrderCancelledData) error {
	log := a.orderLog(env)
	return a.retry.do(ctx, "release", func(ctx context.Context) error {
		out, err := a.res.Release(ctx, d.OrderID, env.TraceParent)
		if err != nil {
			return err
		}
		r := out.Record
		switch r.Status {
		case stock.StatusVoid:
			if out.Changed {
				a.metrics.outcome(stock.StatusVoid)
				log.Info("order cancelled before it was seen; voided", zap.String("reason", d.Reason))
			}
			return nil
		case stock.StatusReleased:
			if out.Changed {
				a.metrics.outcome(stock.StatusReleased)
				log.Info("reservation released", zap.String("reason", d.Reason))
			}
			return a.publishReleased(ctx, env, r)
		case stock.StatusCommitting, stock.StatusCommitted:
			// An order is confirmed or cancelled, never both: its units stay
			// sold, and the cancellation is refused for an operator to see.
			return fmt.Errorf("order %s cancelled (%s) but its units were sold to it: %w", r.OrderID, d.Reason, stock.ErrInvalidTransition)
		default: // rejected or void: nothing was reserved
			return nil
		}
	})
}

// OrderConfirmed turns a reserved order's units into sold ones and
// announces it (inventory.committed). A confirmation for another total
// than the reservation's fails with stock.ErrAmountMismatch, one of an
// order not reserved with stock.ErrInvalidTransition.
func (a *App) OrderConfirmed(ctx context.Context, env events.Envelope, d events.OrderConfirmedData) error {
	log := a.orderLog(env)
	return a.retry.do(ctx, "commit", func(ctx context.Context) error {
		out, err := a.res.Commit(ctx, d.OrderID, d.TotalCents, d.Currency)
		if err != nil {
			return err
		}
		if out.Changed {
			a.metrics.outcome(stock.StatusCommitted)
			log.Info("reservation committed")
		}
		return a.publishCommitted(ctx, env, out.Record)
	})
}

// orderLog is the logger of lines about env's order.
func (a *App) orderLog(env events.Envelope) *zap.Logger {
	return a.log.With(logging.Order(env.Subject, env.TraceID())...)
}

func (a *App) publishReserved(ctx context.Context, env events.Envelope, r stock.Reservation) error {
	lines := make([]events.PricedLine, len(r.Lines))
	for i, l := range r.Lines {
		lines[i] = events.PricedLine(l)
	}
	return a.publish(ctx, env, events.InventoryReserved, r.OrderID, events.InventoryReservedData{
		OrderID: r.OrderID, Lines: lines, TotalCents: r.TotalCents, Currency: r.Currency,
	})
}

func (a *App) publishRejected(ctx context.Context, env events.Envelope, r stock.Reservation) error {
	return a.publish(ctx, env, events.InventoryRejected, r.OrderID, events.InventoryRejectedData{
		OrderID: r.OrderID, Reason: r.Reason, SKU: r.SKU, Detail: r.Detail,
	})
}

func (a *App) publishReleased(ctx context.Context, env events.Envelope, r stock.Reservation) error {
	return a.publish(ctx, env, events.InventoryReleased, r.OrderID, events.InventoryReleasedData{OrderID: r.OrderID, Lines: items(r)})
}

func (a *App) publishCommitted(ctx context.Context, env events.Envelope, r stock.Reservation) error {
	return a.publish(ctx, env, events.InventoryCommitted, r.OrderID, events.InventoryCommittedData{OrderID: r.OrderID, Lines: items(r)})
}

// items returns r's lines as the events carry them: SKU and quantity.
func items(r stock.Reservation) []events.Item {
	out := make([]events.Item, len(r.Lines))
	for i, l := range r.Items() {
		out[i] = events.Item(l)
	}
	return out
}

// publish sends an event caused by env, in env's trace. A failure is
// transient: the state is already written, so the redelivery re-publishes.
func (a *App) publish(ctx context.Context, env events.Envelope, t events.Type, orderID string, data any) error {
	if _, err := a.pub.Publish(ctx, t, orderID, trace.Child(env.TraceParent).String(), data); err != nil {
		if errors.Is(err, events.ErrConflictingDuplicate) {
			// Another event about the order is on the subject (a forged
			// reservation, say): ours is not published, and an operator
			// must look. The stock decision stays recorded.
			return err
		}
		if errors.Is(err, events.ErrInvalidEvent) || errors.Is(err, events.ErrInvalidID) {
			return marked{kind: ErrUnpublishable, err: err}
		}
		return fmt.Errorf("publish %s: %w", t, err)
	}
	return nil
}
