package service_test

import (
	"context"
	"testing"
	"time"

	"go.uber.org/zap"

	"github.com/eventshop/audit-service/internal/config"
	"github.com/eventshop/audit-service/internal/service"
	"github.com/eventshop/shared/platform/kit/kittest"
	"github.com/eventshop/shared/platform/natstest"
)

// TestRunsAsItsOwnUserOnOpsMadeStreams runs the stack's start-up order
// under the production permissions (deployments/nats/auth.conf): the ops
// step (`audit-service setup-streams` as the NATS user ops) makes the
// shared streams, then the audit service, as the audit-service user that
// may no longer update AUDIT or DLQ, starts on them and records a saga.
func TestRunsAsItsOwnUserOnOpsMadeStreams(t *testing.T) {
	s := natstest.StartAuth(t)
	_, admin := s.ConnectAs(t, "admin")
	w := worldOn(t, &kittest.Broker{Server: s.Server, JS: admin})

	ops, err := config.Load(func(k string) (string, bool) {
		v, ok := map[string]string{"NATS_URL": s.ClientURL(), "NATS_USER": "ops", "NATS_PASSWORD": s.Password("ops")}[k]
		return v, ok
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := service.SetupStreams(ctx, ops, zap.NewNop()); err != nil {
		t.Fatalf("setup-streams as ops: %v", err)
	}

	in := w.start(t, map[string]string{"NATS_USER": "audit-service", "NATS_PASSWORD": s.Password("audit-service")})
	w.saga(t, "o-ops-1")
	if res := in.waitEntries(t, 4); !res.OK {
		t.Fatalf("verify after a saga: %+v", res)
	}
}
