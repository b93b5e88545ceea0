package config_test

import (
	"errors"
	"testing"
	"time"

	"github.com/eventshop/order-service/internal/config"
	platformconfig "github.com/eventshop/shared/platform/config"
)

func TestLoad(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		env     map[string]string
		want    func(config.Config) bool
		wantErr error
	}{
		{name: "defaults", env: map[string]string{}, want: func(c config.Config) bool {
			return c.HTTPAddr == ":8080" && c.NATSURL == "nats://127.0.0.1:4222" && c.ConsumerConcurrency == 8 &&
				c.StreamReplicas == 1 && c.ShutdownTimeout == 20*time.Second &&
				c.OrderDeadline == 2*time.Minute
		}},
		{name: "order deadline", env: map[string]string{"ORDER_DEADLINE": "45s"}, want: func(c config.Config) bool { return c.OrderDeadline == 45*time.Second }},
		{name: "negative order deadline", env: map[string]string{"ORDER_DEADLINE": "-1s"}, wantErr: config.ErrInvalid},
		{name: "overrides", env: map[string]string{"HTTP_ADDR": "127.0.0.1:0", "CONSUMER_CONCURRENCY": "2", "STREAM_REPLICAS": "3"},
			want: func(c config.Config) bool {
				return c.HTTPAddr == "127.0.0.1:0" && c.ConsumerConcurrency == 2 && c.StreamReplicas == 3
			}},
		{name: "malformed number", env: map[string]string{"CONSUMER_CONCURRENCY": "many"}, wantErr: config.ErrInvalid},
		{name: "malformed duration", env: map[string]string{"SHUTDOWN_TIMEOUT": "soon"}, wantErr: config.ErrInvalid},
		{name: "negative concurrency", env: map[string]string{"CONSUMER_CONCURRENCY": "-1"}, wantErr: config.ErrInvalid},
		{name: "password without user", env: map[string]string{"NATS_PASSWORD": "s3cret"}, wantErr: config.ErrInvalid},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, err := config.Load(func(k string) (string, bool) { v, ok := tt.env[k]; return v, ok })
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("err = %v, want %v", err, tt.wantErr)
			}
			if err == nil && !tt.want(got) {
				t.Fatalf("config = %+v", got)
			}
		})
	}
}

func TestFieldsMaskThePassword(t *testing.T) {
	t.Parallel()
	c := config.Config{Base: platformconfig.Base{NATSUser: "order", NATSPassword: "s3cret"}}
	for _, f := range platformconfig.Fields(c) {
		if f.String == "s3cret" {
			t.Fatalf("field %s leaks the password", f.Key)
		}
	}
}
