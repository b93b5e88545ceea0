// Package kit builds a service from its declaration. A service says what it
// is and owns (Config: its name, its streams, the set-up of its buckets, the
// stream whose dead letters it manages) and, once the kit has
// connected, what it runs (Wiring: its consumers, HTTP routes, readiness
// checks, extra parts and background jobs). The kit builds the rest the same
// way for every service: the NATS connection and the retried set-up, the
// metrics registry and the consumer metrics, the consumer runners, the
// dead-letter parts and their admin routes, the broker metrics, the HTTP
// server with the standard readiness checks, and the lifecycle that runs all
// of it and joins every goroutine at shutdown.
package kit

import (
	"context"
	"errors"
	"fmt"
	"slices"

	"github.com/gin-gonic/gin"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"

	"github.com/eventshop/shared/platform/config"
	"github.com/eventshop/shared/platform/httpserver"
	"github.com/eventshop/shared/platform/lifecycle"
	"github.com/eventshop/shared/platform/metrics"
	"github.com/eventshop/shared/platform/natsconn"
	"github.com/eventshop/shared/platform/natsmetrics"
	"github.com/eventshop/shared/platform/runner"
)

// ErrInvalidConfig is returned, wrapped, for a declaration that cannot work.
var ErrInvalidConfig = errors.New("invalid service declaration")

// Config is what a service is and owns, known before it connects.
type Config struct {
	// Name is the service name: the NATS client name, the metrics label,
	// the advisory capture stream's suffix.
	Name string
	// Base is the service's shared settings (config.Base).
	Base config.Base
	Log  *zap.Logger
	// Streams are the streams the service owns: EnsureStream creates (or
	// checks) each one at set-up, before Setup, and their size is exported
	// with its consumers' lag (natsmetrics).
	Streams []string
	// EnsureStream creates or checks one stream the service owns, with
	// STREAM_REPLICAS replicas: events.EnsureOwnedStream (the kit imports
	// no contract).
	EnsureStream func(ctx context.Context, js jetstream.JetStream, name string, replicas int) error
	// Metrics, if set, registers the service's metrics that Setup needs,
	// once, before it (Setup may run more than once). The service's other
	// metrics are registered with Platform.Metrics when it is wired.
	Metrics func(reg prometheus.Registerer)
	// Setup creates what else the service owns (its buckets) and opens its
	// stores. With the streams, it runs once connected, before the wiring,
	// and is retried while NATS is not reachable yet (the service may
	// start before its server) until it succeeds, New's ctx ends or
	// SetupRetry gives up.
	Setup      func(ctx context.Context, js jetstream.JetStream) error
	SetupRetry []natsconn.EnsureOption
	// DeadLetters is the stream whose dead letters the service manages,
	// whoever gave up on them: the one it owns (see deadletters.go).
	DeadLetters string
}

func (c Config) validate() error {
	switch {
	case c.Name == "":
		return fmt.Errorf("name is empty: %w", ErrInvalidConfig)
	case c.Log == nil:
		return fmt.Errorf("%s: logger is nil: %w", c.Name, ErrInvalidConfig)
	case c.DeadLetters == "":
		return fmt.Errorf("%s: no dead-letter stream: %w", c.Name, ErrInvalidConfig)
	case len(c.Streams) > 0 && c.EnsureStream == nil:
		return fmt.Errorf("%s: streams without EnsureStream: %w", c.Name, ErrInvalidConfig)
	}
	return nil
}

// Platform is what the kit has made when it asks the service to wire its
// own parts.
type Platform struct {
	Conn *nats.Conn
	JS   jetstream.JetStream
	Log  *zap.Logger
	// Metrics registers the service's own metrics in its registry, with
	// the service label.
	Metrics prometheus.Registerer
}

// Consumer declares one durable consumer and its handler.
type Consumer struct {
	// Config is the consumer's stream, durable, filters, concurrency and
	// retry schedule. The kit sets DeadLetterReplicas to STREAM_REPLICAS.
	Config runner.Config
	Handle runner.Handler
}

// Wiring is what a service runs, declared once it is wired on the
// platform.
type Wiring struct {
	// Consumers are run by consumer runners, in this order; each one's
	// readiness is a check named "consumer:<durable>".
	Consumers []Consumer
	// Routes mounts the service's HTTP API (behind the standard
	// middleware; health, readiness, metrics and the dead-letter admin
	// routes are the kit's).
	Routes func(r *gin.Engine)
	// MapError is the one place the service's errors become problems.
	MapError httpserver.ErrorMapper
	// Ready are readiness checks beside the kit's ("nats", the consumers',
	// "dlq-capture"); ReadyInfo are details /ready shows without deciding
	// readiness.
	Ready     map[string]httpserver.ReadyCheck
	ReadyInfo map[string]func() string
	// Parts are started after the consumers and the broker metrics, and
	// drained after them (pollers like lifecycle.Every).
	Parts []lifecycle.Consumer
	// Jobs run in the background from when the parts have started until
	// the service stops; each is given the service's lifetime context and
	// joined before the connection is drained. A job returning an error
	// other than its context's stops the service.
	Jobs []func(ctx context.Context) error
}

// Service is a service built by the kit, its listener bound, ready to Run.
type Service struct {
	log      *zap.Logger
	http     *httpserver.Server
	registry *prometheus.Registry
	parts    lifecycle.Parts
	filters  []string
}

// New registers the service's set-up metrics, connects to NATS as cfg
// says, makes the streams the service owns and runs its Setup (waiting for
// NATS while ctx allows), calls wire with the platform, builds everything
// the wiring needs and binds the HTTP listener, so that Addr is known
// before Run. When anything fails the connection is closed.
//
// Every metric, the kit's and the service's, is registered with
// promauto.With on the service's registry, so a metric registered twice
// panics here, at start-up: promauto's contract for a programming error.
func New(ctx context.Context, cfg Config, wire func(p *Platform) (Wiring, error)) (*Service, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	reg := metrics.NewRegistry(cfg.Name)
	if cfg.Metrics != nil {
		cfg.Metrics(metrics.Registerer(reg, cfg.Name))
	}
	return natsconn.Open(cfg.Base.NATS(cfg.Name), cfg.Log, func(nc *nats.Conn, js jetstream.JetStream) (*Service, error) {
		err := natsconn.Ensure(ctx, cfg.Log, "set up what "+cfg.Name+" owns", func(ctx context.Context) error {
			for _, name := range cfg.Streams {
				if err := cfg.EnsureStream(ctx, js, name, cfg.Base.StreamReplicas); err != nil {
					return err
				}
			}
			if cfg.Setup == nil {
				return nil
			}
			return cfg.Setup(ctx, js)
		}, cfg.SetupRetry...)
		if err != nil {
			return nil, err
		}
		return build(cfg, reg, nc, js, wire)
	})
}

func build(cfg Config, reg *prometheus.Registry, nc *nats.Conn, js jetstream.JetStream, wire func(p *Platform) (Wiring, error)) (*Service, error) {
	log, base := cfg.Log, cfg.Base
	mreg := metrics.Registerer(reg, cfg.Name)
	cm := runner.NewMetrics(mreg)
	w, err := wire(&Platform{Conn: nc, JS: js, Log: log, Metrics: mreg})
	if err != nil {
		return nil, err
	}
	if w.Routes == nil || w.MapError == nil {
		return nil, fmt.Errorf("%s: routes and error mapper are required: %w", cfg.Name, ErrInvalidConfig)
	}
	runners := make([]*runner.Runner, 0, len(w.Consumers))
	var filters []string
	for _, c := range w.Consumers {
		cc := c.Config
		filters = append(filters, cc.FilterSubjects...)
		cc.DeadLetterReplicas = base.StreamReplicas
		r, err := runner.New(js, cc, c.Handle, log, runner.WithMetrics(cm))
		if err != nil {
			return nil, fmt.Errorf("consumer %s: %w", cc.Durable, err)
		}
		runners = append(runners, r)
	}
	dlq, err := newDeadLetters(js, cfg.Name, cfg.DeadLetters, runners, base.StreamReplicas, log, mreg, cm)
	if err != nil {
		return nil, err
	}
	broker, err := natsmetrics.New(js, log, mreg, natsmetrics.WithConsumers(runners...),
		natsmetrics.WithStreams(cfg.Streams...), natsmetrics.WithInterval(base.BrokerMetricsInterval))
	if err != nil {
		return nil, err
	}

	srv, err := httpserver.New(httpserver.Config{
		Addr: base.HTTPAddr, Service: cfg.Name, ProfileToken: base.ProfileToken(), MaxConns: base.MaxConns,
	}, log, reg, w.MapError)
	if err != nil {
		return nil, err
	}
	w.Routes(srv.Engine)
	dlq.register(srv.Engine, base.AdminToken)
	srv.AddReadyCheck("nats", func(context.Context) error { return natsconn.Ready(nc) })
	for _, r := range runners {
		srv.AddReadyCheck("consumer:"+r.Name(), func(context.Context) error { return r.Ready() })
	}
	srv.AddReadyCheck("dlq-capture", dlq.ready)
	for name, check := range w.Ready {
		srv.AddReadyCheck(name, check)
	}
	for name, info := range w.ReadyInfo {
		srv.AddReadyInfo(name, info)
	}
	if err := srv.Listen(); err != nil {
		return nil, err
	}

	// The advisory capture starts first: its stream must be listening
	// before the consumers it watches deliver anything. The broker metrics
	// start once the durables exist.
	var parts []lifecycle.Consumer
	if dlq.capture != nil {
		parts = append(parts, dlq.capture)
	}
	for _, r := range runners {
		parts = append(parts, r)
	}
	parts = append(parts, broker)
	parts = append(parts, w.Parts...)
	return &Service{
		log: log, http: srv, registry: reg, filters: filters,
		parts: lifecycle.Parts{
			HTTP:            srv,
			Consumers:       parts,
			Conn:            nc,
			Background:      append([]func(context.Context) error{dlq.letters.Watch}, w.Jobs...),
			ShutdownTimeout: base.ShutdownTimeout,
		},
	}, nil
}

// Addr returns the address the HTTP server is bound to (useful with
// HTTP_ADDR "127.0.0.1:0").
func (s *Service) Addr() string { return s.http.Addr() }

// FilterSubjects returns the filter subjects of the service's consumers
// (not the dead-letter capture's): the events it is delivered, which
// contracttest.CheckConsumers holds to shared/events/contract.json.
func (s *Service) FilterSubjects() []string { return slices.Clone(s.filters) }

// Registry returns the service's metrics registry.
func (s *Service) Registry() *prometheus.Registry { return s.registry }

// Run serves HTTP, starts the parts in order (the advisory capture, the
// consumers, the broker metrics, the service's own parts), then the
// background jobs, until ctx ends or a part fails. Then it shuts down in
// order within SHUTDOWN_TIMEOUT: the jobs' context ends, HTTP stops taking
// requests and finishes those in flight, the parts are drained in the
// order they started (in-flight messages are handled and acknowledged),
// every job is joined, and the NATS connection is drained last.
func (s *Service) Run(ctx context.Context) error {
	s.log.Info("running", zap.String("http_addr", s.Addr()))
	return lifecycle.Run(ctx, s.log, s.parts)
}
