package config_test

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/eventshop/shared/platform/config"
)

func lookup(env map[string]string) func(string) (string, bool) {
	return func(k string) (string, bool) { v, ok := env[k]; return v, ok }
}

func TestBase(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		env     map[string]string
		want    config.Base
		wantErr string
	}{
		{name: "defaults", env: map[string]string{}, want: config.Base{
			NATSURL: "nats://127.0.0.1:4222", HTTPAddr: ":8080", LogLevel: "info", ShutdownTimeout: 20 * time.Second, StreamReplicas: 1, MaxConns: 1024, BrokerMetricsInterval: 5 * time.Second,
		}},
		{name: "explicit zeros mean the defaults", env: map[string]string{"STREAM_REPLICAS": "0", "SHUTDOWN_TIMEOUT": "0s", "MAX_CONNS": "0"}, want: config.Base{
			NATSURL: "nats://127.0.0.1:4222", HTTPAddr: ":8080", LogLevel: "info", ShutdownTimeout: 20 * time.Second, StreamReplicas: 1, MaxConns: 1024, BrokerMetricsInterval: 5 * time.Second,
		}},
		{name: "overrides", env: map[string]string{
			"NATS_URL": "nats://n1:4222,nats://n2:4222", "NATS_USER": "u", "NATS_PASSWORD": "pw", "NATS_CREDS": "/c.creds",
			"HTTP_ADDR": "127.0.0.1:0", "ADMIN_TOKEN": "tok", "LOG_LEVEL": "debug", "SHUTDOWN_TIMEOUT": "5s", "STREAM_REPLICAS": "3", "MAX_CONNS": "64",
			"BROKER_METRICS_INTERVAL": "250ms",
		}, want: config.Base{
			NATSURL: "nats://n1:4222,nats://n2:4222", NATSUser: "u", NATSPassword: "pw", NATSCreds: "/c.creds",
			HTTPAddr: "127.0.0.1:0", AdminToken: "tok", LogLevel: "debug", ShutdownTimeout: 5 * time.Second, StreamReplicas: 3, MaxConns: 64,
			BrokerMetricsInterval: 250 * time.Millisecond,
		}},
		{name: "http addr without port", env: map[string]string{"HTTP_ADDR": "8080"}, wantErr: "HTTP_ADDR"},
		{name: "negative shutdown timeout", env: map[string]string{"SHUTDOWN_TIMEOUT": "-1s"}, wantErr: "SHUTDOWN_TIMEOUT"},
		{name: "too many replicas", env: map[string]string{"STREAM_REPLICAS": "7"}, wantErr: "STREAM_REPLICAS"},
		{name: "negative replicas", env: map[string]string{"STREAM_REPLICAS": "-1"}, wantErr: "STREAM_REPLICAS"},
		{name: "negative connection bound", env: map[string]string{"MAX_CONNS": "-5"}, wantErr: "MAX_CONNS"},
		{name: "negative broker metrics interval", env: map[string]string{"BROKER_METRICS_INTERVAL": "-1s"}, wantErr: "BROKER_METRICS_INTERVAL"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			c, err := config.Load[baseOnly](lookup(tt.env), errTestInvalid)
			b := c.Base
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("Validate = %v, want an error mentioning %s", err, tt.wantErr)
				}
				return
			}
			if err != nil || b != tt.want {
				t.Fatalf("Base = %+v, %v; want %+v", b, err, tt.want)
			}
		})
	}
}

func TestBaseValidateZeroValues(t *testing.T) {
	t.Parallel()
	// A Config built by hand without SetDefaults must not pass.
	err := config.Base{}.Validate()
	for _, key := range []string{"NATS_URL", "HTTP_ADDR", "SHUTDOWN_TIMEOUT", "STREAM_REPLICAS"} {
		if err == nil || !strings.Contains(err.Error(), key) {
			t.Errorf("Validate(zero) = %v, want it to mention %s", err, key)
		}
	}
}

func TestBaseMalformed(t *testing.T) {
	t.Parallel()
	_, err := config.Load[baseOnly](lookup(map[string]string{"STREAM_REPLICAS": "three", "SHUTDOWN_TIMEOUT": "soon", "PPROF": "sure"}), errTestInvalid)
	for _, want := range []string{`STREAM_REPLICAS="three": not a whole number`, `SHUTDOWN_TIMEOUT="soon": not a duration`, `PPROF="sure": not a boolean`} {
		if !errors.Is(err, errTestInvalid) || !strings.Contains(err.Error(), want) {
			t.Errorf("Load = %v, want errTestInvalid saying %s", err, want)
		}
	}
}

func TestBaseFieldsMaskSecrets(t *testing.T) {
	t.Parallel()
	b := config.Base{NATSURL: "nats://u:hunter2@n1:4222,nats://n2:4222", NATSUser: "u", NATSPassword: "hunter2", AdminToken: "hunter2"}
	for _, f := range config.Fields(b) {
		if strings.Contains(f.String, "hunter2") {
			t.Errorf("field %s leaks the password: %q", f.Key, f.String)
		}
	}
}

func TestBaseNATS(t *testing.T) {
	t.Parallel()
	b := config.Base{NATSURL: "nats://n1:4222", NATSUser: "u", NATSPassword: "pw", NATSCreds: "/c.creds"}
	got := b.NATS("order-service")
	if got.URL != b.NATSURL || got.Name != "order-service" || got.User != "u" || got.Password != "pw" || got.CredsFile != "/c.creds" {
		t.Fatalf("NATS = %+v", got)
	}
}

func TestConsumers(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		env     map[string]string
		want    int
		wantErr bool
	}{
		{name: "default", env: map[string]string{}, want: 8},
		{name: "explicit zero means the default", env: map[string]string{"CONSUMER_CONCURRENCY": "0"}, want: 8},
		{name: "override", env: map[string]string{"CONSUMER_CONCURRENCY": "2"}, want: 2},
		{name: "negative", env: map[string]string{"CONSUMER_CONCURRENCY": "-1"}, wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, err := config.Load[consumersOnly](lookup(tt.env), errTestInvalid)
			c := got.Consumers
			if (err != nil) != tt.wantErr {
				t.Fatalf("Load = %v, wantErr %v", err, tt.wantErr)
			}
			if err == nil && c.ConsumerConcurrency != tt.want {
				t.Fatalf("ConsumerConcurrency = %d, want %d", c.ConsumerConcurrency, tt.want)
			}
		})
	}
}

var errTestInvalid = errors.New("invalid test configuration")

// testConfig is a service Config as Load expects it.
type testConfig struct {
	config.Base
	Extra  int    `env:"EXTRA" envDefault:"3"`
	Secret string `env:"SECRET" log:"secret"`
	Nested struct {
		Deep time.Duration `env:"DEEP" envDefault:"1m"`
	}
}

func (c *testConfig) SetDefaults() {
	config.Defaults(c)
	c.Base.SetDefaults(":9999")
}

// baseOnly and consumersOnly read the shared parts alone.
type baseOnly struct{ config.Base }

func (c *baseOnly) SetDefaults() { c.Base.SetDefaults(":8080") }

func (c baseOnly) Validate() error { return c.Base.Validate() }

type consumersOnly struct{ config.Consumers }

func (c *consumersOnly) SetDefaults() { c.Consumers.SetDefaults() }

func (c consumersOnly) Validate() error { return c.Consumers.Validate() }

func (c testConfig) Validate() error {
	errs := []error{c.Base.Validate()}
	if c.Extra < 1 {
		errs = append(errs, fmt.Errorf("EXTRA=%d: want >= 1", c.Extra))
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("%w: %w", errTestInvalid, err)
	}
	return nil
}

func TestLoad(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		env     map[string]string
		want    testConfig
		wantErr string
	}{
		{name: "defaults", env: map[string]string{}, want: func() testConfig {
			c := testConfig{Base: config.Base{
				NATSURL: "nats://127.0.0.1:4222", HTTPAddr: ":9999", LogLevel: "info", ShutdownTimeout: 20 * time.Second, StreamReplicas: 1, MaxConns: 1024, BrokerMetricsInterval: 5 * time.Second,
			}, Extra: 3}
			c.Nested.Deep = time.Minute
			return c
		}()},
		{name: "malformed", env: map[string]string{"EXTRA": "many"}, wantErr: "EXTRA"},
		{name: "invalid shared setting", env: map[string]string{"STREAM_REPLICAS": "9"}, wantErr: "STREAM_REPLICAS"},
		{name: "invalid own setting", env: map[string]string{"EXTRA": "-1"}, wantErr: "EXTRA"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, err := config.Load[testConfig](lookup(tt.env), errTestInvalid)
			if tt.wantErr != "" {
				if !errors.Is(err, errTestInvalid) || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("Load err = %v, want errTestInvalid mentioning %s", err, tt.wantErr)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Fatalf("Load = %+v, %v; want %+v", got, err, tt.want)
			}
		})
	}
}

// The start-up log line is made from the tags: every setting is in it,
// under its variable's name, and no secret is.
func TestFieldsListEverySetting(t *testing.T) {
	t.Parallel()
	c, err := config.Load[testConfig](lookup(map[string]string{"SECRET": "hunter2", "NATS_PASSWORD": "hunter2", "NATS_USER": "u", "PPROF": "true"}), errTestInvalid)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]bool{}
	for _, f := range config.Fields(c) {
		got[f.Key] = true
		if strings.Contains(f.String, "hunter2") {
			t.Errorf("field %s leaks a secret: %q", f.Key, f.String)
		}
	}
	for _, key := range []string{"nats_url", "nats_user", "nats_password", "nats_creds", "http_addr", "admin_token", "log_level",
		"shutdown_timeout", "stream_replicas", "pprof", "max_conns", "broker_metrics_interval", "tracing", "extra", "secret", "deep"} {
		if !got[key] {
			t.Errorf("the log line has no %s: %v", key, got)
		}
	}
}
