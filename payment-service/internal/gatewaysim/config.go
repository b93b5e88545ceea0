package gatewaysim

import (
	"errors"
	"fmt"

	"go.uber.org/zap"

	"github.com/eventshop/shared/platform/config"
)

// Config is the simulator binary's configuration, read once from the
// environment.
type Config struct {
	Addr     string // GATEWAY_ADDR, default ":8090"
	LogLevel string // LOG_LEVEL, default "info"
}

func (c *Config) setDefaults() {
	if c.Addr == "" {
		c.Addr = ":8090"
	}
	if c.LogLevel == "" {
		c.LogLevel = "info"
	}
}

// Validate reports a configuration that cannot work.
func (c Config) Validate() error {
	if c.Addr == "" {
		return errors.New("GATEWAY_ADDR is empty")
	}
	return nil
}

// LoadConfig reads the configuration from lookup (os.LookupEnv).
func LoadConfig(lookup func(string) (string, bool)) (Config, error) {
	r := config.New(lookup)
	c := Config{Addr: r.String("GATEWAY_ADDR", ""), LogLevel: r.String("LOG_LEVEL", "")}
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
	return []zap.Field{zap.String("gateway_addr", c.Addr), zap.String("log_level", c.LogLevel)}
}
