// Package config reads the notification service's settings from the
// environment once, fills defaults, validates them and describes them for the
// start-up log with secrets masked.
package config

import (
	"errors"
	"fmt"
	"net/url"
	"time"

	platformconfig "github.com/eventshop/shared/platform/config"
)

// Channel names accepted in NOTIFY_CHANNEL.
const (
	ChannelLog     = "log"
	ChannelWebhook = "webhook"
)

// ErrInvalid marks a configuration the service cannot run with.
var ErrInvalid = errors.New("invalid configuration")

// defaultHTTPAddr is the listen address unless HTTP_ADDR says otherwise.
const defaultHTTPAddr = ":8083"

// Config is every setting of the notification service: the shared ones
// (NATS, HTTP_ADDR, LOG_LEVEL, SHUTDOWN_TIMEOUT, STREAM_REPLICAS,
// CONSUMER_CONCURRENCY) and its own.
type Config struct {
	platformconfig.Base
	platformconfig.Consumers

	// Channel is where notifications go: "log" or "webhook".
	Channel string `env:"NOTIFY_CHANNEL" envDefault:"log"`
	// WebhookURL receives a signed POST per notification (webhook channel).
	WebhookURL string `env:"NOTIFY_WEBHOOK_URL" log:"urls"`
	// WebhookSecret is the HMAC-SHA256 key of the signature header.
	WebhookSecret string `env:"NOTIFY_WEBHOOK_SECRET" log:"secret"`
	// WebhookMaxElapsed bounds the in-process retries of one delivery; after
	// it the message goes back to JetStream and is retried with the
	// consumer's backoff.
	WebhookMaxElapsed time.Duration `env:"NOTIFY_WEBHOOK_MAX_ELAPSED" envDefault:"30s"`
	// WebhookInitialInterval is the first retry delay of a delivery.
	WebhookInitialInterval time.Duration `env:"NOTIFY_WEBHOOK_INITIAL_INTERVAL" envDefault:"250ms"`
	// WebhookTimeout bounds one HTTP attempt.
	WebhookTimeout time.Duration `env:"NOTIFY_WEBHOOK_TIMEOUT" envDefault:"10s"`
}

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
	errs := []error{c.Base.Validate(), c.Consumers.Validate()}
	switch c.Channel {
	case ChannelLog:
	case ChannelWebhook:
		u, err := url.Parse(c.WebhookURL)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			errs = append(errs, fmt.Errorf("NOTIFY_WEBHOOK_URL=%q: want an absolute http(s) URL", c.WebhookURL))
		}
		if c.WebhookSecret == "" {
			errs = append(errs, errors.New("NOTIFY_WEBHOOK_SECRET is required with NOTIFY_CHANNEL=webhook"))
		}
	default:
		errs = append(errs, fmt.Errorf("NOTIFY_CHANNEL=%q: want log or webhook", c.Channel))
	}
	if c.WebhookMaxElapsed < 0 || c.WebhookInitialInterval <= 0 || c.WebhookTimeout <= 0 {
		errs = append(errs, errors.New("NOTIFY_WEBHOOK_MAX_ELAPSED, _INITIAL_INTERVAL and _TIMEOUT must be positive"))
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("%w: %w", ErrInvalid, err)
	}
	return nil
}

// AckWait is how long one delivery may take before JetStream redelivers
// it: longer than a whole webhook retry sequence, so a slow receiver never
// causes a parallel second delivery of the same message.
func (c Config) AckWait() time.Duration {
	if c.Channel != ChannelWebhook {
		return 30 * time.Second
	}
	return c.WebhookMaxElapsed + c.WebhookTimeout + 15*time.Second
}
