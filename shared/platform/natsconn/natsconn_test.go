package natsconn_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
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

// TestRepliesComeToTheUsersOwnInbox: a user allowed to subscribe only to
// _INBOX_<user>.> (as every service user in deployments/nats/auth.conf) can
// still make JetStream API calls, because Connect gives it that inbox prefix.
func TestRepliesComeToTheUsersOwnInbox(t *testing.T) {
	t.Parallel()
	opts := &server.Options{
		Host: "127.0.0.1", Port: -1, JetStream: true, StoreDir: t.TempDir(), NoLog: true, NoSigs: true,
		Users: []*server.User{{Username: "svc", Password: "pw", Permissions: &server.Permissions{
			Publish:   &server.SubjectPermission{Allow: []string{"$JS.API.>", "things.>"}},
			Subscribe: &server.SubjectPermission{Allow: []string{"_INBOX_svc.>"}},
		}}},
	}
	srv, err := server.NewServer(opts)
	if err != nil {
		t.Fatal(err)
	}
	srv.Start()
	t.Cleanup(srv.Shutdown)
	if !srv.ReadyForConnections(10 * time.Second) {
		t.Fatal("server not ready")
	}
	nc, js, err := natsconn.Connect(natsconn.Config{URL: srv.ClientURL(), Name: "svc", User: "svc", Password: "pw"}, zap.NewNop())
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	if inbox := nc.NewInbox(); !strings.HasPrefix(inbox, natsconn.InboxPrefix("svc")+".") {
		t.Fatalf("inbox %q, want prefix %s.", inbox, natsconn.InboxPrefix("svc"))
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if _, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: "THINGS", Subjects: []string{"things.>"}}); err != nil {
		t.Fatalf("create stream through the user's own inbox: %v", err)
	}
	if _, err := js.Publish(ctx, "things.1", []byte("x")); err != nil {
		t.Fatalf("publish ack through the user's own inbox: %v", err)
	}
}
