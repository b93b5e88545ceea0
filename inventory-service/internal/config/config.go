// Package config holds the inventory service's settings, read once from the
// environment at start-up.
package config

import (
	"errors"
	"fmt"

	"go.uber.org/zap"

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

	ConsumerMaxDeliver int // CONSUMER_MAX_DELIVER (10): deliveries before a failing event is dead-lettered
	CASAttempts        int // CAS_ATTEMPTS (12): in-process retries of a conflicting write before a nak
}

// Load reads the configuration from lookup (os.LookupEnv in production),
// applies defaults and validates it.
func Load(lookup func(string) (string, bool)) (Config, error) {
	return platform.Load(lookup, ErrInvalid, func(r *platform.Reader) Config {
		return Config{
			Base:               platform.ReadBase(r),
			Consumers:          platform.ReadConsumers(r),
			ConsumerMaxDeliver: r.Int("CONSUMER_MAX_DELIVER", 0),
			CASAttempts:        r.Int("CAS_ATTEMPTS", 0),
		}
	})
}

// SetDefaults fills every unset field with its default.
func (c *Config) SetDefaults() {
	c.Base.SetDefaults(defaultHTTPAddr)
	c.Consumers.SetDefaults()
	if c.ConsumerMaxDeliver == 0 {
		c.ConsumerMaxDeliver = 10
	}
	if c.CASAttempts == 0 {
		c.CASAttempts = 12
	}
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

// Fields returns the configuration as log fields, secrets masked.
func (c Config) Fields() []zap.Field {
	return append(append(c.Base.Fields(), c.Consumers.Fields()...),
		zap.Int("consumer_max_deliver", c.ConsumerMaxDeliver),
		zap.Int("cas_attempts", c.CASAttempts),
	)
}
