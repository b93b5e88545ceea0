// Package config is the payment service's configuration, read once from the
// environment at start-up.
package config

import (
	"errors"
	"fmt"
	"net/url"
	"time"

	"go.uber.org/zap"

	"github.com/eventshop/payment-service/internal/breaker"
	platformconfig "github.com/eventshop/shared/platform/config"
)

// ErrInvalid marks a configuration that cannot work.
var ErrInvalid = errors.New("invalid configuration")

// defaultHTTPAddr is the listen address unless HTTP_ADDR says otherwise.
const defaultHTTPAddr = ":8082"

// maxGatewayTimeout keeps a gateway call well inside the consumer's 30s
// AckWait, which is also each handler's deadline.
const maxGatewayTimeout = 25 * time.Second

// Config is everything the payment service reads from its environment: the
// shared settings (NATS, HTTP_ADDR, LOG_LEVEL, SHUTDOWN_TIMEOUT,
// STREAM_REPLICAS, CONSUMER_CONCURRENCY) and its own.
type Config struct {
	platformconfig.Base
	platformconfig.Consumers

	GatewayURL     string        // GATEWAY_URL, default http://127.0.0.1:8090
	GatewayTimeout time.Duration // GATEWAY_TIMEOUT, default 5s
	// GatewayAPIKey (GATEWAY_API_KEY, required) is the service's credential
	// at the gateway, sent as a bearer token with every charge and refund.
	GatewayAPIKey string

	// Breaker: BREAKER_FAILURE_THRESHOLD (5), BREAKER_OPEN_TIMEOUT (5s),
	// BREAKER_HALF_OPEN_PROBES (1).
	Breaker breaker.Config
}

// Load reads the configuration through lookup (os.LookupEnv), applies the
// defaults and validates it.
func Load(lookup func(string) (string, bool)) (Config, error) {
	return platformconfig.Load(lookup, ErrInvalid, func(r *platformconfig.Reader) Config {
		return Config{
			Base:           platformconfig.ReadBase(r),
			Consumers:      platformconfig.ReadConsumers(r),
			GatewayURL:     r.String("GATEWAY_URL", ""),
			GatewayTimeout: r.Duration("GATEWAY_TIMEOUT", 0),
			GatewayAPIKey:  r.String("GATEWAY_API_KEY", ""),
			Breaker: breaker.Config{
				FailureThreshold:  r.Int("BREAKER_FAILURE_THRESHOLD", 0),
				OpenTimeout:       r.Duration("BREAKER_OPEN_TIMEOUT", 0),
				HalfOpenMaxProbes: r.Int("BREAKER_HALF_OPEN_PROBES", 0),
			},
		}
	})
}

// SetDefaults fills unset values; tests that build a Config by hand call it
// too.
func (c *Config) SetDefaults() {
	c.Base.SetDefaults(defaultHTTPAddr)
	c.Consumers.SetDefaults()
	if c.GatewayURL == "" {
		c.GatewayURL = "http://127.0.0.1:8090"
	}
	if c.GatewayTimeout == 0 {
		c.GatewayTimeout = 5 * time.Second
	}
	if c.Breaker.FailureThreshold == 0 {
		c.Breaker.FailureThreshold = 5
	}
	if c.Breaker.OpenTimeout == 0 {
		c.Breaker.OpenTimeout = 5 * time.Second
	}
	if c.Breaker.HalfOpenMaxProbes == 0 {
		c.Breaker.HalfOpenMaxProbes = 1
	}
}

// Validate reports every value that cannot work, joined.
func (c Config) Validate() error {
	var errs []error
	bad := func(format string, args ...any) {
		errs = append(errs, fmt.Errorf("%w: "+format, append([]any{ErrInvalid}, args...)...))
	}
	for _, err := range []error{c.Base.Validate(), c.Consumers.Validate()} {
		if err != nil {
			bad("%w", err)
		}
	}
	if u, err := url.Parse(c.GatewayURL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		bad("GATEWAY_URL %q must be an http(s) URL", c.GatewayURL)
	}
	if c.GatewayAPIKey == "" {
		bad("GATEWAY_API_KEY is empty: set the API key the payment gateway expects")
	}
	if c.GatewayTimeout <= 0 || c.GatewayTimeout > maxGatewayTimeout {
		bad("GATEWAY_TIMEOUT %s must be in (0, %s]", c.GatewayTimeout, maxGatewayTimeout)
	}
	if err := c.Breaker.Validate(); err != nil {
		bad("BREAKER_*: %v", err)
	}
	return errors.Join(errs...)
}

// Fields returns the configuration as log fields, secrets masked.
func (c Config) Fields() []zap.Field {
	return append(append(c.Base.Fields(), c.Consumers.Fields()...),
		zap.String("gateway_url", c.GatewayURL),
		zap.Stringer("gateway_timeout", c.GatewayTimeout),
		zap.String("gateway_api_key", platformconfig.Mask(c.GatewayAPIKey)),
		zap.Int("breaker_failure_threshold", c.Breaker.FailureThreshold),
		zap.Stringer("breaker_open_timeout", c.Breaker.OpenTimeout),
		zap.Int("breaker_half_open_probes", c.Breaker.HalfOpenMaxProbes),
	)
}
