package main

import (
	"context"
	"errors"
	"os"

	"github.com/eventshop/order-service/internal/config"
	"github.com/eventshop/order-service/internal/service"
	"github.com/eventshop/shared/platform/healthcheck"
	"github.com/eventshop/shared/platform/logging"
	"github.com/eventshop/shared/platform/tracing"
)

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
	defer func() { _ = log.Sync() }() // stderr sync errors are expected on some platforms
	tp, err := tracing.Setup(cfg.Tracing, service.Name, log)
	if err != nil {
		return err
	}
	// Flushed once the service has stopped, when every span has ended.
	defer func() { err = errors.Join(err, tp.Shutdown(context.Background())) }()
	log.Info("starting", cfg.Fields()...)
	svc, err := service.New(ctx, cfg, log)
	if err != nil {
		if ctx.Err() != nil {
			return nil // asked to stop while waiting for NATS: not a failure
		}
		return err
	}
	return svc.Run(ctx)
}
