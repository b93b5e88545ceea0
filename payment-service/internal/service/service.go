// Package service declares the payment service on the kit: the PAYMENTS
// stream and payments bucket it owns, the gateway client behind its circuit
// breaker (which pauses the gateway's consumers while it is open), the
// consumers of reserved and cancelled orders and the HTTP API. Tests run
// the whole service in-process with HTTPAddr "127.0.0.1:0" and read the
// bound address from Addr.
package service

import (
	"context"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/nats-io/nats.go/jetstream"
	"go.uber.org/zap"

	"github.com/eventshop/payment-service/internal/app"
	"github.com/eventshop/payment-service/internal/breaker"
	"github.com/eventshop/payment-service/internal/config"
	"github.com/eventshop/payment-service/internal/consumer"
	"github.com/eventshop/payment-service/internal/gateway"
	"github.com/eventshop/payment-service/internal/httpapi"
	"github.com/eventshop/payment-service/internal/store"
	"github.com/eventshop/shared/events"
	"github.com/eventshop/shared/platform/kit"
	"github.com/eventshop/shared/platform/natsconn"
	"github.com/eventshop/shared/platform/runner"
)

// Name is the service name in logs, metrics and event sources.
const Name = "payment-service"

// setupTimeout bounds how long start-up waits for NATS before giving up
// (and letting the orchestrator restart the service).
const setupTimeout = 30 * time.Second

// Service is the wired payment service.
type Service struct {
	*kit.Service
	breaker *breaker.Breaker
}

// New connects to NATS, ensures the stream and bucket the service owns,
// wires every part and binds the HTTP listener (so Addr is known before
// Run). Call Run to start serving and consuming.
func New(ctx context.Context, cfg config.Config, log *zap.Logger) (*Service, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	s := &Service{}
	var payments *store.Payments
	svc, err := kit.New(ctx, kit.Config{
		Name: Name, Base: cfg.Base, Log: log,
		Streams: []string{events.StreamPayments}, EnsureStream: events.EnsureOwnedStream,
		Setup: func(ctx context.Context, js jetstream.JetStream) (err error) {
			payments, err = store.EnsurePayments(ctx, js, cfg.StreamReplicas)
			return err
		},
		SetupRetry: []natsconn.EnsureOption{natsconn.WithAttemptTimeout(5 * time.Second), natsconn.WithGiveUpAfter(setupTimeout)},
		// Dead letters of PAYMENTS events (whoever gave up on them) are
		// managed here: only this service may re-publish them.
		DeadLetters: events.StreamPayments,
	}, func(p *kit.Platform) (w kit.Wiring, err error) {
		w, s.breaker, err = wire(cfg, p, payments)
		return w, err
	})
	if err != nil {
		return nil, err
	}
	s.Service = svc
	return s, nil
}

func wire(cfg config.Config, p *kit.Platform, payments *store.Payments) (kit.Wiring, *breaker.Breaker, error) {
	pm := newPaymentMetrics(p.Metrics)
	pauser := newGatewayPauser(p.JS, p.Log, p.Metrics,
		pausedConsumer{events.StreamInventory, consumer.ReservedDurable},
		pausedConsumer{events.StreamOrders, consumer.OrdersDurable})
	openTimeout := cfg.Breaker.OpenTimeout
	br, err := breaker.New(cfg.Breaker, breaker.WithObserver(func(t breaker.Transition) {
		pm.transition(t)
		pauser.observe(t, openTimeout)
		level := zap.WarnLevel
		if t.To == breaker.Closed {
			level = zap.InfoLevel
		}
		p.Log.Log(level, "gateway circuit breaker "+t.To.String(),
			zap.String("from", t.From.String()), zap.Int("consecutive_failures", t.Failures))
	}))
	if err != nil {
		return kit.Wiring{}, nil, err
	}
	pm.watchBreaker(br)
	gw, err := gateway.New(cfg.GatewayURL, cfg.GatewayAPIKey, gateway.WithTimeout(cfg.GatewayTimeout), gateway.WithBreaker(br), gateway.WithObserver(pm))
	if err != nil {
		return kit.Wiring{}, nil, err
	}
	pub, err := events.NewPublisher(p.JS, Name)
	if err != nil {
		return kit.Wiring{}, nil, err
	}
	a, err := app.New(payments, store.NewPaymentEvents(p.JS), store.NewOrderTokens(p.JS), store.NewOrderHistory(p.JS), gw, pub, p.Log,
		app.WithMetrics(p.Metrics))
	if err != nil {
		return kit.Wiring{}, nil, err
	}
	gatewayWait := runner.Backoff{Initial: 200 * time.Millisecond, Max: cfg.Breaker.OpenTimeout, Multiplier: 2}
	consumers, err := consumer.Consumers(a, cfg.ConsumerConcurrency, gatewayWait)
	if err != nil {
		return kit.Wiring{}, nil, err
	}
	return kit.Wiring{
		Consumers: consumers,
		Routes:    func(r *gin.Engine) { httpapi.Register(r, a, br) },
		MapError:  httpapi.MapError,
		// The breaker is deliberately not a readiness check: while it is
		// open the service is alive and its work waits in JetStream. /ready
		// names its state; GET /breaker and the breaker metrics give the
		// detail.
		ReadyInfo: map[string]func() string{"gateway_breaker": func() string { return br.State().String() }},
		Jobs:      []func(context.Context) error{pauser.Run},
	}, br, nil
}

// Breaker returns the gateway circuit breaker (for status and tests).
func (s *Service) Breaker() *breaker.Breaker { return s.breaker }
