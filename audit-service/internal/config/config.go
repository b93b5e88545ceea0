// Package config reads the audit service's settings from the environment
// once, fills defaults, validates them and describes them for the start-up
// log with secrets masked.
//
// CONSUMER_CONCURRENCY is deliberately not read: the audit chain has a
// single writer, and each audit consumer runs a fixed 64 handlers whose
// appends wait together and are stored as one block.
package config

import (
	"errors"
	"fmt"

	"go.uber.org/zap"

	platformconfig "github.com/eventshop/shared/platform/config"
)

// ErrInvalid marks a configuration the service cannot run with.
var ErrInvalid = errors.New("invalid configuration")

// defaultHTTPAddr is the listen address unless HTTP_ADDR says otherwise.
const defaultHTTPAddr = ":8084"

// Config is every setting of the audit service: only the shared ones (NATS,
// HTTP_ADDR, LOG_LEVEL, SHUTDOWN_TIMEOUT, STREAM_REPLICAS).
type Config struct {
	platformconfig.Base
}

// Load reads the configuration through lookup (os.LookupEnv in production),
// fills defaults and validates it.
func Load(lookup func(string) (string, bool)) (Config, error) {
	return platformconfig.Load(lookup, ErrInvalid, func(r *platformconfig.Reader) Config {
		return Config{Base: platformconfig.ReadBase(r)}
	})
}

// SetDefaults fills every unset field with its default.
func (c *Config) SetDefaults() { c.Base.SetDefaults(defaultHTTPAddr) }

// Validate reports every setting that cannot work, joined.
func (c Config) Validate() error {
	if err := c.Base.Validate(); err != nil {
		return fmt.Errorf("%w: %w", ErrInvalid, err)
	}
	return nil
}

// Fields describes the configuration for the start-up log, secrets masked.
func (c Config) Fields() []zap.Field { return c.Base.Fields() }
