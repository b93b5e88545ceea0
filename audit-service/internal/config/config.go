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

	platformconfig "github.com/eventshop/shared/platform/config"
)

// ErrInvalid marks a configuration the service cannot run with.
var ErrInvalid = errors.New("invalid configuration")

// defaultHTTPAddr is the listen address unless HTTP_ADDR says otherwise.
const defaultHTTPAddr = ":8084"

// Config is every setting of the audit service: the shared ones (NATS,
// HTTP_ADDR, LOG_LEVEL, SHUTDOWN_TIMEOUT, STREAM_REPLICAS) and the key of
// the fingerprints that stand for secrets in the trail.
type Config struct {
	platformconfig.Base
	// FingerprintKey (AUDIT_FINGERPRINT_KEY, secret, at least 32 bytes)
	// keys the HMAC that replaces the payment token in the trail. Unset,
	// the service makes a random key at start-up: fingerprints then differ
	// across restarts (and between replicas), so an operator cannot match
	// them to a token later.
	FingerprintKey string `env:"AUDIT_FINGERPRINT_KEY" log:"secret"`
}

// minFingerprintKeyLen matches chain.MinKeyLen: a shorter key could be
// guessed, and with it every token behind its fingerprint.
const minFingerprintKeyLen = 32

// Load reads the configuration through lookup (os.LookupEnv in production),
// fills defaults and validates it.
func Load(lookup func(string) (string, bool)) (Config, error) {
	return platformconfig.Load[Config](lookup, ErrInvalid)
}

// SetDefaults fills every unset field with its default.
func (c *Config) SetDefaults() {
	platformconfig.Defaults(c)
	c.Base.SetDefaults(defaultHTTPAddr)
}

// Validate reports every setting that cannot work, joined.
func (c Config) Validate() error {
	var errs []error
	if err := c.Base.Validate(); err != nil {
		errs = append(errs, err)
	}
	if n := len(c.FingerprintKey); n > 0 && n < minFingerprintKeyLen {
		errs = append(errs, fmt.Errorf("AUDIT_FINGERPRINT_KEY is %d bytes long, want at least %d (a short key can be guessed, and every payment token with it)", n, minFingerprintKeyLen))
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("%w: %w", ErrInvalid, err)
	}
	return nil
}
