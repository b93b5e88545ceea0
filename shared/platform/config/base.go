package config

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"strings"
	"time"

	"github.com/eventshop/shared/platform/natsconn"
	"github.com/eventshop/shared/platform/tracing"
)

// Base is the settings every service reads the same way: where and as whom
// to connect to NATS, where to listen, the token of its admin endpoints,
// how much to log, how long to shut down and how many replicas the streams
// and buckets it owns get. A service embeds it in its own Config.
type Base struct {
	// NATSURL is the comma-separated seed list.
	NATSURL      string `env:"NATS_URL" envDefault:"nats://127.0.0.1:4222" log:"urls"`
	NATSUser     string `env:"NATS_USER"`
	NATSPassword string `env:"NATS_PASSWORD" log:"secret"`
	// NATSCreds is the path of a credentials file.
	NATSCreds string `env:"NATS_CREDS"`

	// HTTPAddr is the listen address; "127.0.0.1:0" picks a free port,
	// which tests read back from the service. Its default is the service's
	// own port (SetDefaults).
	HTTPAddr string `env:"HTTP_ADDR"`
	// AdminToken guards every service's admin endpoints: the dead-letter
	// API, and inventory's PUT /inventory/{sku}. Unset, every admin
	// request is refused.
	AdminToken      string        `env:"ADMIN_TOKEN" log:"secret"`
	LogLevel        string        `env:"LOG_LEVEL" envDefault:"info"`
	ShutdownTimeout time.Duration `env:"SHUTDOWN_TIMEOUT" envDefault:"20s"`
	StreamReplicas  int           `env:"STREAM_REPLICAS" envDefault:"1"`
	// Pprof serves Go's profiler on /debug/pprof/ behind the admin token.
	Pprof bool `env:"PPROF"`
	// MaxConns bounds the open HTTP connections; at the bound idle ones
	// give way, and past it (all busy) only probes are answered (see
	// httpserver.Config.MaxConns). Each costs a goroutine and 8 KiB of
	// buffers, and an overloading client (one connection per request in
	// flight) took the order service past 200 MB without a bound.
	MaxConns int `env:"MAX_CONNS" envDefault:"1024"`
	// BrokerMetricsInterval is how often the consumers' lag and the owned
	// streams' sizes are read from NATS (platform/natsmetrics).
	BrokerMetricsInterval time.Duration `env:"BROKER_METRICS_INTERVAL" envDefault:"5s"`
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

// ReadEnv reads the tracing settings, which follow OpenTelemetry's
// variables rather than tags (Load calls it).
func (b *Base) ReadEnv(get func(key string) string) { b.Tracing = tracing.FromEnv(get) }

// SetDefaults fills the unset shared settings: the tags' defaults, and the
// listen address with httpAddr, the service's own (each has its port).
func (b *Base) SetDefaults(httpAddr string) {
	Defaults(b)
	if b.HTTPAddr == "" {
		b.HTTPAddr = httpAddr
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
	// ConsumerConcurrency is the handlers in flight per consumer.
	ConsumerConcurrency int `env:"CONSUMER_CONCURRENCY" envDefault:"8"`
}

// SetDefaults fills the unset concurrency.
func (c *Consumers) SetDefaults() { Defaults(c) }

// Validate reports a concurrency that cannot work; nil when it can.
func (c Consumers) Validate() error {
	if c.ConsumerConcurrency < 1 {
		return fmt.Errorf("CONSUMER_CONCURRENCY=%d: want >= 1", c.ConsumerConcurrency)
	}
	return nil
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

// ListenAddr is where the service listens (kit.Settings).
func (b Base) ListenAddr() string { return b.HTTPAddr }

// Level is the log level (kit.Settings).
func (b Base) Level() string { return b.LogLevel }

// TracingConfig is the tracing setup (kit.Settings).
func (b Base) TracingConfig() tracing.Config { return b.Tracing }
