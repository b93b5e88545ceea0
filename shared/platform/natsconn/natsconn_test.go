package natsconn_test

import (
	"errors"
	"testing"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"go.uber.org/zap"

	"github.com/eventshop/shared/platform/natsconn"
	"github.com/eventshop/shared/platform/natstest"
)

func TestOpen(t *testing.T) {
	t.Parallel()
	srv := natstest.Start(t)
	cfg := natsconn.Config{URL: srv.ClientURL(), Name: "test-service"}

	var kept *nats.Conn
	got, err := natsconn.Open(cfg, zap.NewNop(), func(nc *nats.Conn, _ jetstream.JetStream) (string, error) {
		kept = nc
		return "wired", nil
	})
	if err != nil || got != "wired" {
		t.Fatalf("Open = %q, %v", got, err)
	}
	if kept.IsClosed() {
		t.Fatal("Open closed the connection of a service that started")
	}
	kept.Close()

	errWire := errors.New("wiring failed")
	var failed *nats.Conn
	if _, err := natsconn.Open(cfg, zap.NewNop(), func(nc *nats.Conn, _ jetstream.JetStream) (string, error) {
		failed = nc
		return "", errWire
	}); !errors.Is(err, errWire) {
		t.Fatalf("Open = %v, want the build error", err)
	}
	if !failed.IsClosed() {
		t.Fatal("Open left the connection of a failed build open")
	}

	built := false
	if _, err := natsconn.Open(natsconn.Config{}, zap.NewNop(), func(*nats.Conn, jetstream.JetStream) (string, error) {
		built = true
		return "", nil
	}); err == nil || built {
		t.Fatalf("Open without a URL = %v (built %v), want an error before build", err, built)
	}
}
