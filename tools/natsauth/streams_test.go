package natsauth

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// dlqConfig is the dead-letter stream as the services and the ops step
// create it (shared/platform/deadletter.StreamConfig; tools does
// not depend on the shared module).
func dlqConfig() jetstream.StreamConfig {
	return jetstream.StreamConfig{
		Name:        "DLQ",
		Description: "eventshop dead letters: poison or exhausted messages with the reason",
		Subjects:    []string{"dlq.>"},
		Storage:     jetstream.FileStorage,
		Retention:   jetstream.LimitsPolicy,
		Replicas:    1,
		AllowDirect: true,
		Duplicates:  2 * time.Minute,
		AllowRollup: true,
		AllowMsgTTL: true,
	}
}

// auditConfig is the AUDIT stream (shared/events.StreamConfig).
func auditConfig() jetstream.StreamConfig {
	return jetstream.StreamConfig{
		Name:        "AUDIT",
		Description: "eventshop AUDIT events",
		Subjects:    []string{"audit.>"},
		Retention:   jetstream.LimitsPolicy,
		Storage:     jetstream.FileStorage,
		Replicas:    1,
		Duplicates:  2 * time.Minute,
		Discard:     jetstream.DiscardOld,
		DenyDelete:  true,
		DenyPurge:   true,
	}
}

// streamOps creates the shared streams as the ops user, as the one-shot
// setup step does at stack start, and fills them.
func streamOps(t *testing.T, s *authServer) {
	t.Helper()
	ops := s.connect(t, Ops)
	ctx := context.Background()
	for _, cfg := range []jetstream.StreamConfig{dlqConfig(), auditConfig()} {
		if _, err := ops.js.CreateOrUpdateStream(ctx, cfg); err != nil {
			t.Fatalf("ops ensures %s: %v", cfg.Name, err)
		}
	}
	admin := s.connect(t, Admin)
	for _, subj := range []string{"dlq.order-inventory.INVENTORY.1", "dlq.payment-orders.ORDERS.7", "audit.e-1", "audit.e-2"} {
		if _, err := admin.js.Publish(ctx, subj, []byte(`{}`)); err != nil {
			t.Fatal(err)
		}
	}
}

func streamState(t *testing.T, s *authServer, name string) (jetstream.StreamConfig, uint64) {
	t.Helper()
	admin := s.connect(t, Admin)
	st, err := admin.js.Stream(context.Background(), name)
	if err != nil {
		t.Fatal(err)
	}
	info := st.CachedInfo()
	return info.Config, info.State.Msgs
}

// TestNoServiceChangesASharedStream: a stolen service credential cannot
// shrink the limits of the dead-letter stream every service writes to
// (inventory-service once set max_msgs 1 and erased everyone's dead
// letters), nor the audit service its own append-only log (max_msgs
// dropped the first audit entries), nor delete or purge either.
func TestNoServiceChangesASharedStream(t *testing.T) {
	s := startServer(t)
	streamOps(t, s)
	shrink := func(cfg jetstream.StreamConfig) jetstream.StreamConfig {
		cfg.MaxMsgs = 1
		return cfg
	}
	type attack struct {
		user, stream, subject string
		do                    func(ctx context.Context, c *conn) error
	}
	var tests []attack
	for _, u := range []string{"order-service", "inventory-service", "payment-service", "notification-service", "audit-service"} {
		tests = append(tests,
			attack{u, "DLQ", "$JS.API.STREAM.UPDATE.DLQ", func(ctx context.Context, c *conn) error {
				_, err := c.js.UpdateStream(ctx, shrink(dlqConfig()))
				return err
			}},
			attack{u, "DLQ", "$JS.API.STREAM.PURGE.DLQ", func(ctx context.Context, c *conn) error {
				st, err := c.js.Stream(ctx, "DLQ")
				if err != nil {
					return err
				}
				return st.Purge(ctx)
			}},
			attack{u, "DLQ", "$JS.API.STREAM.DELETE.DLQ", func(ctx context.Context, c *conn) error {
				return c.js.DeleteStream(ctx, "DLQ")
			}},
		)
	}
	tests = append(tests,
		attack{"audit-service", "AUDIT", "$JS.API.STREAM.UPDATE.AUDIT", func(ctx context.Context, c *conn) error {
			_, err := c.js.UpdateStream(ctx, shrink(auditConfig()))
			return err
		}},
		attack{"audit-service", "AUDIT", "$JS.API.STREAM.PURGE.AUDIT", func(ctx context.Context, c *conn) error {
			st, err := c.js.Stream(ctx, "AUDIT")
			if err != nil {
				return err
			}
			return st.Purge(ctx)
		}},
		attack{"audit-service", "AUDIT", "$JS.API.STREAM.DELETE.AUDIT", func(ctx context.Context, c *conn) error {
			return c.js.DeleteStream(ctx, "AUDIT")
		}},
	)
	for _, tt := range tests {
		t.Run(tt.user+" "+tt.subject, func(t *testing.T) {
			c := s.connect(t, tt.user)
			ctx, cancel := context.WithTimeout(context.Background(), time.Second)
			defer cancel()
			if err := tt.do(ctx, c); err == nil {
				t.Fatalf("%s: done, want refused", tt.subject)
			}
			waitViolation(t, c, tt.subject)
			cfg, msgs := streamState(t, s, tt.stream)
			if cfg.MaxMsgs != -1 || msgs != 2 {
				t.Fatalf("%s after the refused request: max_msgs %d, %d messages; want unlimited and 2", tt.stream, cfg.MaxMsgs, msgs)
			}
		})
	}
}

// TestCreateOnceCannotChangeASharedStream: a service may still create the
// dead-letter stream (and the audit service its AUDIT stream) where no ops
// step ran, but a create never changes a stream that exists: the same
// configuration is a no-op, another one is refused by the server.
func TestCreateOnceCannotChangeASharedStream(t *testing.T) {
	s := startServer(t)
	streamOps(t, s)
	tests := []struct {
		user string
		cfg  jetstream.StreamConfig
	}{
		{"inventory-service", dlqConfig()},
		{"order-service", dlqConfig()},
		{"audit-service", dlqConfig()},
		{"audit-service", auditConfig()},
	}
	for _, tt := range tests {
		t.Run(tt.user+" creates "+tt.cfg.Name, func(t *testing.T) {
			c := s.connect(t, tt.user)
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
			defer cancel()
			if _, err := c.js.CreateStream(ctx, tt.cfg); err != nil {
				t.Fatalf("create with the same configuration: %v, want a no-op", err)
			}
			hostile := tt.cfg
			hostile.MaxMsgs = 1
			_, err := c.js.CreateStream(ctx, hostile)
			if !errors.Is(err, jetstream.ErrStreamNameAlreadyInUse) {
				t.Fatalf("create with max_msgs 1: err = %v, want the stream name already in use", err)
			}
			cfg, msgs := streamState(t, s, tt.cfg.Name)
			if cfg.MaxMsgs != -1 || msgs != 2 {
				t.Fatalf("%s after the creates: max_msgs %d, %d messages; want unlimited and 2", tt.cfg.Name, cfg.MaxMsgs, msgs)
			}
		})
	}
}

// TestServicesUseTheSharedStreams: what the services still do on the
// shared streams, with the ops-made streams in place: read their info
// (the runner checks the dead-letter stream's configuration), write a dead
// letter, append to AUDIT.
func TestServicesUseTheSharedStreams(t *testing.T) {
	s := startServer(t)
	streamOps(t, s)
	ctx := context.Background()
	for _, u := range []struct{ user, letter string }{
		{"order-service", "dlq.order-inventory.INVENTORY.9"},
		{"inventory-service", "dlq.inventory-orders.ORDERS.9"},
		{"payment-service", "dlq.payment-orders.ORDERS.9"},
		{"notification-service", "dlq.notification-orders.ORDERS.9"},
		{"audit-service", "dlq.audit-orders.ORDERS.9"},
	} {
		c := s.connect(t, u.user)
		if _, err := c.js.Stream(ctx, "DLQ"); err != nil {
			t.Errorf("%s reads the DLQ info: %v", u.user, err)
		}
		if _, err := c.js.Publish(ctx, u.letter, []byte(`{}`), jetstream.WithExpectLastSequencePerSubject(0)); err != nil {
			t.Errorf("%s writes a dead letter: %v", u.user, err)
		}
	}
	c := s.connect(t, "audit-service")
	if _, err := c.js.Stream(ctx, "AUDIT"); err != nil {
		t.Errorf("audit-service reads the AUDIT info: %v", err)
	}
	if _, err := c.js.Publish(ctx, "audit.e-3", []byte(`{}`)); err != nil {
		t.Errorf("audit-service appends: %v", err)
	}
}
