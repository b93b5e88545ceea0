package gatewaysim

import (
	"errors"
	"fmt"

	"go.uber.org/zap"

	"github.com/eventshop/shared/platform/config"
	"github.com/eventshop/shared/platform/tracing"
)

// Config is the simulator binary's configuration, read once from the
// environment.
type Config struct {
	Addr     string // GATEWAY_ADDR, default ":8090"
	LogLevel string // LOG_LEVEL, default "info"
	// APIKey (GATEWAY_API_KEY, required) is the payment service's
	// credential for POST /charges and POST /refunds.
	APIKey string
	// AdminToken (ADMIN_TOKEN) guards GET /charges and /admin/mode; empty
	// refuses them.
	AdminToken string
	// MaxCharges (GATEWAY_MAX_CHARGES, default 100000) bounds the charges
	// and refund keys kept in memory; the oldest are forgotten first.
	MaxCharges int
	// Tracing is the OpenTelemetry setup (OTEL_EXPORTER_OTLP_ENDPOINT,
	// OTEL_SERVICE_NAME, OTEL_TRACES_SAMPLER, ...): see tracing.FromEnv.
	Tracing tracing.Config
}

func (c *Config) setDefaults() {
	if c.Addr == "" {
		c.Addr = ":8090"
	}
	if c.LogLevel == "" {
		c.LogLevel = "info"
	}
	if c.MaxCharges == 0 {
		c.MaxCharges = DefaultMaxCharges
	}
}

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
	return errors.Join(errs...)
}

// LoadConfig reads the configuration from lookup (os.LookupEnv).
func LoadConfig(lookup func(string) (string, bool)) (Config, error) {
	r := config.New(lookup)
	c := Config{
		Addr: r.String("GATEWAY_ADDR", ""), LogLevel: r.String("LOG_LEVEL", ""),
		APIKey: r.String("GATEWAY_API_KEY", ""), AdminToken: r.String("ADMIN_TOKEN", ""),
		MaxCharges: r.Int("GATEWAY_MAX_CHARGES", 0),
		Tracing:    tracing.FromEnv(func(key string) string { return r.String(key, "") }),
	}
	if err := r.Err(); err != nil {
		return Config{}, fmt.Errorf("config: %w", err)
	}
	c.setDefaults()
	if err := c.Validate(); err != nil {
		return Config{}, fmt.Errorf("config: %w", err)
	}
	return c, nil
}

// Fields returns the configuration as log fields.
func (c Config) Fields() []zap.Field {
	return []zap.Field{zap.String("gateway_addr", c.Addr), zap.String("log_level", c.LogLevel),
		zap.String("gateway_api_key", config.Mask(c.APIKey)), zap.String("admin_token", config.Mask(c.AdminToken)),
		zap.Int("gateway_max_charges", c.MaxCharges), zap.Dict("tracing", c.Tracing.Fields()...)}
}
