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
	sim, err := New(WithMaxCharges(cfg.MaxCharges))
	if err != nil {
		return err
	}
	if cfg.AdminToken == "" {
		log.Warn("ADMIN_TOKEN is not set: GET /charges and /admin/mode refuse every request")
	}
	srv, err := NewServer(cfg.Addr, sim, Credentials{APIKey: cfg.APIKey, AdminToken: cfg.AdminToken}, log, metrics.NewRegistry(ServiceName))
	if err != nil {
		return err
	}
	if err := srv.Listen(); err != nil {
		return err
	}
	log.Info("payment gateway simulator listening", zap.String("addr", srv.Addr()))
	return lifecycle.Run(ctx, log, lifecycle.Parts{HTTP: srv, ShutdownTimeout: 5 * time.Second})
}
