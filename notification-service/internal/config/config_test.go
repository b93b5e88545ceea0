package config_test

import (
	"errors"
	platformconfig "github.com/eventshop/shared/platform/config"
	"strings"
	"testing"
	"time"

	"github.com/eventshop/notification-service/internal/config"
)

func lookup(env map[string]string) func(string) (string, bool) {
	return func(k string) (string, bool) { v, ok := env[k]; return v, ok }
}

func TestLoad(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		env     map[string]string
		want    func(c config.Config) bool
		wantErr string
	}{
		{name: "defaults", env: map[string]string{}, want: func(c config.Config) bool {
			return c.HTTPAddr == ":8083" && c.Channel == config.ChannelLog && c.WebhookMaxElapsed == 30*time.Second &&
				c.ConsumerConcurrency == 8 && c.NATSURL == "nats://127.0.0.1:4222" && c.AckWait() == 30*time.Second
		}},
		{name: "webhook", env: map[string]string{
			"NOTIFY_CHANNEL": "webhook", "NOTIFY_WEBHOOK_URL": "https://hooks.example/x", "NOTIFY_WEBHOOK_SECRET": "k",
			"NOTIFY_WEBHOOK_MAX_ELAPSED": "5s",
		}, want: func(c config.Config) bool {
			return c.Channel == config.ChannelWebhook && c.WebhookMaxElapsed == 5*time.Second && c.AckWait() > 5*time.Second+c.WebhookTimeout
		}},
		{name: "webhook without url", env: map[string]string{"NOTIFY_CHANNEL": "webhook", "NOTIFY_WEBHOOK_SECRET": "k"}, wantErr: "NOTIFY_WEBHOOK_URL"},
		{name: "webhook without secret", env: map[string]string{"NOTIFY_CHANNEL": "webhook", "NOTIFY_WEBHOOK_URL": "http://h/"}, wantErr: "NOTIFY_WEBHOOK_SECRET"},
		{name: "unknown channel", env: map[string]string{"NOTIFY_CHANNEL": "sms"}, wantErr: "NOTIFY_CHANNEL"},
		{name: "malformed duration", env: map[string]string{"NOTIFY_WEBHOOK_MAX_ELAPSED": "soon"}, wantErr: "NOTIFY_WEBHOOK_MAX_ELAPSED"},
		{name: "bad concurrency", env: map[string]string{"CONSUMER_CONCURRENCY": "-1"}, wantErr: "CONSUMER_CONCURRENCY"},
		{name: "bad http addr", env: map[string]string{"HTTP_ADDR": "8083"}, wantErr: "HTTP_ADDR"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			c, err := config.Load(lookup(tt.env))
			if tt.wantErr != "" {
				if !errors.Is(err, config.ErrInvalid) || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("Load err = %v, want ErrInvalid mentioning %s", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("Load: %v", err)
			}
			if !tt.want(c) {
				t.Fatalf("Load = %+v", c)
			}
		})
	}
}

func TestFieldsMaskSecrets(t *testing.T) {
	t.Parallel()
	c, err := config.Load(lookup(map[string]string{
		"NOTIFY_CHANNEL": "webhook", "NOTIFY_WEBHOOK_URL": "https://user:pw@hooks.example/x",
		"NOTIFY_WEBHOOK_SECRET": "topsecret", "NATS_PASSWORD": "natspw",
	}))
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range platformconfig.Fields(c) {
		for _, secret := range []string{"topsecret", "natspw", ":pw@"} {
			if strings.Contains(f.String, secret) {
				t.Errorf("field %s leaks a secret: %q", f.Key, f.String)
			}
		}
	}
}
