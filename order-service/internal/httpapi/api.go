// Package httpapi is the order service's HTTP API: create an order, read
// one, list a customer's orders.
package httpapi

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/google/uuid"
	oteltrace "go.opentelemetry.io/otel/trace"
	"go.uber.org/zap"

	"github.com/eventshop/order-service/internal/order"
	"github.com/eventshop/order-service/internal/store"
	"github.com/eventshop/shared/api"
	"github.com/eventshop/shared/api/openapi"
	"github.com/eventshop/shared/events"
	"github.com/eventshop/shared/platform/httpserver"
	"github.com/eventshop/shared/platform/logging"
	"github.com/eventshop/shared/platform/trace"
	"github.com/eventshop/shared/platform/tracing"
)

// Limits of the API.
const (
	maxIdempotencyKey = 255
	maxBody           = 1 << 20
	// defaultPageSize and maxPageSize bound GET /orders?customer_id=.
	defaultPageSize   = 50
	maxPageSize       = 200
	headerIdemKey     = "Idempotency-Key"
	headerTraceparent = "traceparent"
)

// Orders is what the API needs from the order store.
type Orders interface {
	Find(ctx context.Context, orderID string) (order.Order, error)
	Index(ctx context.Context, o order.Order) error
	// ListByCustomer returns a page of up to limit orders after the
	// cursor, and the cursor of the next page (nil on the last).
	ListByCustomer(ctx context.Context, customerID string, after *store.Cursor, limit int) ([]order.Order, *store.Cursor, error)
}

// Publisher publishes an event create-once.
type Publisher interface {
	Publish(ctx context.Context, t events.Type, orderID, traceparent string, data any) (events.Published, error)
}

// API holds the order endpoints.
type API struct {
	orders    Orders
	pub       Publisher
	registry  *events.Registry
	log       *zap.Logger
	connected func() error
	timeout   time.Duration
	now       func() time.Time
	newID     func() string
	// maxInFlight bounds POST /orders in progress (0: no limit).
	maxInFlight int
}

// Option configures an API.
type Option func(*API) error

// ErrInvalidOption is returned by an option given a value it cannot use.
var ErrInvalidOption = errors.New("invalid option")

// WithClock sets the clock used for created_at.
func WithClock(now func() time.Time) Option {
	return func(a *API) error {
		if now == nil {
			return fmt.Errorf("clock: %w", ErrInvalidOption)
		}
		a.now = now
		return nil
	}
}

// WithIDSource sets the order id generator (UUIDv7 by default).
func WithIDSource(newID func() string) Option {
	return func(a *API) error {
		if newID == nil {
			return fmt.Errorf("id source: %w", ErrInvalidOption)
		}
		a.newID = newID
		return nil
	}
}

// WithRequestTimeout bounds the NATS work of one request (5s by default).
func WithRequestTimeout(d time.Duration) Option {
	return func(a *API) error {
		if d <= 0 {
			return fmt.Errorf("request timeout %s: %w", d, ErrInvalidOption)
		}
		a.timeout = d
		return nil
	}
}

// WithInFlightLimit sheds POST /orders beyond n in progress at once with
// 503 and Retry-After (no limit by default).
func WithInFlightLimit(n int) Option {
	return func(a *API) error {
		if n < 0 {
			return fmt.Errorf("in-flight limit %d: %w", n, ErrInvalidOption)
		}
		a.maxInFlight = n
		return nil
	}
}

// WithConnCheck makes every order request fail fast with 503 while check
// reports NATS unreachable, instead of waiting for a timeout.
func WithConnCheck(check func() error) Option {
	return func(a *API) error {
		if check == nil {
			return fmt.Errorf("connection check: %w", ErrInvalidOption)
		}
		a.connected = check
		return nil
	}
}

// New returns the API.
func New(orders Orders, pub Publisher, registry *events.Registry, log *zap.Logger, opts ...Option) (*API, error) {
	if orders == nil || pub == nil || registry == nil || log == nil {
		return nil, fmt.Errorf("store, publisher, registry and logger are required: %w", ErrInvalidOption)
	}
	a := &API{
		orders: orders, pub: pub, registry: registry, log: log,
		connected: func() error { return nil },
		timeout:   5 * time.Second,
		now:       time.Now,
		newID:     func() string { return uuid.Must(uuid.NewV7()).String() },
	}
	for _, opt := range opts {
		if err := opt(a); err != nil {
			return nil, err
		}
	}
	return a, nil
}

// Register mounts the endpoints on r, with their OpenAPI document at
// /openapi.json.
func (a *API) Register(r gin.IRouter) {
	g := r.Group("/orders", a.requireNATS)
	g.POST("", httpserver.InFlightLimit(a.maxInFlight), a.create)
	g.GET("", a.list)
	g.GET("/:id", a.get)
	r.GET("/openapi.json", gin.WrapH(openapi.Handler(openapi.Order)))
}

// requireNATS answers 503 at once while NATS is unreachable.
func (a *API) requireNATS(c *gin.Context) {
	if err := a.connected(); err != nil {
		c.Error(fmt.Errorf("%w: %w", ErrUnavailable, err))
		c.Abort()
		return
	}
	ctx, cancel := context.WithTimeout(c.Request.Context(), a.timeout)
	defer cancel()
	c.Request = c.Request.WithContext(ctx)
	c.Next()
}

// createRequest is the body of POST /orders, already schema-valid when
// decoded.
type createRequest struct {
	CustomerID      string          `json:"customer_id"`
	Items           []events.Item   `json:"items"`
	PaymentToken    string          `json:"payment_token"`
	ShippingAddress *events.Address `json:"shipping_address,omitempty"`
}

// create accepts an order. The created event is the source of truth and the
// only write that makes the order (beside its customer index): an order is
// its events, and GET reads them. An Idempotency-Key
// names the order (its id is derived from the key), so the event's
// create-once publish is also the key's claim: a repeat finds the event and
// answers the same order if it asked the same (the publisher compares the
// stored event with this one), 422 otherwise. A request that dies anywhere
// is finished by its retry.
func (a *API) create(c *gin.Context) {
	ctx := c.Request.Context()
	// The server span (shared httpserver, otelgin) is the trace: its
	// context answers the traceparent, names the trace of every log line
	// and parents the created event. Without one (the API served bare, as
	// in some tests) the client's header or a new trace stands in.
	tp := tracing.Traceparent(oteltrace.SpanContextFromContext(ctx))
	if tp == "" {
		tp = c.GetHeader(headerTraceparent)
		if _, err := trace.Parse(tp); err != nil {
			tp = trace.New().String()
		}
	}
	c.Header(headerTraceparent, tp)
	c.Set("trace_id", trace.TraceID(tp))

	clientKey := c.GetHeader(headerIdemKey)
	if len(clientKey) > maxIdempotencyKey {
		c.Error(fmt.Errorf("%w: %d characters, at most %d", ErrInvalidIdempotencyKey, len(clientKey), maxIdempotencyKey))
		return
	}
	req, err := a.decode(c)
	if err != nil {
		c.Error(err)
		return
	}

	orderID := a.newID()
	if clientKey != "" {
		orderID = KeyedOrderID(clientKey)
	}
	c.Set("order_id", orderID)
	log := a.log.With(logging.Order(orderID, trace.TraceID(tp))...)

	eventTP := trace.Child(tp).String()
	now := a.now().UTC()
	o, err := order.New(order.Draft{ID: orderID, CustomerID: req.CustomerID, Items: store.Items(req.Items), CreatedAt: now, TraceParent: eventTP,
		ShipTo: (*order.Address)(req.ShippingAddress)})
	if err != nil {
		c.Error(err)
		return
	}
	// Listed before it exists: every order that exists is listed, and an
	// entry whose publish never happened names no order and is not shown.
	if err := a.orders.Index(ctx, o); err != nil {
		c.Error(err)
		return
	}
	pub, err := a.pub.Publish(ctx, events.OrderCreated, orderID, eventTP, events.OrderCreatedData{
		OrderID: orderID, CustomerID: req.CustomerID, Items: req.Items, PaymentToken: req.PaymentToken, CreatedAt: now,
		ShippingAddress: req.ShippingAddress,
	})
	if err != nil {
		c.Error(publishError(err))
		return
	}
	// A duplicate means an earlier attempt with this key published the
	// same request (another request is ErrConflictingDuplicate).
	status := order.StatusPending
	if pub.Duplicate {
		cur, err := a.orders.Find(ctx, orderID)
		if err != nil {
			c.Error(err)
			return
		}
		status = cur.Status
		log.Info("order request replayed", zap.String("status", string(status)))
	} else {
		log.Info("order accepted", zap.String("customer_id", req.CustomerID), zap.Int("items", len(req.Items)))
	}
	c.Header("Location", "/orders/"+orderID)
	c.JSON(http.StatusAccepted, api.OrderAccepted{OrderID: orderID, Status: string(status)})
}

// decode reads, validates and decodes the body.
func (a *API) decode(c *gin.Context) (createRequest, error) {
	var req createRequest
	body, err := io.ReadAll(http.MaxBytesReader(c.Writer, c.Request.Body, maxBody))
	if err != nil {
		return req, &RequestError{Errors: []string{"body: " + err.Error()}}
	}
	if err := a.registry.ValidateRequest("order.create-request", body); err != nil {
		if errors.Is(err, events.ErrInvalidEvent) {
			return req, requestError(err)
		}
		return req, err
	}
	if err := json.Unmarshal(body, &req); err != nil {
		return req, &RequestError{Errors: []string{"body: " + err.Error()}}
	}
	return req, nil
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

// view is an order as the API shows it (its documented body). The total is
// absent until known; the payment token is never stored, so it cannot
// leak.
func view(o order.Order) api.Order {
	v := api.Order{
		OrderID:         o.ID,
		CustomerID:      o.CustomerID,
		Status:          string(o.Status),
		Items:           each(o.Items, func(it order.Item) api.Item { return api.Item(it) }),
		Lines:           each(o.Lines, func(l order.Line) api.Line { return api.Line(l) }),
		CancelReason:    o.CancelReason,
		CancelDetail:    o.CancelDetail,
		CreatedAt:       o.CreatedAt,
		UpdatedAt:       o.UpdatedAt,
		ShippingAddress: (*api.ShippingAddress)(o.ShipTo),
	}
	if o.TotalKnown() {
		total := o.TotalCents
		v.TotalCents, v.Currency = &total, o.Currency
	}
	return v
}

// each converts the order's items or lines into their documented bodies
// (the same fields); nil stays nil.
func each[T, U any](in []T, conv func(T) U) []U {
	if in == nil {
		return nil
	}
	out := make([]U, len(in))
	for i, x := range in {
		out[i] = conv(x)
	}
	return out
}

// get returns one order as its events tell it.
func (a *API) get(c *gin.Context) {
	id := c.Param("id")
	if !events.ValidID(id) {
		c.Error(fmt.Errorf("order id %q: %w", id, events.ErrInvalidID))
		return
	}
	c.Set("order_id", id)
	o, err := a.orders.Find(c.Request.Context(), id)
	if err != nil {
		c.Error(err)
		return
	}
	c.Set("trace_id", trace.TraceID(o.TraceParent))
	c.JSON(http.StatusOK, view(o))
}

// list returns a page of a customer's orders, newest first: at most limit
// (default 50, at most 200), after the opaque cursor a previous page
// answered as next.
func (a *API) list(c *gin.Context) {
	customerID := c.Query("customer_id")
	if customerID == "" {
		c.Error(ErrMissingCustomer)
		return
	}
	limit := defaultPageSize
	if raw, ok := c.GetQuery("limit"); ok {
		n, err := strconv.Atoi(raw)
		if err != nil || n < 1 || n > maxPageSize {
			c.Error(fmt.Errorf("%w: %q is not a whole number from 1 to %d", ErrInvalidLimit, raw, maxPageSize))
			return
		}
		limit = n
	}
	var after *store.Cursor
	if raw, ok := c.GetQuery("cursor"); ok {
		cur, err := decodeCursor(raw)
		if err != nil {
			c.Error(err)
			return
		}
		after = &cur
	}
	orders, next, err := a.orders.ListByCustomer(c.Request.Context(), customerID, after, limit)
	if err != nil {
		c.Error(err)
		return
	}
	out := api.OrderList{Orders: make([]api.Order, 0, len(orders))}
	for _, o := range orders {
		out.Orders = append(out.Orders, view(o))
	}
	if next != nil {
		out.Next = encodeCursor(*next)
	}
	c.JSON(http.StatusOK, out)
}

// cursorJSON is what an opaque cursor holds.
type cursorJSON struct {
	CreatedAt time.Time `json:"t"`
	OrderID   string    `json:"o"`
}

func encodeCursor(c store.Cursor) string {
	raw, err := json.Marshal(cursorJSON{CreatedAt: c.CreatedAt, OrderID: c.OrderID})
	if err != nil { // a time and a string always encode
		panic(err)
	}
	return base64.RawURLEncoding.EncodeToString(raw)
}

func decodeCursor(s string) (store.Cursor, error) {
	raw, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil || len(raw) > 256 {
		return store.Cursor{}, fmt.Errorf("%w: not a cursor this API answered", ErrInvalidCursor)
	}
	var c cursorJSON
	if err := json.Unmarshal(raw, &c); err != nil || !events.ValidID(c.OrderID) {
		return store.Cursor{}, fmt.Errorf("%w: not a cursor this API answered", ErrInvalidCursor)
	}
	return store.Cursor{CreatedAt: c.CreatedAt, OrderID: c.OrderID}, nil
}
