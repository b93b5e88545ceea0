package kit

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"go.uber.org/zap"

	"github.com/eventshop/shared/platform/config"
	"github.com/eventshop/shared/platform/healthcheck"
	"github.com/eventshop/shared/platform/logging"
	"github.com/eventshop/shared/platform/tracing"
)

// Settings is what Main needs of a program's configuration: where it
// listens (the healthcheck probes there), how much it logs and how it
// traces. config.Base has them; the configuration is logged at start-up
// by its tags (config.Fields).
type Settings interface {
	ListenAddr() string
	Level() string
	TracingConfig() tracing.Config
}

// Runner is a built service.
type Runner interface {
	Run(ctx context.Context) error
}

// Command is one more way to run a program, named by its first argument
// (audit-service's "setup-streams").
type Command[C Settings] struct {
	Name string
	Run  func(ctx context.Context, cfg C, log *zap.Logger) error
}

// Main is the whole main of a service: `kit.Main(service.Name, config.Load,
// service.New)`. It builds the service with newService (its options left
// out) and runs it until SIGINT or SIGTERM; see MainFunc.
func Main[C Settings, S Runner, O any](name string, load func(lookup func(string) (string, bool)) (C, error),
	newService func(ctx context.Context, cfg C, log *zap.Logger, opts ...O) (S, error), more ...Command[C]) {
	MainFunc(name, load, Serve(func(ctx context.Context, cfg C, log *zap.Logger) (S, error) {
		return newService(ctx, cfg, log)
	}), more...)
}

// Serve returns the run function of a service built by newService (one
// without options: `kit.MainFunc(service.Name, config.Load,
// kit.Serve(service.New))`): build it, then run it until ctx ends.
func Serve[C Settings, S Runner](newService func(ctx context.Context, cfg C, log *zap.Logger) (S, error)) func(context.Context, C, *zap.Logger) error {
	return func(ctx context.Context, cfg C, log *zap.Logger) error {
		svc, err := newService(ctx, cfg, log)
		if err != nil {
			if ctx.Err() != nil {
				return nil // asked to stop while waiting for NATS: not a failure
			}
			return err
		}
		return svc.Run(ctx)
	}
}

// MainFunc is the whole main of a program that runs as run: it reads the
// configuration once from the environment, then either probes a running
// instance ("healthcheck" as the first argument), or runs one of more
// (by name), or run, with a logger and tracing set up, until SIGINT or
// SIGTERM. A failure is printed after the program's name and exits 1.
func MainFunc[C Settings](name string, load func(lookup func(string) (string, bool)) (C, error),
	run func(ctx context.Context, cfg C, log *zap.Logger) error, more ...Command[C]) {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	err := start(ctx, name, os.Args[1:], load, run, more)
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, name+":", err)
		os.Exit(1)
	}
}

func start[C Settings](ctx context.Context, name string, args []string, load func(lookup func(string) (string, bool)) (C, error),
	run func(ctx context.Context, cfg C, log *zap.Logger) error, more []Command[C]) (err error) {
	cfg, err := load(os.LookupEnv)
	if err != nil {
		return err
	}
	what := "starting"
	if len(args) > 0 {
		switch cmd := args[0]; {
		case cmd == "healthcheck":
			return healthcheck.Probe(ctx, cfg.ListenAddr())
		default:
			found := false
			for _, c := range more {
				if c.Name == cmd {
					run, what, found = c.Run, cmd, true
				}
			}
			if !found {
				return fmt.Errorf("unknown command %q (want healthcheck%s, or none)", cmd, names(more))
			}
		}
	}
	log, err := logging.New(name, cfg.Level())
	if err != nil {
		return err
	}
	defer func() { _ = log.Sync() }() // syncing stderr fails on some platforms, harmlessly
	tp, err := tracing.Setup(cfg.TracingConfig(), name, log)
	if err != nil {
		return err
	}
	// Flushed once the program has stopped, when every span has ended.
	defer func() { err = errors.Join(err, tp.Shutdown(context.Background())) }()
	log.Info(what, config.Fields(cfg)...)
	return run(ctx, cfg, log)
}

func names[C Settings](more []Command[C]) string {
	s := ""
	for _, c := range more {
		s += ", " + c.Name
	}
	return s
}
