package gatewaysim

import (
	"errors"
	"fmt"

	"github.com/eventshop/shared/platform/config"
	"github.com/eventshop/shared/platform/tracing"
)

// Config is the simulator binary's configuration, read once from the
// environment.
type Config struct {
	Addr     string `env:"GATEWAY_ADDR" envDefault:":8090"`
	LogLevel string `env:"LOG_LEVEL" envDefault:"info"`
	// APIKey (required) is the payment service's credential for POST
	// /charges and POST /refunds.
	APIKey string `env:"GATEWAY_API_KEY" log:"secret"`
	// AdminToken guards GET /charges and /admin/mode; empty refuses them.
	AdminToken string `env:"ADMIN_TOKEN" log:"secret"`
	// MaxCharges bounds the charges and refund keys kept in memory; the
	// oldest are forgotten first.
	MaxCharges int `env:"GATEWAY_MAX_CHARGES" envDefault:"100000"`
	// Tracing is the OpenTelemetry setup (OTEL_EXPORTER_OTLP_ENDPOINT,
	// OTEL_SERVICE_NAME, OTEL_TRACES_SAMPLER, ...): see tracing.FromEnv.
	Tracing tracing.Config
}

// SetDefaults fills every unset field with its default.
func (c *Config) SetDefaults() { config.Defaults(c) }

// ReadEnv reads the tracing settings (config.Load calls it).
func (c *Config) ReadEnv(get func(key string) string) { c.Tracing = tracing.FromEnv(get) }

// Validate reports a configuration that cannot work.
func (c Config) Validate() error {
	var errs []error
	if c.Addr == "" {
		errs = append(errs, errors.New("GATEWAY_ADDR is empty"))
	}
	if c.APIKey == "" {
		errs = append(errs, errors.New("GATEWAY_API_KEY is empty: set the key the payment service sends (anyone could charge and refund without it)"))
	}
	if c.MaxCharges < 1 {
		errs = append(errs, fmt.Errorf("GATEWAY_MAX_CHARGES %d must be at least 1", c.MaxCharges))
	}
	if err := c.Tracing.Validate(); err != nil {
		errs = append(errs, err)
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("%w: %w", errInvalid, err)
	}
	return nil
}

// errInvalid marks a configuration the simulator cannot run with.
var errInvalid = errors.New("config")

// LoadConfig reads the configuration from lookup (os.LookupEnv).
func LoadConfig(lookup func(string) (string, bool)) (Config, error) {
	return config.Load[Config](lookup, errInvalid)
}

// ListenAddr is where the simulator listens (kit.Settings).
func (c Config) ListenAddr() string { return c.Addr }

// Level is the log level (kit.Settings).
func (c Config) Level() string { return c.LogLevel }

// TracingConfig is the tracing setup (kit.Settings).
func (c Config) TracingConfig() tracing.Config { return c.Tracing }
