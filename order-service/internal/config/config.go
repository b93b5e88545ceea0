// Package config holds the order service's settings, read once from the
// environment at start-up.
package config

import (
	"errors"
	"fmt"
	"time"

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
	RequestTimeout time.Duration `env:"REQUEST_TIMEOUT" envDefault:"5s"`
	// OrderDeadline is how long an order may take to reach a final state:
	// an order still PENDING or RESERVED after it is cancelled with reason
	// timeout.
	OrderDeadline time.Duration `env:"ORDER_DEADLINE" envDefault:"2m"`
	// MaxInFlight bounds the POST /orders requests in progress at once;
	// beyond it requests are shed with 503 and Retry-After, so an overload
	// costs neither memory nor latency.
	MaxInFlight int `env:"MAX_IN_FLIGHT" envDefault:"256"`
}

// Load reads the configuration through lookup (os.LookupEnv in main), fills
// defaults and validates it.
func Load(lookup func(string) (string, bool)) (Config, error) {
	return config.Load[Config](lookup, ErrInvalid)
}

// SetDefaults fills every unset field with its default.
func (c *Config) SetDefaults() {
	config.Defaults(c)
	c.Base.SetDefaults(defaultHTTPAddr)
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
