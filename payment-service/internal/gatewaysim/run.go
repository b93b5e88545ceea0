package gatewaysim

import (
	"context"
	"time"

	"go.uber.org/zap"

	"github.com/eventshop/shared/platform/lifecycle"
	"github.com/eventshop/shared/platform/metrics"
)

// Run serves a fresh, healthy simulator on cfg.Addr until ctx ends.
func Run(ctx context.Context, cfg Config, log *zap.Logger) error {
	sim, err := New()
	if err != nil {
		return err
	}
	srv, err := NewServer(cfg.Addr, sim, log, metrics.NewRegistry(ServiceName))
	if err != nil {
		return err
	}
	if err := srv.Listen(); err != nil {
		return err
	}
	log.Info("payment gateway simulator listening", zap.String("addr", srv.Addr()))
	return lifecycle.Run(ctx, log, lifecycle.Parts{HTTP: srv, ShutdownTimeout: 5 * time.Second})
}
