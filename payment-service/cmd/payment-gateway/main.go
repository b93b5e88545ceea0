// Command payment-gateway runs the card processor simulator (in-memory
// state) that the payment service charges in local runs and tests.
package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/eventshop/payment-service/internal/gatewaysim"
	"github.com/eventshop/shared/platform/healthcheck"
	"github.com/eventshop/shared/platform/logging"
	"github.com/eventshop/shared/platform/tracing"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	err := run(ctx, os.Args[1:])
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "payment-gateway:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string) (err error) {
	cfg, err := gatewaysim.LoadConfig(os.LookupEnv)
	if err != nil {
		return err
	}
	if len(args) > 0 && args[0] == "healthcheck" {
		return healthcheck.Probe(ctx, cfg.Addr)
	}
	log, err := logging.New(gatewaysim.ServiceName, cfg.LogLevel)
	if err != nil {
		return err
	}
	defer func() { _ = log.Sync() }() // stderr sync fails on some platforms; nothing to do about it
	tp, err := tracing.Setup(cfg.Tracing, gatewaysim.ServiceName, log)
	if err != nil {
		return err
	}
	// Flushed once the service has stopped, when every span has ended.
	defer func() { err = errors.Join(err, tp.Shutdown(context.Background())) }()
	log.Info("starting", cfg.Fields()...)
	return gatewaysim.Run(ctx, cfg, log)
}
