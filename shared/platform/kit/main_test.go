package kit

import (
	"context"
	"errors"
	"strings"
	"testing"

	"go.uber.org/zap"

	"github.com/eventshop/shared/platform/tracing"
)

type testSettings struct {
	Addr  string `env:"HTTP_ADDR"`
	Token string `env:"TOKEN" log:"secret"`
}

func (s testSettings) ListenAddr() string          { return s.Addr }
func (testSettings) Level() string                 { return "error" }
func (testSettings) TracingConfig() tracing.Config { return tracing.Config{} }

func loadTest(func(string) (string, bool)) (testSettings, error) {
	return testSettings{Addr: "127.0.0.1:1", Token: "t0ken"}, nil
}

// start picks what to run by the first argument: the service, one of its
// commands, the healthcheck (which probes), or an error naming what
// exists.
func TestStartRunsTheCommandAsked(t *testing.T) {
	t.Parallel()
	var ran []string
	run := func(name string) func(context.Context, testSettings, *zap.Logger) error {
		return func(context.Context, testSettings, *zap.Logger) error { ran = append(ran, name); return nil }
	}
	more := []Command[testSettings]{{Name: "setup-streams", Run: run("setup-streams")}}
	ctx := context.Background()
	if err := start(ctx, "svc", nil, loadTest, run("service"), more); err != nil {
		t.Fatal(err)
	}
	if err := start(ctx, "svc", []string{"setup-streams"}, loadTest, run("service"), more); err != nil {
		t.Fatal(err)
	}
	if err := start(ctx, "svc", []string{"bogus"}, loadTest, run("service"), more); err == nil ||
		!strings.Contains(err.Error(), `unknown command "bogus" (want healthcheck, setup-streams, or none)`) {
		t.Errorf("start(bogus) = %v", err)
	}
	// Nothing listens on 127.0.0.1:1: the probe fails, and runs nothing.
	if err := start(ctx, "svc", []string{"healthcheck"}, loadTest, run("service"), more); err == nil {
		t.Error("healthcheck of nothing passed")
	}
	if strings.Join(ran, ",") != "service,setup-streams" {
		t.Errorf("ran %v, want service then setup-streams", ran)
	}
	failing := errors.New("boom")
	if err := start(ctx, "svc", nil, func(func(string) (string, bool)) (testSettings, error) { return testSettings{}, failing }, run("service"), more); !errors.Is(err, failing) {
		t.Errorf("a config that does not load: %v", err)
	}
}

type stubRunner struct{ ran *bool }

func (r stubRunner) Run(context.Context) error { *r.ran = true; return nil }

// A service that fails to build because it was asked to stop (waiting for
// NATS) is not a failure; any other failure is.
func TestServeStopsQuietlyWhenAskedTo(t *testing.T) {
	t.Parallel()
	cause := errors.New("nats: no servers")
	failing := Serve(func(context.Context, testSettings, *zap.Logger) (stubRunner, error) { return stubRunner{}, cause })
	ctx, cancel := context.WithCancel(context.Background())
	if err := failing(ctx, testSettings{}, zap.NewNop()); !errors.Is(err, cause) {
		t.Errorf("build failure while running = %v, want %v", err, cause)
	}
	cancel()
	if err := failing(ctx, testSettings{}, zap.NewNop()); err != nil {
		t.Errorf("build failure after stop = %v, want nil", err)
	}
	ran := false
	ok := Serve(func(context.Context, testSettings, *zap.Logger) (stubRunner, error) { return stubRunner{&ran}, nil })
	if err := ok(context.Background(), testSettings{}, zap.NewNop()); err != nil || !ran {
		t.Errorf("Serve = %v, ran %v", err, ran)
	}
}
