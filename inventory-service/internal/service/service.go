// Package service wires the inventory service together: NATS, the INVENTORY
// stream and the inventory KV bucket, the orders consumer and the HTTP API,
// and runs them until its context ends.
package service

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"go.uber.org/zap"

	"github.com/eventshop/inventory-service/internal/cas"
	"github.com/eventshop/inventory-service/internal/config"
	"github.com/eventshop/inventory-service/internal/consumer"
	"github.com/eventshop/inventory-service/internal/httpapi"
	"github.com/eventshop/inventory-service/internal/store"
	"github.com/eventshop/shared/events"
	jsconsumer "github.com/eventshop/shared/platform/consumer"
	"github.com/eventshop/shared/platform/deadletter"
	"github.com/eventshop/shared/platform/httpserver"
	"github.com/eventshop/shared/platform/lifecycle"
	"github.com/eventshop/shared/platform/metrics"
	"github.com/eventshop/shared/platform/natsconn"
	"github.com/eventshop/shared/platform/natsmetrics"
)

// Name is the service name: the event source, the metrics label and the
// NATS client name.
const Name = "inventory-service"

// ErrInvalidOption is returned by an option given a value it cannot use.
var ErrInvalidOption = errors.New("invalid option")

type options struct {
	now func() time.Time
}

// Option configures New.
type Option func(*options) error

// WithClock sets the clock that stamps records and events (tests).
func WithClock(now func() time.Time) Option {
	return func(o *options) error {
		if now == nil {
			return fmt.Errorf("clock: %w", ErrInvalidOption)
		}
		o.now = now
		return nil
	}
}

// Service is the running inventory service.
type Service struct {
	cfg    config.Config
	log    *zap.Logger
	nc     *nats.Conn
	store  *store.Store
	http   *httpserver.Server
	runner *jsconsumer.Runner
	dlq    *deadletter.Kit
	broker *natsmetrics.Collector // lag of its durable, size of INVENTORY
}

// New connects to NATS, makes sure the INVENTORY stream and the inventory
// bucket exist, builds the consumer and the HTTP server and binds its
// address. It waits for NATS as long as ctx allows.
func New(ctx context.Context, cfg config.Config, log *zap.Logger, opts ...Option) (*Service, error) {
	o := options{now: time.Now}
	for _, opt := range opts {
		if err := opt(&o); err != nil {
			return nil, err
		}
	}
	return natsconn.Open(cfg.NATS(Name), log, func(nc *nats.Conn, js jetstream.JetStream) (*Service, error) {
		return build(ctx, cfg, log, o, nc, js)
	})
}

func build(ctx context.Context, cfg config.Config, log *zap.Logger, o options, nc *nats.Conn, js jetstream.JetStream) (*Service, error) {
	st, err := provision(ctx, cfg, log, js)
	if err != nil {
		return nil, err
	}
	reg := metrics.NewRegistry(Name)
	mreg := metrics.Registerer(reg, Name)
	consumerMetrics, err := jsconsumer.NewMetrics(mreg)
	if err != nil {
		return nil, fmt.Errorf("consumer metrics: %w", err)
	}
	reservationMetrics, err := consumer.NewMetrics(mreg)
	if err != nil {
		return nil, err
	}
	retrier, err := cas.New(mreg, cas.WithAttempts(cfg.CASAttempts))
	if err != nil {
		return nil, err
	}
	pub, err := events.NewPublisher(js, Name, events.WithClock(o.now))
	if err != nil {
		return nil, err
	}
	orders, err := consumer.NewOrders(st, pub, retrier, log, consumer.WithClock(o.now), consumer.WithMetrics(reservationMetrics))
	if err != nil {
		return nil, err
	}
	rc := consumer.RunnerConfig(cfg.ConsumerConcurrency, cfg.ConsumerMaxDeliver)
	rc.DeadLetterReplicas = cfg.StreamReplicas
	runner, err := jsconsumer.New(js, rc, orders.Handle, log,
		jsconsumer.WithMetrics(consumerMetrics))
	if err != nil {
		return nil, fmt.Errorf("orders consumer: %w", err)
	}
	// Dead letters of INVENTORY events (whoever gave up on them) are
	// managed here: only this service may re-publish them.
	dlq, err := deadletter.Setup(js, deadletter.Config{
		Service: Name, Stream: events.StreamInventory, Consumers: []*jsconsumer.Runner{runner}, Replicas: cfg.StreamReplicas,
	}, log, mreg, consumerMetrics)
	if err != nil {
		return nil, err
	}
	broker, err := natsmetrics.New(js, log, mreg, natsmetrics.WithConsumers(runner),
		natsmetrics.WithStreams(events.StreamInventory), natsmetrics.WithInterval(cfg.BrokerMetricsInterval))
	if err != nil {
		return nil, err
	}
	srv, err := httpserver.New(httpserver.Config{Addr: cfg.HTTPAddr, Service: Name, ProfileToken: cfg.ProfileToken(), MaxConns: cfg.MaxConns}, log, reg, httpapi.MapError)
	if err != nil {
		return nil, err
	}
	httpapi.New(st, retrier, log, o.now).Register(srv.Engine, cfg.AdminToken)
	dlq.Register(srv.Engine, cfg.AdminToken)
	srv.AddReadyCheck("nats", func(context.Context) error { return natsconn.Ready(nc) })
	srv.AddReadyCheck("consumer", func(context.Context) error { return runner.Ready() })
	srv.AddReadyCheck("dlq-capture", dlq.Ready)
	if cfg.AdminToken == "" {
		log.Warn("ADMIN_TOKEN is not set: PUT /inventory/{sku} and /admin/dlq refuse every request")
	}
	if err := srv.Listen(); err != nil {
		return nil, err
	}
	return &Service{cfg: cfg, log: log, nc: nc, store: st, http: srv, runner: runner, dlq: dlq, broker: broker}, nil
}

// provision creates the stream the service owns and opens its bucket,
// retrying while NATS is not reachable yet (containers start in any order).
func provision(ctx context.Context, cfg config.Config, log *zap.Logger, js jetstream.JetStream) (*store.Store, error) {
	var st *store.Store
	err := natsconn.Ensure(ctx, log, "provision stream and bucket", func(ctx context.Context) error {
		if _, err := events.EnsureStream(ctx, js, events.StreamInventory, events.StreamOptions{Replicas: cfg.StreamReplicas}); err != nil {
			return err
		}
		var err error
		st, err = store.Open(ctx, js, store.Options{Replicas: cfg.StreamReplicas})
		return err
	}, natsconn.WithAttemptTimeout(5*time.Second))
	if err != nil {
		return nil, err
	}
	return st, nil
}

// Addr returns the address the HTTP server is bound to (useful with
// HTTP_ADDR "127.0.0.1:0").
func (s *Service) Addr() string { return s.http.Addr() }

// Store returns the service's KV store (tests inspect the state with it).
func (s *Service) Store() *store.Store { return s.store }

// Run serves HTTP and consumes until ctx ends, then shuts down in order:
// HTTP, consumer drain, NATS drain.
func (s *Service) Run(ctx context.Context) error {
	return lifecycle.Run(ctx, s.log, lifecycle.Parts{
		HTTP: s.http,
		// The advisory capture first: its stream must listen before the
		// consumer it watches delivers anything.
		Consumers:       []lifecycle.Consumer{s.dlq.Capture, s.runner, s.broker},
		Conn:            s.nc,
		Background:      []func(context.Context) error{s.dlq.Letters.Watch},
		ShutdownTimeout: s.cfg.ShutdownTimeout,
	})
}
