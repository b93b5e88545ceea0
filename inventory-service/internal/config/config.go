// Package config holds the inventory service's settings, read once from the
// environment at start-up.
package config

import (
	"errors"
	"fmt"

	platform "github.com/eventshop/shared/platform/config"
)

// ErrInvalid marks a configuration the service cannot run with.
var ErrInvalid = errors.New("invalid configuration")

// defaultHTTPAddr is the listen address unless HTTP_ADDR says otherwise.
const defaultHTTPAddr = ":8081"

// Config is every setting of the inventory service: the shared ones (NATS,
// HTTP_ADDR, ADMIN_TOKEN for PUT /inventory/{sku} and the dead-letter API,
// LOG_LEVEL, SHUTDOWN_TIMEOUT, STREAM_REPLICAS for the INVENTORY stream and
// the inventory bucket, CONSUMER_CONCURRENCY) and its own.
type Config struct {
	platform.Base
	platform.Consumers

	// ConsumerMaxDeliver is the deliveries before a failing event is
	// dead-lettered.
	ConsumerMaxDeliver int `env:"CONSUMER_MAX_DELIVER" envDefault:"10"`
	// CASAttempts is the in-process retries of a conflicting write before
	// a nak.
	CASAttempts int `env:"CAS_ATTEMPTS" envDefault:"12"`
}

// Load reads the configuration from lookup (os.LookupEnv in production),
// applies defaults and validates it.
func Load(lookup func(string) (string, bool)) (Config, error) {
	return platform.Load[Config](lookup, ErrInvalid)
}

// SetDefaults fills every unset field with its default.
func (c *Config) SetDefaults() {
	platform.Defaults(c)
	c.Base.SetDefaults(defaultHTTPAddr)
}

// Validate reports every setting that cannot work, joined.
func (c Config) Validate() error {
	errs := []error{c.Base.Validate(), c.Consumers.Validate()}
	// Base allows 1..5; the inventory stream and bucket want an odd count,
	// as an even one adds a replica without adding fault tolerance.
	if c.StreamReplicas == 2 || c.StreamReplicas == 4 {
		errs = append(errs, fmt.Errorf("STREAM_REPLICAS=%d: want 1, 3 or 5", c.StreamReplicas))
	}
	if c.ConsumerMaxDeliver < 2 {
		errs = append(errs, fmt.Errorf("CONSUMER_MAX_DELIVER=%d: want >= 2", c.ConsumerMaxDeliver))
	}
	if c.CASAttempts < 1 {
		errs = append(errs, fmt.Errorf("CAS_ATTEMPTS=%d: want >= 1", c.CASAttempts))
	}
	if c.NATSUser != "" && c.NATSCreds != "" {
		errs = append(errs, errors.New("NATS_USER and NATS_CREDS are both set: choose one"))
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("%w: %w", ErrInvalid, err)
	}
	return nil
}
