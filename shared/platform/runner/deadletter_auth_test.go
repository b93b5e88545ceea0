package runner_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"go.uber.org/zap"

	"github.com/eventshop/shared/platform/deadletter"
	"github.com/eventshop/shared/platform/natstest"
	"github.com/eventshop/shared/platform/runner"
)

func dlqInfo(t *testing.T, js jetstream.JetStream) jetstream.StreamConfig {
	t.Helper()
	s, err := js.Stream(context.Background(), deadletter.DefaultStream)
	if err != nil {
		t.Fatal(err)
	}
	return s.CachedInfo().Config
}

// TestDeadLetterStreamUnderProductionPermissions runs deadletter.EnsureStream
// as a service's NATS user of deployments/nats/auth.conf, which may create
// the shared dead-letter stream but never update it: a stream the ops step
// made is used as it is, a missing one is created, one made before rollup
// existed is reported (letters still kept), and one whose limits would drop
// letters (inventory-service once set max_msgs 1 and erased every
// service's letters) is refused with a message saying who must fix it.
func TestDeadLetterStreamUnderProductionPermissions(t *testing.T) {
	tests := []struct {
		name     string
		existing func() *jetstream.StreamConfig // made by ops before the service starts; nil: none
		wantErr  error
		wantMsg  string
	}{
		{name: "made by ops", existing: func() *jetstream.StreamConfig {
			c := deadletter.StreamConfig(deadletter.DefaultStream, 1)
			return &c
		}},
		{name: "missing", existing: func() *jetstream.StreamConfig { return nil }},
		{name: "made before rollup", existing: func() *jetstream.StreamConfig {
			c := deadletter.StreamConfig(deadletter.DefaultStream, 1)
			c.AllowRollup, c.AllowMsgTTL = false, false
			return &c
		}, wantErr: deadletter.ErrStreamOutdated, wantMsg: "setup-streams"},
		{name: "limits drop letters", existing: func() *jetstream.StreamConfig {
			c := deadletter.StreamConfig(deadletter.DefaultStream, 1)
			c.MaxMsgs = 1
			return &c
		}, wantErr: deadletter.ErrStreamUnsafe, wantMsg: "max_msgs 1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := natstest.StartAuth(t)
			_, ops := s.ConnectAs(t, "ops")
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			existing := tt.existing()
			if existing != nil {
				if _, err := ops.CreateStream(ctx, *existing); err != nil {
					t.Fatal(err)
				}
			}
			_, js := s.ConnectAs(t, "inventory-service")
			err := deadletter.EnsureStream(ctx, js, deadletter.DefaultStream, 1)
			if !errors.Is(err, tt.wantErr) || (err != nil && !strings.Contains(err.Error(), tt.wantMsg)) {
				t.Fatalf("EnsureStream as inventory-service: err = %v, want %v mentioning %q", err, tt.wantErr, tt.wantMsg)
			}
			got := dlqInfo(t, ops)
			want := deadletter.StreamConfig(deadletter.DefaultStream, 1)
			if existing != nil {
				want = *existing
			}
			if want.MaxMsgs == 0 {
				want.MaxMsgs = -1 // unlimited, as the server stores it
			}
			if got.MaxMsgs != want.MaxMsgs || got.AllowRollup != want.AllowRollup || got.AllowMsgTTL != want.AllowMsgTTL {
				t.Fatalf("DLQ after ensure: max_msgs %d rollup %v ttl %v; want %d %v %v (a service never changes it)",
					got.MaxMsgs, got.AllowRollup, got.AllowMsgTTL, want.MaxMsgs, want.AllowRollup, want.AllowMsgTTL)
			}
		})
	}
}

// TestRunnerConsumesWithAnOutdatedDeadLetterStream: where a service may not
// upgrade the dead-letter stream, its consumer still starts, handles
// messages and dead-letters poison ones.
func TestRunnerConsumesWithAnOutdatedDeadLetterStream(t *testing.T) {
	s := natstest.StartAuth(t)
	_, admin := s.ConnectAs(t, "admin")
	ctx := context.Background()
	old := deadletter.StreamConfig(deadletter.DefaultStream, 1)
	old.AllowRollup, old.AllowMsgTTL = false, false
	if _, err := admin.CreateStream(ctx, old); err != nil {
		t.Fatal(err)
	}
	if _, err := admin.CreateStream(ctx, jetstream.StreamConfig{Name: "ORDERS", Subjects: []string{"orders.>"}}); err != nil {
		t.Fatal(err)
	}
	_, js := s.ConnectAs(t, "inventory-service")
	r, err := runner.New(js, runner.Config{Stream: "ORDERS", Durable: "inventory-orders", FilterSubjects: []string{"orders.*.created"}},
		func(context.Context, jetstream.Msg) error { return runner.Permanent(errors.New("poison")) }, zap.NewNop())
	if err != nil {
		t.Fatal(err)
	}
	if err := r.Start(ctx); err != nil {
		t.Fatalf("Start with a DLQ it may not upgrade: %v", err)
	}
	t.Cleanup(func() {
		dctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = r.Drain(dctx) // best effort at test end
	})
	if _, err := admin.Publish(ctx, "orders.o-1.created", []byte(`{}`)); err != nil {
		t.Fatal(err)
	}
	natstest.DeadLetter(t, admin, "inventory-orders", "ORDERS", 1)
}
