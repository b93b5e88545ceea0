// Package config reads the notification service's settings from the
// environment once, fills defaults, validates them and describes them for the
// start-up log with secrets masked.
package config

import (
	"errors"
	"fmt"
	"net/url"
	"time"

	"go.uber.org/zap"

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
	Channel string
	// WebhookURL receives a signed POST per notification (webhook channel).
	WebhookURL string
	// WebhookSecret is the HMAC-SHA256 key of the signature header.
	WebhookSecret string
	// WebhookMaxElapsed bounds the in-process retries of one delivery; after
	// it the message goes back to JetStream and is retried with the
	// consumer's backoff.
	WebhookMaxElapsed time.Duration
	// WebhookInitialInterval is the first retry delay of a delivery.
	WebhookInitialInterval time.Duration
	// WebhookTimeout bounds one HTTP attempt.
	WebhookTimeout time.Duration
}

// Load reads the configuration through lookup (os.LookupEnv in production),
// fills defaults and validates it.
func Load(lookup func(string) (string, bool)) (Config, error) {
	return platformconfig.Load(lookup, ErrInvalid, func(r *platformconfig.Reader) Config {
		return Config{
			Base:                   platformconfig.ReadBase(r),
			Consumers:              platformconfig.ReadConsumers(r),
			Channel:                r.String("NOTIFY_CHANNEL", ""),
			WebhookURL:             r.String("NOTIFY_WEBHOOK_URL", ""),
			WebhookSecret:          r.String("NOTIFY_WEBHOOK_SECRET", ""),
			WebhookMaxElapsed:      r.Duration("NOTIFY_WEBHOOK_MAX_ELAPSED", 0),
			WebhookInitialInterval: r.Duration("NOTIFY_WEBHOOK_INITIAL_INTERVAL", 0),
			WebhookTimeout:         r.Duration("NOTIFY_WEBHOOK_TIMEOUT", 0),
		}
	})
}

// SetDefaults fills every unset field with its default.
func (c *Config) SetDefaults() {
	c.Base.SetDefaults(defaultHTTPAddr)
	c.Consumers.SetDefaults()
	if c.Channel == "" {
		c.Channel = ChannelLog
	}
	if c.WebhookMaxElapsed == 0 {
		c.WebhookMaxElapsed = 30 * time.Second
	}
	if c.WebhookInitialInterval == 0 {
		c.WebhookInitialInterval = 250 * time.Millisecond
	}
	if c.WebhookTimeout == 0 {
		c.WebhookTimeout = 10 * time.Second
	}
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

// Fields describes the configuration for the start-up log, secrets masked.
func (c Config) Fields() []zap.Field {
	return append(append(c.Base.Fields(), c.Consumers.Fields()...),
		zap.String("notify_channel", c.Channel),
		zap.String("notify_webhook_url", redactURL(c.WebhookURL)),
		zap.String("notify_webhook_secret", platformconfig.Mask(c.WebhookSecret)),
		zap.Duration("notify_webhook_max_elapsed", c.WebhookMaxElapsed),
		zap.Duration("notify_webhook_timeout", c.WebhookTimeout),
	)
}

// redactURL hides a password in the URL's user info, which some receivers
// use for basic auth.
func redactURL(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return ""
	}
	return u.Redacted()
}
