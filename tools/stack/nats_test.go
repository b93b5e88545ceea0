package stack

import (
	"context"
	"errors"
	"net"
	"strconv"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

func TestNATSRestartKeepsPortStoreAndClients(t *testing.T) {
	opts := &server.Options{Host: "127.0.0.1", Port: -1, JetStream: true, StoreDir: t.TempDir(), NoLog: true, NoSigs: true}
	n, err := StartNATS(opts, 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(n.Shutdown)
	url := n.ClientURL()

	reconnected := make(chan struct{}, 1)
	nc, err := nats.Connect(url, nats.MaxReconnects(-1), nats.ReconnectWait(50*time.Millisecond),
		nats.ReconnectHandler(func(*nats.Conn) { reconnected <- struct{}{} }))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	s, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: "T", Subjects: []string{"t.>"}, Storage: jetstream.FileStorage})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := js.Publish(ctx, "t.1", []byte("before")); err != nil {
		t.Fatal(err)
	}

	if err := n.Restart(200 * time.Millisecond); err != nil {
		t.Fatal(err)
	}
	if n.ClientURL() != url || !n.Running() {
		t.Fatalf("after restart: url %s running %v, want %s running", n.ClientURL(), n.Running(), url)
	}
	select {
	case <-reconnected:
	case <-ctx.Done():
		t.Fatal("client did not reconnect")
	}
	// The stream and its message survived (file store); the client
	// publishes again on the same connection.
	if _, err := js.Publish(ctx, "t.2", []byte("after")); err != nil {
		t.Fatal(err)
	}
	info, err := s.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if info.State.Msgs != 2 {
		t.Fatalf("stream holds %d messages after the restart, want 2", info.State.Msgs)
	}
	m, err := s.GetMsg(ctx, 1)
	if err != nil || string(m.Data) != "before" {
		t.Fatalf("message 1 = %v %v, want before", m, err)
	}

	// Shutdown, then Start: the same again; Start on a running server is a no-op.
	n.Shutdown()
	if n.Running() {
		t.Fatal("running after Shutdown")
	}
	if err := n.Start(); err != nil {
		t.Fatal(err)
	}
	if err := n.Start(); err != nil {
		t.Fatal(err)
	}
	if _, err := js.Publish(ctx, "t.3", []byte("again")); err != nil {
		t.Fatal(err)
	}
}

func TestStartNATSRefusesATakenPort(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	port := ln.Addr().(*net.TCPAddr).Port
	opts := &server.Options{Host: "127.0.0.1", Port: port, JetStream: true, StoreDir: t.TempDir(), NoLog: true, NoSigs: true}
	_, err = StartNATS(opts, 5*time.Second)
	var opErr *net.OpError
	if err == nil || !errors.As(err, &opErr) {
		t.Fatalf("StartNATS on taken port %s = %v, want the listen error", strconv.Itoa(port), err)
	}
}

func TestSpecEnvAndURLs(t *testing.T) {
	t.Parallel()
	s := Spec{Name: "order-service", Port: 8080}
	env := s.Env("nats://x:4522", 300, "tok")
	want := []string{"NATS_URL=nats://x:4522", "HTTP_ADDR=127.0.0.1:8380", "GATEWAY_ADDR=127.0.0.1:8390", "GATEWAY_URL=http://127.0.0.1:8390", "ADMIN_TOKEN=tok",
		"GATEWAY_API_KEY=" + gatewayAPIKey, "AUDIT_FINGERPRINT_KEY=" + auditFingerprintKey}
	if len(env) != len(want) {
		t.Fatalf("Env = %v, want %v", env, want)
	}
	for i := range want {
		if env[i] != want[i] {
			t.Fatalf("Env = %v, want %v", env, want)
		}
	}
	if got := s.ReadyURL(300); got != "http://127.0.0.1:8380/ready" {
		t.Fatalf("ReadyURL = %s", got)
	}
	if got := (Spec{Name: "payment-gateway", Port: 8090}).ReadyURL(0); got != "http://127.0.0.1:8090/health" {
		t.Fatalf("gateway ReadyURL = %s", got)
	}
}
