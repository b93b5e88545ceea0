// Package service declares the order service on the kit: the ORDERS stream
// and the orders bucket it owns, its consumers (inventory and payment
// outcomes, deadlines), its HTTP API and the open-orders watch.
package service

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/nats-io/nats.go/jetstream"
	"go.uber.org/zap"

	"github.com/eventshop/order-service/internal/app"
	"github.com/eventshop/order-service/internal/config"
	"github.com/eventshop/order-service/internal/consumer"
	"github.com/eventshop/order-service/internal/httpapi"
	"github.com/eventshop/order-service/internal/openorders"
	"github.com/eventshop/order-service/internal/store"
	"github.com/eventshop/shared/events"
	"github.com/eventshop/shared/platform/kit"
	"github.com/eventshop/shared/platform/lifecycle"
	"github.com/eventshop/shared/platform/natsconn"
)

// Name is the service name: event source, metrics label, NATS client name.
const Name = "order-service"

// ErrInvalidOption is returned by an option given a value it cannot use.
var ErrInvalidOption = errors.New("invalid option")

// Option configures a Service.
type Option func(*options) error

type options struct {
	now   func() time.Time
	newID func() string
}

// WithClock sets the clock for created_at, updated_at and event times.
func WithClock(now func() time.Time) Option {
	return func(o *options) error {
		if now == nil {
			return fmt.Errorf("clock: %w", ErrInvalidOption)
		}
		o.now = now
		return nil
	}
}

// WithIDSource sets the order id generator.
func WithIDSource(newID func() string) Option {
	return func(o *options) error {
		if newID == nil {
			return fmt.Errorf("id source: %w", ErrInvalidOption)
		}
		o.newID = newID
		return nil
	}
}

// Service is a wired order service, ready to Run.
type Service struct {
	*kit.Service
}

// New connects to NATS, makes sure the ORDERS stream and the orders bucket
// exist (waiting for NATS while ctx allows), wires the consumers and the
// HTTP API, and binds the HTTP listener so Addr is known before Run.
func New(ctx context.Context, cfg config.Config, log *zap.Logger, opts ...Option) (*Service, error) {
	o := options{now: time.Now}
	for _, opt := range opts {
		if err := opt(&o); err != nil {
			return nil, err
		}
	}
	var (
		ordersKV jetstream.KeyValue
		legacy   uint64
	)
	svc, err := kit.New(ctx, kit.Config{
		Name: Name, Base: cfg.Base, Log: log,
		Streams: []string{events.StreamOrders}, EnsureStream: events.EnsureOwnedStream,
		Setup: func(ctx context.Context, js jetstream.JetStream) (err error) {
			if ordersKV, err = store.EnsureBucket(ctx, js, cfg.StreamReplicas); err != nil {
				return err
			}
			legacy, err = store.LegacyHorizon(ctx, js)
			return err
		},
		// Dead letters of ORDERS events (whoever gave up on them) are
		// managed here: only this service may re-publish them.
		DeadLetters: events.StreamOrders,
	}, func(p *kit.Platform) (kit.Wiring, error) {
		orders, err := store.NewOrders(ordersKV, p.JS, store.WithLegacyHorizon(legacy))
		if err != nil {
			return kit.Wiring{}, err
		}
		return wire(cfg, o, p, orders)
	})
	if err != nil {
		return nil, err
	}
	return &Service{Service: svc}, nil
}

func wire(cfg config.Config, o options, p *kit.Platform, orders *store.Orders) (kit.Wiring, error) {
	pub, err := events.NewPublisher(p.JS, Name, events.WithClock(o.now))
	if err != nil {
		return kit.Wiring{}, err
	}
	m := app.NewMetrics(p.Metrics)
	// Orders not final within ORDER_DEADLINE are cancelled (timeout).
	appOpts := []app.Option{app.WithClock(o.now), app.WithMetrics(m), app.WithDeadline(cfg.OrderDeadline)}
	if o.newID != nil {
		appOpts = append(appOpts, app.WithIDSource(o.newID))
	}
	a, err := app.New(orders, pub, p.Log, appOpts...)
	if err != nil {
		return kit.Wiring{}, err
	}
	// The oldest order not final against ORDER_DEADLINE (the alert
	// OrderPastDeadline), read from the deadline consumer like its lag.
	open, err := openorders.New(p.JS, consumer.DeadlinesDurable, cfg.OrderDeadline, p.Log, p.Metrics,
		openorders.WithInterval(cfg.BrokerMetricsInterval), openorders.WithClock(o.now))
	if err != nil {
		return kit.Wiring{}, err
	}
	api, err := httpapi.New(a, events.DefaultRegistry(),
		httpapi.WithRequestTimeout(cfg.RequestTimeout),
		httpapi.WithInFlightLimit(cfg.MaxInFlight),
		httpapi.WithConnCheck(func() error { return natsconn.Ready(p.Conn) }),
	)
	if err != nil {
		return kit.Wiring{}, err
	}
	return kit.Wiring{
		Consumers: consumer.Consumers(a, cfg.ConsumerConcurrency),
		Routes:    func(r *gin.Engine) { api.Register(r) },
		MapError:  httpapi.MapError,
		Parts:     []lifecycle.Consumer{open},
	}, nil
}
