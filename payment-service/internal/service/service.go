// Package service wires the payment service together: NATS, the PAYMENTS
// stream and payments bucket, the gateway client behind its circuit
// breaker, the consumers of reserved and cancelled orders and the HTTP API; Run runs it
// until its context ends. Tests run the whole service in-process with
// HTTPAddr "127.0.0.1:0" and read the bound address from Addr.
package service

import (
	"context"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"go.uber.org/zap"

	"github.com/eventshop/payment-service/internal/breaker"
	"github.com/eventshop/payment-service/internal/config"
	"github.com/eventshop/payment-service/internal/consumer"
	"github.com/eventshop/payment-service/internal/gateway"
	"github.com/eventshop/payment-service/internal/httpapi"
	"github.com/eventshop/payment-service/internal/payment"
	"github.com/eventshop/payment-service/internal/store"
	"github.com/eventshop/shared/events"
	platformconsumer "github.com/eventshop/shared/platform/consumer"
	"github.com/eventshop/shared/platform/deadletter"
	"github.com/eventshop/shared/platform/httpserver"
	"github.com/eventshop/shared/platform/lifecycle"
	"github.com/eventshop/shared/platform/metrics"
	"github.com/eventshop/shared/platform/natsconn"
	"github.com/eventshop/shared/platform/natsmetrics"
)

// Name is the service name in logs, metrics and event sources.
const Name = "payment-service"

// setupTimeout bounds how long start-up waits for NATS before giving up
// (and letting the orchestrator restart the service).
const setupTimeout = 30 * time.Second

// Service is the wired payment service.
type Service struct {
	cfg     config.Config
	log     *zap.Logger
	nc      *nats.Conn
	http    *httpserver.Server
	runner  *platformconsumer.Runner // reserved orders: charge
	orders  *platformconsumer.Runner // cancelled orders: void or refund
	breaker *breaker.Breaker
	dlq     *deadletter.Kit
	broker  *natsmetrics.Collector // lag of its durables, size of PAYMENTS
}

// New connects to NATS, ensures the stream and bucket the service owns,
// wires every part and binds the HTTP listener (so Addr is known before
// Run). Call Run to start serving and consuming.
func New(ctx context.Context, cfg config.Config, log *zap.Logger) (*Service, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	return natsconn.Open(cfg.NATS(Name), log, func(nc *nats.Conn, js jetstream.JetStream) (*Service, error) {
		return build(ctx, cfg, log, nc, js)
	})
}

func build(ctx context.Context, cfg config.Config, log *zap.Logger, nc *nats.Conn, js jetstream.JetStream) (*Service, error) {
	reg := metrics.NewRegistry(Name)
	registerer := metrics.Registerer(reg, Name)
	cm, err := platformconsumer.NewMetrics(registerer)
	if err != nil {
		return nil, err
	}
	pm, err := newPaymentMetrics(registerer)
	if err != nil {
		return nil, err
	}

	payments, err := ensureOwned(ctx, js, cfg, log)
	if err != nil {
		return nil, err
	}

	pauser, err := newGatewayPauser(js, log, registerer,
		pausedConsumer{events.StreamInventory, consumer.ReservedDurable},
		pausedConsumer{events.StreamOrders, consumer.OrdersDurable})
	if err != nil {
		return nil, err
	}
	openTimeout := cfg.Breaker.OpenTimeout
	br, err := breaker.New(cfg.Breaker, breaker.WithObserver(func(t breaker.Transition) {
		pm.transition(t)
		pauser.observe(t, openTimeout)
		level := zap.WarnLevel
		if t.To == breaker.Closed {
			level = zap.InfoLevel
		}
		log.Log(level, "gateway circuit breaker "+t.To.String(),
			zap.String("from", t.From.String()), zap.Int("consecutive_failures", t.Failures))
	}))
	if err != nil {
		return nil, err
	}
	if err := pm.watchBreaker(br); err != nil {
		return nil, err
	}
	gw, err := gateway.New(cfg.GatewayURL, cfg.GatewayAPIKey, gateway.WithTimeout(cfg.GatewayTimeout), gateway.WithBreaker(br), gateway.WithObserver(pm))
	if err != nil {
		return nil, err
	}
	pub, err := events.NewPublisher(js, Name)
	if err != nil {
		return nil, err
	}
	proc, err := payment.NewProcessor(payments, store.NewPaymentEvents(js), store.NewOrderTokens(js), gw, pub, log)
	if err != nil {
		return nil, err
	}
	gatewayWait := platformconsumer.Backoff{Initial: 200 * time.Millisecond, Max: cfg.Breaker.OpenTimeout, Multiplier: 2}
	handler, err := consumer.NewReserved(timedPayer{next: proc, m: pm, now: time.Now}, gatewayWait)
	if err != nil {
		return nil, err
	}
	runner, err := platformconsumer.New(js, consumer.ReservedConfig(cfg.ConsumerConcurrency, cfg.StreamReplicas),
		handler.Handle, log, platformconsumer.WithMetrics(cm))
	if err != nil {
		return nil, err
	}
	// Cancelled orders: refund what was charged, void what was not yet.
	cancelled, err := consumer.NewCancelled(proc, store.NewOrderHistory(js), gatewayWait)
	if err != nil {
		return nil, err
	}
	ordersRunner, err := platformconsumer.New(js, consumer.OrdersConfig(cfg.ConsumerConcurrency, cfg.StreamReplicas),
		cancelled.Handle, log, platformconsumer.WithMetrics(cm))
	if err != nil {
		return nil, err
	}
	// Dead letters of PAYMENTS events (whoever gave up on them) are
	// managed here: only this service may re-publish them.
	dlq, err := deadletter.Setup(js, deadletter.Config{
		Service: Name, Stream: events.StreamPayments, Consumers: []*platformconsumer.Runner{runner, ordersRunner}, Replicas: cfg.StreamReplicas,
	}, log, registerer, cm)
	if err != nil {
		return nil, err
	}

	broker, err := natsmetrics.New(js, log, registerer, natsmetrics.WithConsumers(runner, ordersRunner),
		natsmetrics.WithStreams(events.StreamPayments), natsmetrics.WithInterval(cfg.BrokerMetricsInterval))
	if err != nil {
		return nil, err
	}

	srv, err := httpserver.New(httpserver.Config{Addr: cfg.HTTPAddr, Service: Name, ProfileToken: cfg.ProfileToken(), MaxConns: cfg.MaxConns}, log, reg, httpapi.MapError)
	if err != nil {
		return nil, err
	}
	httpapi.Register(srv.Engine, proc, br)
	dlq.Register(srv.Engine, cfg.AdminToken)
	srv.AddReadyCheck("nats", func(context.Context) error { return natsconn.Ready(nc) })
	srv.AddReadyCheck("consumer", func(context.Context) error { return runner.Ready() })
	srv.AddReadyCheck("consumer:"+ordersRunner.Name(), func(context.Context) error { return ordersRunner.Ready() })
	srv.AddReadyCheck("dlq-capture", dlq.Ready)
	// The breaker is deliberately not a readiness check: while it is open
	// the service is alive and its work waits in JetStream. /ready names
	// its state; GET /breaker and the breaker metrics give the detail.
	srv.AddReadyInfo("gateway_breaker", func() string { return br.State().String() })
	if err := srv.Listen(); err != nil {
		return nil, err
	}
	return &Service{cfg: cfg, log: log, nc: nc, http: srv, runner: runner, orders: ordersRunner, breaker: br, dlq: dlq, broker: broker}, nil
}

// ensureOwned creates or updates the PAYMENTS stream and the payments
// bucket, retrying while NATS is not reachable yet.
func ensureOwned(ctx context.Context, js jetstream.JetStream, cfg config.Config, log *zap.Logger) (*store.Payments, error) {
	var payments *store.Payments
	err := natsconn.Ensure(ctx, log, "set up stream and bucket", func(ctx context.Context) error {
		if _, err := events.EnsureStream(ctx, js, events.StreamPayments, events.StreamOptions{Replicas: cfg.StreamReplicas}); err != nil {
			return err
		}
		p, err := store.EnsurePayments(ctx, js, cfg.StreamReplicas)
		if err != nil {
			return err
		}
		payments = p
		return nil
	}, natsconn.WithAttemptTimeout(5*time.Second), natsconn.WithGiveUpAfter(setupTimeout))
	if err != nil {
		return nil, err
	}
	return payments, nil
}

// Addr returns the HTTP listener's bound address.
func (s *Service) Addr() string { return s.http.Addr() }

// Breaker returns the gateway circuit breaker (for status and tests).
func (s *Service) Breaker() *breaker.Breaker { return s.breaker }

// Run serves HTTP and consumes until ctx ends, then shuts down in order:
// HTTP, consumer drain, NATS drain.
func (s *Service) Run(ctx context.Context) error {
	s.log.Info("payment service running", zap.String("http_addr", s.Addr()), zap.String("gateway_url", s.cfg.GatewayURL))
	return lifecycle.Run(ctx, s.log, lifecycle.Parts{
		HTTP: s.http,
		// The advisory capture first: its stream must listen before the
		// consumer it watches delivers anything.
		Consumers:       []lifecycle.Consumer{s.dlq.Capture, s.runner, s.orders, s.broker},
		Conn:            s.nc,
		Background:      []func(context.Context) error{s.dlq.Letters.Watch},
		ShutdownTimeout: s.cfg.ShutdownTimeout,
	})
}
