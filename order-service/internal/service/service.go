// Package service wires the order service together: NATS, the ORDERS
// stream, the KV buckets, the consumers and the HTTP API.
package service

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"go.uber.org/zap"

	"github.com/eventshop/order-service/internal/config"
	ordconsumer "github.com/eventshop/order-service/internal/consumer"
	"github.com/eventshop/order-service/internal/httpapi"
	"github.com/eventshop/order-service/internal/openorders"
	"github.com/eventshop/order-service/internal/store"
	"github.com/eventshop/shared/events"
	"github.com/eventshop/shared/platform/consumer"
	"github.com/eventshop/shared/platform/deadletter"
	"github.com/eventshop/shared/platform/httpserver"
	"github.com/eventshop/shared/platform/lifecycle"
	"github.com/eventshop/shared/platform/metrics"
	"github.com/eventshop/shared/platform/natsconn"
	"github.com/eventshop/shared/platform/natsmetrics"
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
	cfg       config.Config
	log       *zap.Logger
	nc        *nats.Conn
	http      *httpserver.Server
	consumers []*consumer.Runner
	dlq       *deadletter.Kit
	broker    *natsmetrics.Collector // lag of its durables, size of ORDERS
	open      *openorders.Watch      // age of the oldest order not final
}

// New connects to NATS, makes sure the ORDERS stream and the KV buckets
// exist (waiting for NATS while ctx allows), wires the consumers and the
// HTTP API, and binds the HTTP listener so Addr is known before Run.
func New(ctx context.Context, cfg config.Config, log *zap.Logger, opts ...Option) (*Service, error) {
	o := options{now: time.Now}
	for _, opt := range opts {
		if err := opt(&o); err != nil {
			return nil, err
		}
	}
	log.Info("starting", cfg.Fields()...)
	return natsconn.Open(cfg.NATS(Name), log, func(nc *nats.Conn, js jetstream.JetStream) (*Service, error) {
		return wire(ctx, cfg, log, nc, js, o)
	})
}

func wire(ctx context.Context, cfg config.Config, log *zap.Logger, nc *nats.Conn, js jetstream.JetStream, o options) (*Service, error) {
	var (
		ordersKV jetstream.KeyValue
		legacy   uint64
	)
	// The service may start before NATS does: wait for it while ctx allows.
	err := natsconn.Ensure(ctx, log, "set up stream and buckets", func(ctx context.Context) error {
		var err error
		if _, err = events.EnsureStream(ctx, js, events.StreamOrders, events.StreamOptions{Replicas: cfg.StreamReplicas}); err != nil {
			return err
		}
		if ordersKV, err = store.EnsureBucket(ctx, js, cfg.StreamReplicas); err != nil {
			return err
		}
		legacy, err = store.LegacyHorizon(ctx, js)
		return err
	})
	if err != nil {
		return nil, err
	}

	registry := events.DefaultRegistry()
	pub, err := events.NewPublisher(js, Name, events.WithClock(o.now))
	if err != nil {
		return nil, err
	}
	orders, err := store.NewOrders(ordersKV, js, store.WithLegacyHorizon(legacy))
	if err != nil {
		return nil, err
	}

	reg := metrics.NewRegistry(Name)
	cm, err := consumer.NewMetrics(metrics.Registerer(reg, Name))
	if err != nil {
		return nil, fmt.Errorf("consumer metrics: %w", err)
	}
	om, err := ordconsumer.NewMetrics(metrics.Registerer(reg, Name))
	if err != nil {
		return nil, err
	}
	handler, err := ordconsumer.NewHandler(orders, pub, log, ordconsumer.WithClock(o.now), ordconsumer.WithMetrics(om))
	if err != nil {
		return nil, err
	}
	// Orders not final within ORDER_DEADLINE are cancelled (timeout).
	deadlines, err := ordconsumer.NewDeadlines(handler, cfg.OrderDeadline)
	if err != nil {
		return nil, err
	}
	var runners []*consumer.Runner
	for _, c := range []struct {
		cfg    consumer.Config
		handle consumer.Handler
	}{
		{ordconsumer.InventoryConfig(cfg.ConsumerConcurrency), handler.Handle},
		{ordconsumer.PaymentsConfig(cfg.ConsumerConcurrency), handler.Handle},
		{ordconsumer.DeadlinesConfig(cfg.ConsumerConcurrency), deadlines.Handle},
	} {
		cc := c.cfg
		cc.DeadLetterReplicas = cfg.StreamReplicas
		r, err := consumer.New(js, cc, c.handle, log, consumer.WithMetrics(cm))
		if err != nil {
			return nil, fmt.Errorf("consumer %s: %w", cc.Durable, err)
		}
		runners = append(runners, r)
	}
	// Dead letters of ORDERS events (whoever gave up on them) are managed
	// here: only this service may re-publish them.
	dlq, err := deadletter.Setup(js, deadletter.Config{
		Service: Name, Stream: events.StreamOrders, Consumers: runners, Replicas: cfg.StreamReplicas,
	}, log, metrics.Registerer(reg, Name), cm)
	if err != nil {
		return nil, err
	}
	broker, err := natsmetrics.New(js, log, metrics.Registerer(reg, Name), natsmetrics.WithConsumers(runners...),
		natsmetrics.WithStreams(events.StreamOrders), natsmetrics.WithInterval(cfg.BrokerMetricsInterval))
	if err != nil {
		return nil, err
	}
	// The oldest order not final against ORDER_DEADLINE (the alert
	// OrderPastDeadline), read from the deadline consumer like its lag.
	open, err := openorders.New(js, ordconsumer.DeadlinesDurable, cfg.OrderDeadline, log, metrics.Registerer(reg, Name),
		openorders.WithInterval(cfg.BrokerMetricsInterval), openorders.WithClock(o.now))
	if err != nil {
		return nil, err
	}

	srv, err := httpserver.New(httpserver.Config{Addr: cfg.HTTPAddr, Service: Name, ProfileToken: cfg.ProfileToken(), MaxConns: cfg.MaxConns}, log, reg, httpapi.MapError)
	if err != nil {
		return nil, err
	}
	apiOpts := []httpapi.Option{
		httpapi.WithClock(o.now),
		httpapi.WithRequestTimeout(cfg.RequestTimeout),
		httpapi.WithInFlightLimit(cfg.MaxInFlight),
		httpapi.WithConnCheck(func() error { return natsconn.Ready(nc) }),
	}
	if o.newID != nil {
		apiOpts = append(apiOpts, httpapi.WithIDSource(o.newID))
	}
	api, err := httpapi.New(orders, pub, registry, log, apiOpts...)
	if err != nil {
		return nil, err
	}
	api.Register(srv.Engine)
	dlq.Register(srv.Engine, cfg.AdminToken)
	srv.AddReadyCheck("nats", func(context.Context) error { return natsconn.Ready(nc) })
	srv.AddReadyCheck("dlq-capture", dlq.Ready)
	for _, r := range runners {
		srv.AddReadyCheck("consumer:"+r.Name(), func(context.Context) error { return r.Ready() })
	}
	if err := srv.Listen(); err != nil {
		return nil, err
	}
	return &Service{cfg: cfg, log: log, nc: nc, http: srv, consumers: runners, dlq: dlq, broker: broker, open: open}, nil
}

// Addr returns the address the HTTP server is bound to.
func (s *Service) Addr() string { return s.http.Addr() }

// Run serves HTTP and runs the consumers until ctx ends, then shuts down in
// order: HTTP, consumers (in-flight messages finish), NATS connection.
func (s *Service) Run(ctx context.Context) error {
	// The advisory capture starts first: its stream must be listening
	// before the consumers it watches deliver anything.
	consumers := []lifecycle.Consumer{s.dlq.Capture}
	for _, r := range s.consumers {
		consumers = append(consumers, r)
	}
	consumers = append(consumers, s.broker, s.open)
	return lifecycle.Run(ctx, s.log, lifecycle.Parts{
		HTTP:            s.http,
		Consumers:       consumers,
		Conn:            s.nc,
		Background:      []func(context.Context) error{s.dlq.Letters.Watch},
		ShutdownTimeout: s.cfg.ShutdownTimeout,
	})
}
