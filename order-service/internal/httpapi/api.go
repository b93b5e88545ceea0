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
	oteltrace "go.opentelemetry.io/otel/trace"

	"github.com/eventshop/order-service/internal/app"
	"github.com/eventshop/order-service/internal/order"
	"github.com/eventshop/shared/api"
	"github.com/eventshop/shared/api/openapi"
	"github.com/eventshop/shared/events"
	"github.com/eventshop/shared/platform/httpserver"
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

// API holds the order endpoints.
type API struct {
	app       *app.App
	registry  *events.Registry
	connected func() error
	timeout   time.Duration
	// maxInFlight bounds POST /orders in progress (0: no limit).
	maxInFlight int
}

// Option configures an API.
type Option func(*API) error

// ErrInvalidOption is returned by an option given a value it cannot use.
var ErrInvalidOption = errors.New("invalid option")

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

// New returns the API over the use cases; registry validates request
// bodies.
func New(a *app.App, registry *events.Registry, opts ...Option) (*API, error) {
	if a == nil || registry == nil {
		return nil, fmt.Errorf("app and registry are required: %w", ErrInvalidOption)
	}
	h := &API{
		app: a, registry: registry,
		connected: func() error { return nil },
		timeout:   5 * time.Second,
	}
	for _, opt := range opts {
		if err := opt(h); err != nil {
			return nil, err
		}
	}
	return h, nil
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
		c.Error(fmt.Errorf("%w: %w", app.ErrUnavailable, err))
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

// create accepts an order (app.Create): it answers 202 with the order's
// id and status, and the order's trace as traceparent.
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
	placed, err := a.app.Create(ctx, app.Placement{
		IdempotencyKey: clientKey, CustomerID: req.CustomerID, Items: req.Items, PaymentToken: req.PaymentToken,
		ShippingAddress: req.ShippingAddress, TraceParent: tp,
	})
	c.Set("order_id", placed.OrderID)
	if err != nil {
		c.Error(err)
		return
	}
	c.Header("Location", "/orders/"+placed.OrderID)
	c.JSON(http.StatusAccepted, api.OrderAccepted{OrderID: placed.OrderID, Status: string(placed.Status)})
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
	o, err := a.app.Get(c.Request.Context(), id)
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
	var after *app.Cursor
	if raw, ok := c.GetQuery("cursor"); ok {
		cur, err := decodeCursor(raw)
		if err != nil {
			c.Error(err)
			return
		}
		after = &cur
	}
	orders, next, err := a.app.List(c.Request.Context(), customerID, after, limit)
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

func encodeCursor(c app.Cursor) string {
	raw, err := json.Marshal(cursorJSON{CreatedAt: c.CreatedAt, OrderID: c.OrderID})
	if err != nil { // a time and a string always encode
		panic(err)
	}
	return base64.RawURLEncoding.EncodeToString(raw)
}

func decodeCursor(s string) (app.Cursor, error) {
	raw, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil || len(raw) > 256 {
		return app.Cursor{}, fmt.Errorf("%w: not a cursor this API answered", ErrInvalidCursor)
	}
	var c cursorJSON
	if err := json.Unmarshal(raw, &c); err != nil || !events.ValidID(c.OrderID) {
		return app.Cursor{}, fmt.Errorf("%w: not a cursor this API answered", ErrInvalidCursor)
	}
	return app.Cursor{CreatedAt: c.CreatedAt, OrderID: c.OrderID}, nil
}
