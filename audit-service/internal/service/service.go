// Package service declares the audit service on the kit: the AUDIT stream
// it owns, the single appender, one consumer per domain stream and the
// HTTP API; and the ops step that sets up the shared streams.
package service

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"

	"github.com/eventshop/audit-service/internal/app"
	"github.com/eventshop/audit-service/internal/chain"
	"github.com/eventshop/audit-service/internal/config"
	"github.com/eventshop/audit-service/internal/consumer"
	"github.com/eventshop/audit-service/internal/httpapi"
	"github.com/eventshop/audit-service/internal/store"
	"github.com/eventshop/shared/events"
	"github.com/eventshop/shared/platform/kit"
	"github.com/eventshop/shared/platform/natsconn"
)

// Name is the service name in logs and metrics.
const Name = "audit-service"

// Service is a wired audit service, ready to Run.
type Service struct {
	*kit.Service
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
	var (
		auditMetrics *store.Metrics
		appender     *store.Appender
	)
	svc, err := kit.New(ctx, kit.Config{
		Name: Name, Base: cfg.Base, Log: log,
		Streams: []string{events.StreamAudit}, EnsureStream: events.EnsureOwnedStream,
		Metrics: func(reg prometheus.Registerer) { auditMetrics = store.NewMetrics(reg) },
		Setup: func(ctx context.Context, js jetstream.JetStream) (err error) {
			appender, err = store.NewAppender(ctx, js, log, store.WithClock(o.now), store.WithMetrics(auditMetrics))
			return err
		},
		// AUDIT has no consumers, so this service has no dead letters of
		// its own events to manage (its consumers' letters are managed by
		// the owners of the streams they read); it still captures the
		// advisories about its consumers and serves the same, empty, admin
		// API.
		DeadLetters: events.StreamAudit,
	}, func(p *kit.Platform) (kit.Wiring, error) {
		p.Log.Info("audit chain head loaded", zap.Uint64("index", appender.Head().Index), zap.Uint64("stream_seq", appender.Head().Seq))
		return wire(cfg, p, appender)
	})
	if err != nil {
		return nil, err
	}
	return &Service{Service: svc}, nil
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

func wire(cfg config.Config, p *kit.Platform, appender *store.Appender) (kit.Wiring, error) {
	red, err := newRedactor(cfg.FingerprintKey, p.Log)
	if err != nil {
		return kit.Wiring{}, err
	}
	a, err := app.New(appender, store.NewReader(p.JS, p.Log), red, p.Log)
	if err != nil {
		return kit.Wiring{}, err
	}
	return kit.Wiring{
		Consumers: consumer.Consumers(a),
		Routes:    func(r *gin.Engine) { httpapi.Register(r, a) },
		MapError:  httpapi.MapError,
	}, nil
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
