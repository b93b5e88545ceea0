// Package config is the payment service's configuration, read once from the
// environment at start-up.
package config

import (
	"errors"
	"fmt"
	"net/url"
	"time"

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

	GatewayURL     string        `env:"GATEWAY_URL" envDefault:"http://127.0.0.1:8090"`
	GatewayTimeout time.Duration `env:"GATEWAY_TIMEOUT" envDefault:"5s"`
	// GatewayAPIKey (required) is the service's credential at the gateway,
	// sent as a bearer token with every charge and refund.
	GatewayAPIKey string `env:"GATEWAY_API_KEY" log:"secret"`

	// Breaker is the circuit breaker in front of the gateway (BREAKER_*).
	Breaker breaker.Config
}

// Load reads the configuration through lookup (os.LookupEnv), applies the
// defaults and validates it.
func Load(lookup func(string) (string, bool)) (Config, error) {
	return platformconfig.Load[Config](lookup, ErrInvalid)
}

// SetDefaults fills unset values; tests that build a Config by hand call it
// too.
func (c *Config) SetDefaults() {
	platformconfig.Defaults(c)
	c.Base.SetDefaults(defaultHTTPAddr)
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
