// Package config holds the order service's settings, read once from the
// environment at start-up.
package config

import (
	"errors"
	"fmt"
	"time"

	"go.uber.org/zap"

	"github.com/eventshop/shared/platform/config"
)

// ErrInvalid marks a configuration the service cannot run with.
var ErrInvalid = errors.New("invalid configuration")

// defaultHTTPAddr is the order service's listen address unless HTTP_ADDR
// says otherwise.
const defaultHTTPAddr = ":8080"

// Config is every setting of the order service: the shared ones (NATS,
// HTTP_ADDR, LOG_LEVEL, SHUTDOWN_TIMEOUT, STREAM_REPLICAS,
// CONSUMER_CONCURRENCY) and its own.
type Config struct {
	config.Base
	config.Consumers

	// RequestTimeout bounds the NATS work of one HTTP request.
	RequestTimeout time.Duration
	// OrderDeadline is how long an order may take to reach a final state
	// (ORDER_DEADLINE, default 2m): an order still PENDING or RESERVED
	// after it is cancelled with reason timeout.
	OrderDeadline time.Duration
	// MaxInFlight bounds the POST /orders requests in progress at once
	// (MAX_IN_FLIGHT, default 256); beyond it requests are shed with 503
	// and Retry-After, so an overload costs neither memory nor latency.
	MaxInFlight int
}

// Load reads the configuration through lookup (os.LookupEnv in main), fills
// defaults and validates it.
func Load(lookup func(string) (string, bool)) (Config, error) {
	return config.Load(lookup, ErrInvalid, func(r *config.Reader) Config {
		return Config{
			Base:           config.ReadBase(r),
			Consumers:      config.ReadConsumers(r),
			RequestTimeout: r.Duration("REQUEST_TIMEOUT", 0),
			OrderDeadline:  r.Duration("ORDER_DEADLINE", 0),
			MaxInFlight:    r.Int("MAX_IN_FLIGHT", 0),
		}
	})
}

// SetDefaults fills every unset field with its default.
func (c *Config) SetDefaults() {
	c.Base.SetDefaults(defaultHTTPAddr)
	c.Consumers.SetDefaults()
	if c.RequestTimeout == 0 {
		c.RequestTimeout = 5 * time.Second
	}
	if c.OrderDeadline == 0 {
		c.OrderDeadline = 2 * time.Minute
	}
	if c.MaxInFlight == 0 {
		c.MaxInFlight = 256
	}
}

// Validate reports settings the service cannot run with.
func (c Config) Validate() error {
	errs := []error{c.Base.Validate(), c.Consumers.Validate()}
	if c.RequestTimeout <= 0 {
		errs = append(errs, fmt.Errorf("REQUEST_TIMEOUT=%s: want > 0", c.RequestTimeout))
	}
	if c.MaxInFlight < 0 {
		errs = append(errs, fmt.Errorf("MAX_IN_FLIGHT=%d: want > 0", c.MaxInFlight))
	}
	if c.OrderDeadline <= 0 {
		errs = append(errs, fmt.Errorf("ORDER_DEADLINE=%s: want > 0", c.OrderDeadline))
	}
	if c.NATSPassword != "" && c.NATSUser == "" {
		errs = append(errs, errors.New("NATS_PASSWORD is set without NATS_USER"))
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("%w: %w", ErrInvalid, err)
	}
	return nil
}

// Fields returns the configuration as log fields, secrets masked.
func (c Config) Fields() []zap.Field {
	return append(append(c.Base.Fields(), c.Consumers.Fields()...),
		zap.Duration("request_timeout", c.RequestTimeout),
		zap.Duration("order_deadline", c.OrderDeadline),
	)
}
