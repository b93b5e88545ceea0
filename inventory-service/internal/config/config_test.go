package config_test

import (
	"errors"
	platformconfig "github.com/eventshop/shared/platform/config"
	"strings"
	"testing"
	"time"

	"github.com/eventshop/inventory-service/internal/config"
)

func env(m map[string]string) func(string) (string, bool) {
	return func(k string) (string, bool) { v, ok := m[k]; return v, ok }
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
			return c.NATSURL == "nats://127.0.0.1:4222" && c.HTTPAddr == ":8081" && c.LogLevel == "info" &&
				c.ShutdownTimeout == 20*time.Second && c.StreamReplicas == 1 && c.ConsumerConcurrency == 8 &&
				c.ConsumerMaxDeliver == 10 && c.CASAttempts == 12
		}},
		{name: "overrides", env: map[string]string{"HTTP_ADDR": "127.0.0.1:0", "CONSUMER_CONCURRENCY": "3", "ADMIN_TOKEN": "s3cret", "STREAM_REPLICAS": "3"},
			want: func(c config.Config) bool {
				return c.HTTPAddr == "127.0.0.1:0" && c.ConsumerConcurrency == 3 && c.AdminToken == "s3cret" && c.StreamReplicas == 3
			}},
		{name: "not a number", env: map[string]string{"CONSUMER_CONCURRENCY": "many"}, wantErr: "CONSUMER_CONCURRENCY"},
		{name: "bad addr", env: map[string]string{"HTTP_ADDR": "8081"}, wantErr: "HTTP_ADDR"},
		{name: "bad replicas", env: map[string]string{"STREAM_REPLICAS": "2"}, wantErr: "STREAM_REPLICAS"},
		{name: "negative concurrency", env: map[string]string{"CONSUMER_CONCURRENCY": "-1"}, wantErr: "CONSUMER_CONCURRENCY"},
		{name: "user and creds", env: map[string]string{"NATS_USER": "u", "NATS_CREDS": "/x.creds"}, wantErr: "NATS_CREDS"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			c, err := config.Load(env(tt.env))
			if tt.wantErr != "" {
				if !errors.Is(err, config.ErrInvalid) || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want ErrInvalid mentioning %s", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !tt.want(c) {
				t.Fatalf("config = %+v", c)
			}
		})
	}
}

func TestFieldsMaskSecrets(t *testing.T) {
	t.Parallel()
	c, err := config.Load(env(map[string]string{"ADMIN_TOKEN": "topsecret", "NATS_PASSWORD": "hunter2"}))
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range platformconfig.Fields(c) {
		if f.String == "topsecret" || f.String == "hunter2" {
			t.Errorf("field %s leaks a secret", f.Key)
		}
	}
}
