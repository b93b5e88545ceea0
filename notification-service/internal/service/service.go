// Package service declares the notification service on the kit: the
// NOTIFICATIONS stream and the notifications bucket it owns, the channel
// (log or webhook), the consumer on ORDERS and the HTTP API.
package service

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/nats-io/nats.go/jetstream"
	"go.uber.org/zap"

	"github.com/eventshop/notification-service/internal/app"
	"github.com/eventshop/notification-service/internal/channel"
	"github.com/eventshop/notification-service/internal/config"
	"github.com/eventshop/notification-service/internal/consumer"
	"github.com/eventshop/notification-service/internal/httpapi"
	"github.com/eventshop/notification-service/internal/store"
	"github.com/eventshop/shared/events"
	"github.com/eventshop/shared/platform/kit"
)

// Name is the service name in logs, metrics and event sources.
const Name = "notification-service"

// Service is a wired notification service, ready to Run.
type Service struct {
	*kit.Service
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
	var notifications *store.Notifications
	svc, err := kit.New(ctx, kit.Config{
		Name: Name, Base: cfg.Base, Log: log,
		Streams: []string{events.StreamNotifications}, EnsureStream: events.EnsureOwnedStream,
		Setup: func(ctx context.Context, js jetstream.JetStream) (err error) {
			notifications, err = store.Open(ctx, js, cfg.StreamReplicas)
			return err
		},
		// Dead letters of NOTIFICATIONS events (whoever gave up on them)
		// are managed here: only this service may re-publish them.
		DeadLetters: events.StreamNotifications,
	}, func(p *kit.Platform) (kit.Wiring, error) { return wire(cfg, o, p, notifications) })
	if err != nil {
		return nil, err
	}
	return &Service{Service: svc}, nil
}

func wire(cfg config.Config, o options, p *kit.Platform, notifications *store.Notifications) (kit.Wiring, error) {
	ch, err := newChannel(cfg, p.Log, o)
	if err != nil {
		return kit.Wiring{}, err
	}
	pub, err := events.NewPublisher(p.JS, Name, events.WithClock(o.now))
	if err != nil {
		return kit.Wiring{}, fmt.Errorf("publisher: %w", err)
	}
	opts := []app.Option{app.WithClock(o.now), app.WithMetrics(p.Metrics)}
	if cfg.Channel == config.ChannelLog {
		// A log line cannot fail half way: send, then record it sent.
		opts = append(opts, app.WithoutPendingRecord())
	}
	a, err := app.New(notifications, ch, cfg.Channel, pub, p.Log, opts...)
	if err != nil {
		return kit.Wiring{}, err
	}
	return kit.Wiring{
		Consumers: consumer.Consumers(a, cfg.ConsumerConcurrency, cfg.AckWait()),
		Routes:    func(r *gin.Engine) { httpapi.Register(r, a) },
		MapError:  httpapi.MapError,
	}, nil
}

func newChannel(cfg config.Config, log *zap.Logger, o options) (app.Channel, error) {
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
