// Package service wires the audit service: NATS connection, the AUDIT
// stream it owns, the single appender, one consumer per domain stream and
// the HTTP API.
package service

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"go.uber.org/zap"

	"github.com/eventshop/audit-service/internal/chain"
	"github.com/eventshop/audit-service/internal/config"
	auditconsumer "github.com/eventshop/audit-service/internal/consumer"
	"github.com/eventshop/audit-service/internal/httpapi"
	"github.com/eventshop/audit-service/internal/store"
	"github.com/eventshop/shared/events"
	"github.com/eventshop/shared/platform/consumer"
	"github.com/eventshop/shared/platform/deadletter"
	"github.com/eventshop/shared/platform/httpserver"
	"github.com/eventshop/shared/platform/lifecycle"
	"github.com/eventshop/shared/platform/metrics"
	"github.com/eventshop/shared/platform/natsconn"
	"github.com/eventshop/shared/platform/natsmetrics"
)

// Name is the service name in logs and metrics.
const Name = "audit-service"

// Service is a wired audit service, ready to Run.
type Service struct {
	cfg       config.Config
	log       *zap.Logger
	nc        *nats.Conn
	http      *httpserver.Server
	consumers []lifecycle.Consumer
	appender  *store.Appender
	dlq       *deadletter.Kit
}

// Option configures a Service.
type Option func(*options) error

type options struct {
	now func() time.Time
}

// WithClock sets the clock of recorded_at (tests).
func WithClock(now func() time.Time) Option {
	return func(o *options) error {
		if now == nil {
			return errors.New("clock is nil")
		}
		o.now = now
		return nil
	}
}

// New connects to NATS, ensures the AUDIT stream, loads the chain head,
// builds the consumers and the HTTP API, and binds the HTTP listener so that
// Addr is known before Run.
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

// SetupStreams is the ops step: connected as cfg's NATS user (ops), it
// creates or updates the shared streams (events.SetupSharedStreams),
// waiting for NATS to come up, and returns when they are in place.
func SetupStreams(ctx context.Context, cfg config.Config, log *zap.Logger) error {
	nc, js, err := natsconn.Connect(cfg.NATS("eventshop-ops"), log)
	if err != nil {
		return err
	}
	defer nc.Close()
	err = natsconn.Ensure(ctx, log, "set up the shared streams", func(ctx context.Context) error {
		return events.SetupSharedStreams(ctx, js, events.StreamOptions{Replicas: cfg.StreamReplicas})
	}, natsconn.WithAttemptTimeout(10*time.Second), natsconn.WithGiveUpAfter(2*time.Minute))
	if err != nil {
		return err
	}
	log.Info("shared streams set up")
	return nil
}

func build(ctx context.Context, cfg config.Config, log *zap.Logger, nc *nats.Conn, js jetstream.JetStream, o options) (*Service, error) {
	reg := metrics.NewRegistry(Name)
	auditMetrics, err := store.NewMetrics(metrics.Registerer(reg, Name))
	if err != nil {
		return nil, fmt.Errorf("audit metrics: %w", err)
	}
	consumerMetrics, err := consumer.NewMetrics(metrics.Registerer(reg, Name))
	if err != nil {
		return nil, fmt.Errorf("consumer metrics: %w", err)
	}

	var app *store.Appender
	// NATS may come up after the service (RetryOnFailedConnect): keep
	// trying until ctx ends.
	err = natsconn.Ensure(ctx, log, "ensure audit stream and load its head", func(ctx context.Context) error {
		if _, err := events.EnsureStream(ctx, js, events.StreamAudit, events.StreamOptions{Replicas: cfg.StreamReplicas}); err != nil {
			return err
		}
		var err error
		app, err = store.NewAppender(ctx, js, log, store.WithClock(o.now), store.WithMetrics(auditMetrics))
		return err
	})
	if err != nil {
		return nil, err
	}
	log.Info("audit chain head loaded", zap.Uint64("index", app.Head().Index), zap.Uint64("stream_seq", app.Head().Seq))

	red, err := newRedactor(cfg.FingerprintKey, log)
	if err != nil {
		return nil, err
	}
	const appendConcurrency = 64 // per consumer, four consumers
	h := auditconsumer.NewHandler(app, red, log)
	consumers := make([]lifecycle.Consumer, 0, len(events.DomainStreams))
	runners := make([]*consumer.Runner, 0, len(events.DomainStreams))
	// A failed append is redelivered after 0.25-0.5s, then doubling up to
	// 15-30s, with full jitter.
	retry := consumer.Backoff{Initial: 500 * time.Millisecond, Max: 30 * time.Second, Multiplier: 2}
	for _, stream := range events.DomainStreams {
		r, err := consumer.New(js, consumer.Config{
			Stream:  stream,
			Durable: auditconsumer.Durable(stream),
			// The chain has one writer, but appends in flight together are
			// stored as one block (store.Appender): the more handlers
			// wait on it, the fewer round trips per entry.
			Concurrency: appendConcurrency,
			// An append fails only when NATS is unwell; giving up would
			// leave a hole in the audit log, so retry for ever. Invalid
			// events are permanent and dead-lettered at once.
			MaxDeliver:         -1,
			Retry:              retry,
			DeadLetterReplicas: cfg.StreamReplicas,
		}, h.Handle, log, consumer.WithMetrics(consumerMetrics))
		if err != nil {
			return nil, fmt.Errorf("consumer on %s: %w", stream, err)
		}
		consumers = append(consumers, r)
		runners = append(runners, r)
	}
	// AUDIT has no consumers, so this service has no dead letters of its
	// own events to manage (its consumers' letters are managed by the
	// owners of the streams they read); it still captures the advisories
	// about its consumers and serves the same, empty, admin API.
	dlq, err := deadletter.Setup(js, deadletter.Config{
		Service: Name, Stream: events.StreamAudit, Consumers: runners, Replicas: cfg.StreamReplicas,
	}, log, metrics.Registerer(reg, Name), consumerMetrics)
	if err != nil {
		return nil, err
	}
	// The advisory capture first: its stream must listen before the
	// consumers it watches deliver anything.
	consumers = append([]lifecycle.Consumer{dlq.Capture}, consumers...)
	broker, err := natsmetrics.New(js, log, metrics.Registerer(reg, Name), natsmetrics.WithConsumers(runners...),
		natsmetrics.WithStreams(events.StreamAudit), natsmetrics.WithInterval(cfg.BrokerMetricsInterval))
	if err != nil {
		return nil, err
	}
	// Last: it starts once the durables exist, and stops after them.
	consumers = append(consumers, broker)

	srv, err := httpserver.New(httpserver.Config{Addr: cfg.HTTPAddr, Service: Name, ProfileToken: cfg.ProfileToken(), MaxConns: cfg.MaxConns}, log, reg, httpapi.MapError)
	if err != nil {
		return nil, err
	}
	srv.AddReadyCheck("nats", func(context.Context) error { return natsconn.Ready(nc) })
	for _, r := range runners {
		srv.AddReadyCheck("consumer "+r.Name(), func(context.Context) error { return r.Ready() })
	}
	srv.AddReadyCheck("dlq-capture", dlq.Ready)
	httpapi.Register(srv.Engine, store.NewReader(js, log))
	dlq.Register(srv.Engine, cfg.AdminToken)
	if err := srv.Listen(); err != nil {
		return nil, err
	}
	return &Service{cfg: cfg, log: log, nc: nc, http: srv, consumers: consumers, appender: app, dlq: dlq}, nil
}

// newRedactor returns the redactor of the trail, keyed with key or, unset,
// with a random key made now (and a warning: the fingerprints it makes
// cannot be matched to a token after a restart, nor across replicas).
func newRedactor(key string, log *zap.Logger) (*chain.Redactor, error) {
	k := []byte(key)
	if key == "" {
		k = make([]byte, chain.MinKeyLen)
		if _, err := rand.Read(k); err != nil {
			return nil, fmt.Errorf("fingerprint key: %w", err)
		}
		log.Warn("AUDIT_FINGERPRINT_KEY is unset: payment tokens in the audit trail are fingerprinted with a random key " +
			"made at start-up, so the same token gets another fingerprint after a restart or on another replica")
	}
	red, err := chain.NewRedactor(k)
	if err != nil {
		return nil, fmt.Errorf("fingerprint key: %w", err)
	}
	return red, nil
}

// Addr returns the bound HTTP address (useful with HTTP_ADDR=127.0.0.1:0).
func (s *Service) Addr() string { return s.http.Addr() }

// Run serves HTTP and consumes until ctx ends, then shuts down in order.
func (s *Service) Run(ctx context.Context) error {
	return lifecycle.Run(ctx, s.log, lifecycle.Parts{
		HTTP:            s.http,
		Consumers:       s.consumers,
		Conn:            s.nc,
		Background:      []func(context.Context) error{s.dlq.Letters.Watch},
		ShutdownTimeout: s.cfg.ShutdownTimeout,
	})
}
