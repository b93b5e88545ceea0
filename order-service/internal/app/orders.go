package app

import (
	"context"
	"errors"
	"fmt"

	"github.com/google/uuid"
	"go.uber.org/zap"

	"github.com/eventshop/order-service/internal/order"
	"github.com/eventshop/shared/events"
	"github.com/eventshop/shared/platform/logging"
	"github.com/eventshop/shared/platform/trace"
)

// Placement asks for an order, as POST /orders gives it (already valid
// against the request schema).
type Placement struct {
	// IdempotencyKey names the order when given ("" for none).
	IdempotencyKey  string
	CustomerID      string
	Items           []events.Item
	PaymentToken    string
	ShippingAddress *events.Address
	// TraceParent is the request's trace: the created event is its child.
	TraceParent string
}

// Placed is the order a placement made or found.
type Placed struct {
	OrderID string
	Status  order.Status
}

// Create places an order. The created event is the source of truth and
// the only write that makes the order (beside its customer index): an
// order is its events, and Get reads them. An Idempotency-Key names the
// order (its id is derived from the key), so the event's create-once
// publish is also the key's claim: a repeat finds the event and answers
// the same order if it asked the same (the publisher compares the stored
// event with this one), ErrIdempotencyKeyReused otherwise. A request that
// dies anywhere is finished by its retry. Placed.OrderID names the order
// even when the error is not nil.
func (a *App) Create(ctx context.Context, p Placement) (Placed, error) {
	orderID := a.newID()
	if p.IdempotencyKey != "" {
		orderID = KeyedOrderID(p.IdempotencyKey)
	}
	placed := Placed{OrderID: orderID}
	log := a.log.With(logging.Order(orderID, trace.TraceID(p.TraceParent))...)

	eventTP := trace.Child(p.TraceParent).String()
	now := a.now().UTC()
	o, err := order.New(order.Draft{ID: orderID, CustomerID: p.CustomerID, Items: Items(p.Items), CreatedAt: now, TraceParent: eventTP,
		ShipTo: (*order.Address)(p.ShippingAddress)})
	if err != nil {
		return placed, err
	}
	// Listed before it exists: every order that exists is listed, and an
	// entry whose publish never happened names no order and is not shown.
	if err := a.orders.Index(ctx, o); err != nil {
		return placed, err
	}
	pub, err := a.pub.Publish(ctx, events.OrderCreated, orderID, eventTP, events.OrderCreatedData{
		OrderID: orderID, CustomerID: p.CustomerID, Items: p.Items, PaymentToken: p.PaymentToken, CreatedAt: now,
		ShippingAddress: p.ShippingAddress,
	})
	if err != nil {
		return placed, publishError(err)
	}
	// A duplicate means an earlier attempt with this key published the
	// same request (another request is ErrConflictingDuplicate).
	placed.Status = order.StatusPending
	if pub.Duplicate {
		cur, err := a.orders.Find(ctx, orderID)
		if err != nil {
			return Placed{OrderID: orderID}, err
		}
		placed.Status = cur.Status
		log.Info("order request replayed", zap.String("status", string(placed.Status)))
	} else {
		log.Info("order accepted", zap.String("customer_id", p.CustomerID), zap.Int("items", len(p.Items)))
	}
	return placed, nil
}

// keyNamespace makes the order ids of Idempotency-Keys UUIDv5 values in a
// space of their own.
var keyNamespace = uuid.NewSHA1(uuid.NameSpaceURL, []byte("https://eventshop.dev/orders/idempotency-key"))

// KeyedOrderID is the id of the order an Idempotency-Key creates: derived,
// so that every attempt with the key, in any process, names the same order
// and the created event's create-once publish is the key's claim.
func KeyedOrderID(clientKey string) string {
	return uuid.NewSHA1(keyNamespace, []byte(clientKey)).String()
}

// publishError tells a bug (an event our own code built is invalid) from
// NATS being unreachable.
func publishError(err error) error {
	if errors.Is(err, events.ErrConflictingDuplicate) {
		// The key's order holds a created event that asked for something
		// else: the key is being reused.
		return fmt.Errorf("%w: %w", ErrIdempotencyKeyReused, err)
	}
	if errors.Is(err, events.ErrInvalidEvent) || errors.Is(err, events.ErrInvalidID) || errors.Is(err, events.ErrUnknownType) {
		return fmt.Errorf("publish order created: %w", err)
	}
	return fmt.Errorf("%w: %w", ErrUnavailable, err)
}

// Get returns one order as its events tell it.
func (a *App) Get(ctx context.Context, orderID string) (order.Order, error) {
	return a.orders.Find(ctx, orderID)
}

// List returns up to limit of the customer's orders, newest first, after
// the cursor (nil: from the newest), and the cursor of the next page (nil
// on the last page).
func (a *App) List(ctx context.Context, customerID string, after *Cursor, limit int) ([]order.Order, *Cursor, error) {
	return a.orders.ListByCustomer(ctx, customerID, after, limit)
}

// Items converts the contract's items into the domain's.
func Items(in []events.Item) []order.Item {
	out := make([]order.Item, len(in))
	for i, it := range in {
		out[i] = order.Item{SKU: it.SKU, Quantity: it.Quantity}
	}
	return out
}
