package config_test

import (
	"errors"
	platformconfig "github.com/eventshop/shared/platform/config"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"

	"github.com/eventshop/payment-service/internal/config"
)

// env looks up m, with the one required variable, GATEWAY_API_KEY, set
// unless m says otherwise.
func env(m map[string]string) func(string) (string, bool) {
	return func(k string) (string, bool) {
		v, ok := m[k]
		if !ok && k == "GATEWAY_API_KEY" {
			return "test-key", true
		}
		return v, ok
	}
}

func TestLoad(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		env     map[string]string
		check   func(t *testing.T, c config.Config)
		wantErr error
	}{
		{
			name: "defaults",
			env:  map[string]string{},
			check: func(t *testing.T, c config.Config) {
				if c.HTTPAddr != ":8082" || c.GatewayURL != "http://127.0.0.1:8090" || c.GatewayTimeout != 5*time.Second ||
					c.Breaker.FailureThreshold != 5 || c.Breaker.OpenTimeout != 5*time.Second || c.Breaker.HalfOpenMaxProbes != 1 ||
					c.ConsumerConcurrency != 8 || c.StreamReplicas != 1 || c.NATSURL != "nats://127.0.0.1:4222" {
					t.Fatalf("defaults = %+v", c)
				}
			},
		},
		{
			name: "overrides",
			env: map[string]string{"GATEWAY_URL": "https://gw:9000", "GATEWAY_TIMEOUT": "2s", "BREAKER_FAILURE_THRESHOLD": "3",
				"BREAKER_OPEN_TIMEOUT": "1m", "BREAKER_HALF_OPEN_PROBES": "2", "CONSUMER_CONCURRENCY": "4", "HTTP_ADDR": "127.0.0.1:0"},
			check: func(t *testing.T, c config.Config) {
				if c.GatewayURL != "https://gw:9000" || c.GatewayTimeout != 2*time.Second || c.Breaker.FailureThreshold != 3 ||
					c.Breaker.OpenTimeout != time.Minute || c.Breaker.HalfOpenMaxProbes != 2 || c.ConsumerConcurrency != 4 {
					t.Fatalf("config = %+v", c)
				}
			},
		},
		{name: "no gateway api key", env: map[string]string{"GATEWAY_API_KEY": ""}, wantErr: config.ErrInvalid},
		{name: "malformed duration", env: map[string]string{"GATEWAY_TIMEOUT": "soon"}, wantErr: config.ErrInvalid},
		{name: "malformed int", env: map[string]string{"BREAKER_FAILURE_THRESHOLD": "five"}, wantErr: config.ErrInvalid},
		{name: "gateway timeout beyond the ack wait", env: map[string]string{"GATEWAY_TIMEOUT": "45s"}, wantErr: config.ErrInvalid},
		{name: "gateway url without scheme", env: map[string]string{"GATEWAY_URL": "gateway:8090"}, wantErr: config.ErrInvalid},
		{name: "negative threshold", env: map[string]string{"BREAKER_FAILURE_THRESHOLD": "-1"}, wantErr: config.ErrInvalid},
		{name: "negative concurrency", env: map[string]string{"CONSUMER_CONCURRENCY": "-3"}, wantErr: config.ErrInvalid},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			c, err := config.Load(env(tt.env))
			if !errors.Is(err, tt.wantErr) || (tt.wantErr == nil && err != nil) {
				t.Fatalf("Load err = %v, want %v", err, tt.wantErr)
			}
			if tt.check != nil {
				tt.check(t, c)
			}
		})
	}
}

func TestFieldsMaskSecrets(t *testing.T) {
	t.Parallel()
	c, err := config.Load(env(map[string]string{"NATS_PASSWORD": "hunter2", "NATS_URL": "nats://u:hunter2@n1:4222,nats://n2:4222",
		"GATEWAY_API_KEY": "hunter2"}))
	if err != nil {
		t.Fatal(err)
	}
	core, logs := observer.New(zapcore.InfoLevel)
	zap.New(core).Info("config", platformconfig.Fields(c)...)
	for _, e := range logs.All() {
		for k, v := range e.ContextMap() {
			if s, ok := v.(string); ok && strings.Contains(s, "hunter2") {
				t.Fatalf("field %s leaks the password: %q", k, s)
			}
		}
	}
}
