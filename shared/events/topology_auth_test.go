package events_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/eventshop/shared/events"
	"github.com/eventshop/shared/platform/deadletter"
	"github.com/eventshop/shared/platform/natstest"
)

// TestAuditStreamIsCreatedOnceAndNeverShrunk runs EnsureStream(AUDIT) as
// the audit service's NATS user of deployments/nats/auth.conf. The audit
// service once set max_msgs on AUDIT and dropped the first audit entries;
// now it may create AUDIT but never update it: a missing one is created
// append-only, one made by ops (or by an older release) is used as it is,
// and one whose limits can lose entries is refused with a message saying
// who must fix it, and left as it is.
func TestAuditStreamIsCreatedOnceAndNeverShrunk(t *testing.T) {
	shipped, err := events.StreamConfig(events.StreamAudit, events.StreamOptions{Replicas: 1})
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name     string
		existing func(jetstream.StreamConfig) *jetstream.StreamConfig // made by ops beforehand; nil: none
		wantErr  error
		wantMsg  string
	}{
		{name: "missing", existing: func(jetstream.StreamConfig) *jetstream.StreamConfig { return nil }},
		{name: "made by ops", existing: func(c jetstream.StreamConfig) *jetstream.StreamConfig { return &c }},
		{name: "made by an older release", existing: func(c jetstream.StreamConfig) *jetstream.StreamConfig {
			c.AllowDirect = true
			return &c
		}},
		{name: "limits drop entries", existing: func(c jetstream.StreamConfig) *jetstream.StreamConfig {
			c.MaxMsgs = 10
			return &c
		}, wantErr: events.ErrStreamUnsafe, wantMsg: "max_msgs 10"},
		{name: "purge allowed", existing: func(c jetstream.StreamConfig) *jetstream.StreamConfig {
			c.DenyPurge = false
			return &c
		}, wantErr: events.ErrStreamUnsafe, wantMsg: "deny_purge"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := natstest.StartAuth(t)
			_, admin := s.ConnectAs(t, "admin")
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			existing := tt.existing(shipped)
			if existing != nil {
				if _, err := admin.CreateStream(ctx, *existing); err != nil {
					t.Fatal(err)
				}
				for range 3 {
					if _, err := admin.Publish(ctx, "audit.e", []byte(`{}`)); err != nil {
						t.Fatal(err)
					}
				}
			}
			_, js := s.ConnectAs(t, "audit-service")
			_, err := events.EnsureStream(ctx, js, events.StreamAudit, events.StreamOptions{Replicas: 1})
			if !errors.Is(err, tt.wantErr) || (err != nil && !strings.Contains(err.Error(), tt.wantMsg)) {
				t.Fatalf("EnsureStream(AUDIT) as audit-service: err = %v, want %v mentioning %q", err, tt.wantErr, tt.wantMsg)
			}
			st, err := admin.Stream(ctx, events.StreamAudit)
			if err != nil {
				t.Fatal(err)
			}
			got := st.CachedInfo()
			want := shipped
			var wantMsgs uint64
			if existing != nil {
				want, wantMsgs = *existing, 3
			}
			if want.MaxMsgs == 0 {
				want.MaxMsgs = -1 // unlimited, as the server stores it
			}
			if got.Config.MaxMsgs != want.MaxMsgs || got.Config.DenyPurge != want.DenyPurge || got.Config.DenyDelete != want.DenyDelete || got.State.Msgs != wantMsgs {
				t.Fatalf("AUDIT after ensure: max_msgs %d deny purge %v deny delete %v, %d entries; want %d %v %v, %d",
					got.Config.MaxMsgs, got.Config.DenyPurge, got.Config.DenyDelete, got.State.Msgs, want.MaxMsgs, want.DenyPurge, want.DenyDelete, wantMsgs)
			}
		})
	}
}

// TestOpsSetsUpTheSharedStreams: the ops step, as the ops user, creates the
// dead-letter stream and AUDIT, and brings a shrunk one back to the shipped
// limits (ops is the identity that may; no service is).
func TestOpsSetsUpTheSharedStreams(t *testing.T) {
	s := natstest.StartAuth(t)
	_, admin := s.ConnectAs(t, "admin")
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	shrunk := deadletter.StreamConfig(deadletter.DefaultStream, 1)
	shrunk.MaxMsgs = 1
	if _, err := admin.CreateStream(ctx, shrunk); err != nil {
		t.Fatal(err)
	}
	_, ops := s.ConnectAs(t, "ops")
	if err := events.SetupSharedStreams(ctx, ops, events.StreamOptions{Replicas: 1}); err != nil {
		t.Fatalf("SetupSharedStreams as ops: %v", err)
	}
	for _, name := range []string{deadletter.DefaultStream, events.StreamAudit} {
		st, err := admin.Stream(ctx, name)
		if err != nil {
			t.Fatalf("%s after setup: %v", name, err)
		}
		if cfg := st.CachedInfo().Config; cfg.MaxMsgs != -1 {
			t.Errorf("%s max_msgs %d after setup, want unlimited", name, cfg.MaxMsgs)
		}
	}
	// The services then start on them: a dead-letter stream and an AUDIT
	// that keep everything are used as they are.
	_, audit := s.ConnectAs(t, "audit-service")
	if _, err := events.EnsureStream(ctx, audit, events.StreamAudit, events.StreamOptions{Replicas: 1}); err != nil {
		t.Errorf("audit-service on the ops-made AUDIT: %v", err)
	}
	if err := deadletter.EnsureStream(ctx, audit, deadletter.DefaultStream, 1); err != nil {
		t.Errorf("audit-service on the ops-made DLQ: %v", err)
	}
}
