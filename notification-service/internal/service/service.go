// Package service wires the notification service: NATS connection, the
// NOTIFICATIONS stream and the notifications bucket it owns, the channel,
// the consumer on ORDERS and the HTTP API.
package service

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"

	"github.com/eventshop/notification-service/internal/channel"
	"github.com/eventshop/notification-service/internal/config"
	notifyconsumer "github.com/eventshop/notification-service/internal/consumer"
	"github.com/eventshop/notification-service/internal/httpapi"
	"github.com/eventshop/notification-service/internal/store"
	"github.com/eventshop/shared/events"
	"github.com/eventshop/shared/platform/consumer"
	"github.com/eventshop/shared/platform/deadletter"
	"github.com/eventshop/shared/platform/httpserver"
	"github.com/eventshop/shared/platform/lifecycle"
	"github.com/eventshop/shared/platform/metrics"
	"github.com/eventshop/shared/platform/natsconn"
	"github.com/eventshop/shared/platform/natsmetrics"
)

// Name is the service name in logs, metrics and event sources.
const Name = "notification-service"

// The retry schedule of the orders consumer (the webhook channel retries
// within one delivery first): NakWithDelay after 0.5-1s, doubling up to
// 30-60s (full jitter); after 10 deliveries (several minutes) the message
// is dead-lettered. Invalid events are dead-lettered at once.
const maxDeliver = 10

var retry = consumer.Backoff{Initial: time.Second, Max: time.Minute, Multiplier: 2}

// Service is a wired notification service, ready to Run.
type Service struct {
	cfg      config.Config
	log      *zap.Logger
	nc       *nats.Conn
	http     *httpserver.Server
	consumer *consumer.Runner
	registry *prometheus.Registry
	dlq      *deadletter.Kit
	broker   *natsmetrics.Collector // lag of its durable, size of NOTIFICATIONS
}

// Option configures a Service.
type Option func(*options) error

type options struct {
	now        func() time.Time
	httpClient *http.Client
}

// WithClock sets the clock of the notification records (tests).
func WithClock(now func() time.Time) Option {
	return func(o *options) error {
		if now == nil {
			return errors.New("clock is nil")
		}
		o.now = now
		return nil
	}
}

// WithHTTPClient sets the webhook's HTTP client (tests).
func WithHTTPClient(c *http.Client) Option {
	return func(o *options) error {
		if c == nil {
			return errors.New("http client is nil")
		}
		o.httpClient = c
		return nil
	}
}

// New connects to NATS, ensures the stream and bucket the service owns,
// builds the channel, consumer and HTTP API, and binds the HTTP listener so
// that Addr is known before Run.
func New(ctx context.Context, cfg config.Config, log *zap.Logger, opts ...Option) (*Service, error) {
	o := options{now: time.Now}
	for _, opt := range opts {
		if err := opt(&o); err != nil {
			return nil, fmt.Errorf("service option: %w", err)
		}
	}
	return natsconn.Open(cfg.NATS(Name), log, func(nc *nats.Conn, js jetstream.JetStream) (*Service, error) {
		return build(ctx, cfg, log, nc, js, o)
	})
}

func build(ctx context.Context, cfg config.Config, log *zap.Logger, nc *nats.Conn, js jetstream.JetStream, o options) (*Service, error) {
	var notifications *store.Notifications
	// NATS may come up after the service (RetryOnFailedConnect): keep
	// trying to create what the service owns until ctx ends.
	err := natsconn.Ensure(ctx, log, "ensure stream and bucket", func(ctx context.Context) error {
		if _, err := events.EnsureStream(ctx, js, events.StreamNotifications, events.StreamOptions{Replicas: cfg.StreamReplicas}); err != nil {
			return err
		}
		var err error
		notifications, err = store.Open(ctx, js, cfg.StreamReplicas)
		return err
	})
	if err != nil {
		return nil, err
	}

	reg := metrics.NewRegistry(Name)
	consumerMetrics, err := consumer.NewMetrics(metrics.Registerer(reg, Name))
	if err != nil {
		return nil, fmt.Errorf("consumer metrics: %w", err)
	}
	notifyMetrics, err := notifyconsumer.NewMetrics(metrics.Registerer(reg, Name))
	if err != nil {
		return nil, fmt.Errorf("notification metrics: %w", err)
	}

	ch, err := newChannel(cfg, log, o)
	if err != nil {
		return nil, err
	}
	pub, err := events.NewPublisher(js, Name, events.WithClock(o.now))
	if err != nil {
		return nil, fmt.Errorf("publisher: %w", err)
	}
	hopts := []notifyconsumer.Option{notifyconsumer.WithClock(o.now), notifyconsumer.WithMetrics(notifyMetrics)}
	if cfg.Channel == config.ChannelLog {
		// A log line cannot fail half way: send, then record it sent.
		hopts = append(hopts, notifyconsumer.WithoutPendingRecord())
	}
	h, err := notifyconsumer.NewHandler(notifications, ch, cfg.Channel, pub, log, hopts...)
	if err != nil {
		return nil, err
	}
	runner, err := consumer.New(js, consumer.Config{
		Stream:             events.StreamOrders,
		Durable:            notifyconsumer.Durable,
		FilterSubjects:     notifyconsumer.FilterSubjects,
		Concurrency:        cfg.ConsumerConcurrency,
		AckWait:            cfg.AckWait(),
		MaxDeliver:         maxDeliver,
		Retry:              retry,
		DeadLetterReplicas: cfg.StreamReplicas,
	}, h.Handle, log, consumer.WithMetrics(consumerMetrics))
	if err != nil {
		return nil, fmt.Errorf("consumer: %w", err)
	}
	// Dead letters of NOTIFICATIONS events (whoever gave up on them) are
	// managed here: only this service may re-publish them.
	dlq, err := deadletter.Setup(js, deadletter.Config{
		Service: Name, Stream: events.StreamNotifications, Consumers: []*consumer.Runner{runner}, Replicas: cfg.StreamReplicas,
	}, log, metrics.Registerer(reg, Name), consumerMetrics)
	if err != nil {
		return nil, err
	}
	broker, err := natsmetrics.New(js, log, metrics.Registerer(reg, Name), natsmetrics.WithConsumers(runner),
		natsmetrics.WithStreams(events.StreamNotifications), natsmetrics.WithInterval(cfg.BrokerMetricsInterval))
	if err != nil {
		return nil, err
	}

	srv, err := httpserver.New(httpserver.Config{Addr: cfg.HTTPAddr, Service: Name, ProfileToken: cfg.ProfileToken(), MaxConns: cfg.MaxConns}, log, reg, httpapi.MapError)
	if err != nil {
		return nil, err
	}
	srv.AddReadyCheck("nats", func(context.Context) error { return natsconn.Ready(nc) })
	srv.AddReadyCheck("consumer", func(context.Context) error { return runner.Ready() })
	srv.AddReadyCheck("dlq-capture", dlq.Ready)
	httpapi.Register(srv.Engine, notifications)
	dlq.Register(srv.Engine, cfg.AdminToken)
	if err := srv.Listen(); err != nil {
		return nil, err
	}
	return &Service{cfg: cfg, log: log, nc: nc, http: srv, consumer: runner, registry: reg, dlq: dlq, broker: broker}, nil
}

func newChannel(cfg config.Config, log *zap.Logger, o options) (notifyconsumer.Channel, error) {
	switch cfg.Channel {
	case config.ChannelWebhook:
		client := o.httpClient
		if client == nil {
			client = &http.Client{Timeout: cfg.WebhookTimeout}
		}
		return channel.NewWebhook(cfg.WebhookURL, cfg.WebhookSecret, log,
			channel.WithHTTPClient(client), channel.WithRetry(cfg.WebhookInitialInterval, cfg.WebhookMaxElapsed))
	default:
		return channel.NewLog(log), nil
	}
}

// Addr returns the bound HTTP address (useful with HTTP_ADDR=127.0.0.1:0).
func (s *Service) Addr() string { return s.http.Addr() }

// Registry returns the service's metrics registry.
func (s *Service) Registry() *prometheus.Registry { return s.registry }

// Run serves HTTP and consumes until ctx ends, then shuts down in order.
func (s *Service) Run(ctx context.Context) error {
	return lifecycle.Run(ctx, s.log, lifecycle.Parts{
		HTTP: s.http,
		// The advisory capture first: its stream must listen before the
		// consumer it watches delivers anything.
		Consumers:       []lifecycle.Consumer{s.dlq.Capture, s.consumer, s.broker},
		Conn:            s.nc,
		Background:      []func(context.Context) error{s.dlq.Letters.Watch},
		ShutdownTimeout: s.cfg.ShutdownTimeout,
	})
}
