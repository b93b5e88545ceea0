// Package service declares the inventory service on the kit: the INVENTORY
// stream and the inventory bucket it owns, the orders consumer and the
// HTTP API.
package service

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/nats-io/nats.go/jetstream"
	"go.uber.org/zap"

	"github.com/eventshop/inventory-service/internal/app"
	"github.com/eventshop/inventory-service/internal/config"
	"github.com/eventshop/inventory-service/internal/consumer"
	"github.com/eventshop/inventory-service/internal/httpapi"
	"github.com/eventshop/inventory-service/internal/store"
	"github.com/eventshop/shared/events"
	"github.com/eventshop/shared/platform/kit"
	"github.com/eventshop/shared/platform/natsconn"
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
	*kit.Service
	store *store.Store
	app   *app.App
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
	s := &Service{}
	svc, err := kit.New(ctx, kit.Config{
		Name: Name, Base: cfg.Base, Log: log,
		Streams: []string{events.StreamInventory}, EnsureStream: events.EnsureOwnedStream,
		Setup: func(ctx context.Context, js jetstream.JetStream) (err error) {
			s.store, err = store.Open(ctx, js, store.Options{Replicas: cfg.StreamReplicas})
			return err
		},
		SetupRetry: []natsconn.EnsureOption{natsconn.WithAttemptTimeout(5 * time.Second)},
		// Dead letters of INVENTORY events (whoever gave up on them) are
		// managed here: only this service may re-publish them.
		DeadLetters: events.StreamInventory,
	}, func(p *kit.Platform) (kit.Wiring, error) { return wire(cfg, o, p, s) })
	if err != nil {
		return nil, err
	}
	s.Service = svc
	return s, nil
}

func wire(cfg config.Config, o options, p *kit.Platform, s *Service) (kit.Wiring, error) {
	reservationMetrics := app.NewMetrics(p.Metrics)
	pub, err := events.NewPublisher(p.JS, Name, events.WithClock(o.now))
	if err != nil {
		return kit.Wiring{}, err
	}
	s.app, err = app.New(s.store, pub, p.Log, app.WithClock(o.now), app.WithMetrics(reservationMetrics), app.WithCASAttempts(cfg.CASAttempts))
	if err != nil {
		return kit.Wiring{}, err
	}
	if cfg.AdminToken == "" {
		p.Log.Warn("ADMIN_TOKEN is not set: PUT /inventory/{sku} and /admin/dlq refuse every request")
	}
	api := httpapi.New(s.app)
	return kit.Wiring{
		Consumers: consumer.Consumers(s.app, cfg.ConsumerConcurrency, cfg.ConsumerMaxDeliver),
		Routes:    func(r *gin.Engine) { api.Register(r, cfg.AdminToken) },
		MapError:  httpapi.MapError,
	}, nil
}

// Store returns the service's KV store (tests inspect the state with it).
func (s *Service) Store() *store.Store { return s.store }

// App returns the service's use cases (tests read the catalogue with it).
func (s *Service) App() *app.App { return s.app }
