// Command inventory-service owns the catalogue and its stock: it reserves,
// releases and commits the units of the orders of the saga.
// "inventory-service healthcheck" probes a running instance.
package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/eventshop/inventory-service/internal/config"
	"github.com/eventshop/inventory-service/internal/service"
	"github.com/eventshop/shared/platform/healthcheck"
	"github.com/eventshop/shared/platform/logging"
	"github.com/eventshop/shared/platform/tracing"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	err := run(ctx, os.Args[1:])
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "inventory-service:", err)
		os.Exit(1)
	}
}

// run reads the configuration once, then either probes a running instance
// (healthcheck) or runs the service until ctx ends.
func run(ctx context.Context, args []string) (err error) {
	cfg, err := config.Load(os.LookupEnv)
	if err != nil {
		return err
	}
	if len(args) > 0 && args[0] == "healthcheck" {
		return healthcheck.Probe(ctx, cfg.HTTPAddr)
	}
	log, err := logging.New(service.Name, cfg.LogLevel)
	if err != nil {
		return err
	}
	defer func() { _ = log.Sync() }() // stderr sync errors are expected and meaningless
	tp, err := tracing.Setup(cfg.Tracing, service.Name, log)
	if err != nil {
		return err
	}
	// Flushed once the service has stopped, when every span has ended.
	defer func() { err = errors.Join(err, tp.Shutdown(context.Background())) }()
	log.Info("starting", cfg.Fields()...)
	svc, err := service.New(ctx, cfg, log)
	if err != nil {
		return err
	}
	return svc.Run(ctx)
}
