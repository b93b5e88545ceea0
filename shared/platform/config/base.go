package config

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"strings"
	"time"

	"go.uber.org/zap"

	"github.com/eventshop/shared/platform/natsconn"
	"github.com/eventshop/shared/platform/tracing"
)

// Defaults of the settings every service shares.
const (
	DefaultNATSURL             = "nats://127.0.0.1:4222"
	DefaultLogLevel            = "info"
	DefaultShutdownTimeout     = 20 * time.Second
	DefaultStreamReplicas      = 1
	DefaultConsumerConcurrency = 8
	// DefaultMaxConns bounds a service's open HTTP connections: each costs
	// a goroutine and 8 KiB of buffers, and an overloading client (one
	// connection per request in flight) took the order service past 200
	// MB without it.
	DefaultMaxConns = 1024
	// DefaultBrokerMetricsInterval is how often a service asks NATS for
	// its consumers' lag and its streams' sizes (platform/natsmetrics).
	DefaultBrokerMetricsInterval = 5 * time.Second
)

// Base is the settings every service reads the same way: where and as whom
// to connect to NATS, where to listen, the token of its admin endpoints,
// how much to log, how long to shut down and how many replicas the streams
// and buckets it owns get. A service embeds it in its own Config.
type Base struct {
	NATSURL      string // NATS_URL: comma-separated seed list
	NATSUser     string // NATS_USER
	NATSPassword string // NATS_PASSWORD (secret)
	NATSCreds    string // NATS_CREDS: path of a credentials file

	// HTTPAddr is the listen address (HTTP_ADDR); "127.0.0.1:0" picks a free
	// port, which tests read back from the service.
	HTTPAddr string
	// AdminToken guards every service's admin endpoints (ADMIN_TOKEN,
	// secret): the dead-letter API, and inventory's PUT /inventory/{sku}.
	// Unset, every admin request is refused.
	AdminToken      string
	LogLevel        string        // LOG_LEVEL
	ShutdownTimeout time.Duration // SHUTDOWN_TIMEOUT
	StreamReplicas  int           // STREAM_REPLICAS
	// Pprof (PPROF=true) serves Go's profiler on /debug/pprof/ behind the
	// admin token.
	Pprof bool
	// MaxConns (MAX_CONNS) bounds the open HTTP connections; at the bound
	// idle ones give way, and past it (all busy) only probes are answered
	// (see httpserver.Config.MaxConns).
	MaxConns int
	// BrokerMetricsInterval (BROKER_METRICS_INTERVAL) is how often the
	// consumers' lag and the owned streams' sizes are read from NATS.
	BrokerMetricsInterval time.Duration
	// Tracing is the OpenTelemetry tracing setup, from the standard
	// variables (OTEL_EXPORTER_OTLP_ENDPOINT, OTEL_SERVICE_NAME,
	// OTEL_TRACES_SAMPLER, ...): see tracing.FromEnv.
	Tracing tracing.Config
}

// ProfileToken is the token the profiler is served behind, or "" when it
// is off (PPROF unset, or no admin token to guard it with).
func (b Base) ProfileToken() string {
	if !b.Pprof {
		return ""
	}
	return b.AdminToken
}

// ReadBase reads the shared settings through r. Unset values stay zero until
// SetDefaults, so an explicit zero ("STREAM_REPLICAS=0") means the default
// too; malformed values are collected by r.
func ReadBase(r *Reader) Base {
	return Base{
		NATSURL:               r.String("NATS_URL", ""),
		NATSUser:              r.String("NATS_USER", ""),
		NATSPassword:          r.String("NATS_PASSWORD", ""),
		NATSCreds:             r.String("NATS_CREDS", ""),
		HTTPAddr:              r.String("HTTP_ADDR", ""),
		AdminToken:            r.String("ADMIN_TOKEN", ""),
		LogLevel:              r.String("LOG_LEVEL", ""),
		ShutdownTimeout:       r.Duration("SHUTDOWN_TIMEOUT", 0),
		StreamReplicas:        r.Int("STREAM_REPLICAS", 0),
		Pprof:                 r.Bool("PPROF", false),
		MaxConns:              r.Int("MAX_CONNS", 0),
		BrokerMetricsInterval: r.Duration("BROKER_METRICS_INTERVAL", 0),
		Tracing:               tracing.FromEnv(func(key string) string { return r.String(key, "") }),
	}
}

// SetDefaults fills every unset field; httpAddr is the service's own default
// listen address (each service has its port).
func (b *Base) SetDefaults(httpAddr string) {
	if b.NATSURL == "" {
		b.NATSURL = DefaultNATSURL
	}
	if b.HTTPAddr == "" {
		b.HTTPAddr = httpAddr
	}
	if b.LogLevel == "" {
		b.LogLevel = DefaultLogLevel
	}
	if b.ShutdownTimeout == 0 {
		b.ShutdownTimeout = DefaultShutdownTimeout
	}
	if b.StreamReplicas == 0 {
		b.StreamReplicas = DefaultStreamReplicas
	}
	if b.MaxConns == 0 {
		b.MaxConns = DefaultMaxConns
	}
	if b.BrokerMetricsInterval == 0 {
		b.BrokerMetricsInterval = DefaultBrokerMetricsInterval
	}
}

// Validate reports every shared setting that cannot work, joined; nil when
// all can. The service wraps the result with its own ErrInvalid.
func (b Base) Validate() error {
	var errs []error
	if b.NATSURL == "" {
		errs = append(errs, errors.New("NATS_URL is empty"))
	}
	if _, _, err := net.SplitHostPort(b.HTTPAddr); err != nil {
		errs = append(errs, fmt.Errorf("HTTP_ADDR=%q: %w", b.HTTPAddr, err))
	}
	if b.ShutdownTimeout <= 0 {
		errs = append(errs, fmt.Errorf("SHUTDOWN_TIMEOUT=%s: want > 0", b.ShutdownTimeout))
	}
	if b.StreamReplicas < 1 || b.StreamReplicas > 5 {
		errs = append(errs, fmt.Errorf("STREAM_REPLICAS=%d: want 1..5", b.StreamReplicas))
	}
	if b.MaxConns < 1 {
		errs = append(errs, fmt.Errorf("MAX_CONNS=%d: want >= 1", b.MaxConns))
	}
	if b.BrokerMetricsInterval <= 0 {
		errs = append(errs, fmt.Errorf("BROKER_METRICS_INTERVAL=%s: want > 0", b.BrokerMetricsInterval))
	}
	if err := b.Tracing.Validate(); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// Fields returns the shared settings as log fields, secrets masked: the
// password, the admin token, and any password written into a NATS URL.
func (b Base) Fields() []zap.Field {
	return []zap.Field{
		zap.String("nats_url", redactURLs(b.NATSURL)),
		zap.String("nats_user", b.NATSUser),
		zap.String("nats_password", Mask(b.NATSPassword)),
		zap.String("nats_creds", b.NATSCreds),
		zap.String("http_addr", b.HTTPAddr),
		zap.String("admin_token", Mask(b.AdminToken)),
		zap.String("log_level", b.LogLevel),
		zap.Duration("shutdown_timeout", b.ShutdownTimeout),
		zap.Int("stream_replicas", b.StreamReplicas),
		zap.Int("max_conns", b.MaxConns),
		zap.Duration("broker_metrics_interval", b.BrokerMetricsInterval),
		zap.Dict("tracing", b.Tracing.Fields()...),
	}
}

// NATS returns the connection settings, with clientName as the name the
// server shows for the connection.
func (b Base) NATS(clientName string) natsconn.Config {
	return natsconn.Config{
		URL:       b.NATSURL,
		Name:      clientName,
		User:      b.NATSUser,
		Password:  b.NATSPassword,
		CredsFile: b.NATSCreds,
	}
}

// Consumers is the setting of a service that runs JetStream consumers with
// parallel handlers. It is apart from Base because a service whose
// consumers must handle one message at a time (the audit chain has a single
// writer) does not read it at all.
type Consumers struct {
	ConsumerConcurrency int // CONSUMER_CONCURRENCY: handlers in flight per consumer
}

// ReadConsumers reads CONSUMER_CONCURRENCY through r; zero until
// SetDefaults, like ReadBase.
func ReadConsumers(r *Reader) Consumers {
	return Consumers{ConsumerConcurrency: r.Int("CONSUMER_CONCURRENCY", 0)}
}

// SetDefaults fills the unset concurrency.
func (c *Consumers) SetDefaults() {
	if c.ConsumerConcurrency == 0 {
		c.ConsumerConcurrency = DefaultConsumerConcurrency
	}
}

// Validate reports a concurrency that cannot work; nil when it can.
func (c Consumers) Validate() error {
	if c.ConsumerConcurrency < 1 {
		return fmt.Errorf("CONSUMER_CONCURRENCY=%d: want >= 1", c.ConsumerConcurrency)
	}
	return nil
}

// Fields returns the setting as a log field.
func (c Consumers) Fields() []zap.Field {
	return []zap.Field{zap.Int("consumer_concurrency", c.ConsumerConcurrency)}
}

// redactURLs hides the passwords written into a comma-separated list of URLs
// (a NATS seed list) for logging; entries that do not parse stay as they are.
func redactURLs(list string) string {
	parts := strings.Split(list, ",")
	for i, p := range parts {
		if u, err := url.Parse(strings.TrimSpace(p)); err == nil && u.User != nil {
			parts[i] = u.Redacted()
		}
	}
	return strings.Join(parts, ",")
}
