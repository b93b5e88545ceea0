package config_test

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/eventshop/audit-service/internal/config"
	platformconfig "github.com/eventshop/shared/platform/config"
)

func TestLoad(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		env     map[string]string
		want    config.Config
		wantErr string
	}{
		{name: "defaults", env: map[string]string{}, want: config.Config{Base: platformconfig.Base{
			NATSURL: "nats://127.0.0.1:4222", HTTPAddr: ":8084", LogLevel: "info", ShutdownTimeout: 20 * time.Second, StreamReplicas: 1, MaxConns: 1024, BrokerMetricsInterval: 5 * time.Second,
		}}},
		{name: "overrides", env: map[string]string{"HTTP_ADDR": "127.0.0.1:0", "STREAM_REPLICAS": "3", "NATS_PASSWORD": "pw"}, want: config.Config{Base: platformconfig.Base{
			NATSURL: "nats://127.0.0.1:4222", NATSPassword: "pw", HTTPAddr: "127.0.0.1:0", LogLevel: "info", ShutdownTimeout: 20 * time.Second, StreamReplicas: 3, MaxConns: 1024, BrokerMetricsInterval: 5 * time.Second,
		}}},
		{name: "bad replicas", env: map[string]string{"STREAM_REPLICAS": "7"}, wantErr: "STREAM_REPLICAS"},
		{name: "malformed timeout", env: map[string]string{"SHUTDOWN_TIMEOUT": "later"}, wantErr: "SHUTDOWN_TIMEOUT"},
		{name: "bad http addr", env: map[string]string{"HTTP_ADDR": "localhost"}, wantErr: "HTTP_ADDR"},
		{name: "fingerprint key", env: map[string]string{"AUDIT_FINGERPRINT_KEY": strings.Repeat("pw", 16)}, want: config.Config{Base: platformconfig.Base{
			NATSURL: "nats://127.0.0.1:4222", HTTPAddr: ":8084", LogLevel: "info", ShutdownTimeout: 20 * time.Second, StreamReplicas: 1, MaxConns: 1024, BrokerMetricsInterval: 5 * time.Second,
		}, FingerprintKey: strings.Repeat("pw", 16)}},
		{name: "short fingerprint key", env: map[string]string{"AUDIT_FINGERPRINT_KEY": "pw"}, wantErr: "AUDIT_FINGERPRINT_KEY"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, err := config.Load(func(k string) (string, bool) { v, ok := tt.env[k]; return v, ok })
			if tt.wantErr != "" {
				if !errors.Is(err, config.ErrInvalid) || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("Load err = %v, want ErrInvalid mentioning %s", err, tt.wantErr)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Fatalf("Load = %+v, %v; want %+v", got, err, tt.want)
			}
			for _, f := range platformconfig.Fields(got) {
				if f.String == "pw" || (got.FingerprintKey != "" && f.String == got.FingerprintKey) {
					t.Fatalf("field %s leaks a secret", f.Key)
				}
			}
		})
	}
}
