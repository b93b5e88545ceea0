package service

import (
	"context"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"go.uber.org/zap"

	"github.com/eventshop/payment-service/internal/breaker"
	"github.com/eventshop/shared/platform/natstest"
)

// TestPauseInProgressEndsWithTheService: the breaker opens, the pauser asks
// the server to pause the consumers, and the server does not answer; when
// the service stops, the pause call ends with it (Run returns and is
// joined), and a pause cut short by the shutdown is not counted as failed.
func TestPauseInProgressEndsWithTheService(t *testing.T) {
	// A server without JetStream, where the test takes the pause requests
	// and never answers them.
	opts := natstest.Options(t.TempDir())
	opts.JetStream = false
	srv, err := natstest.Run(opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(srv.Stop)
	nc, err := nats.Connect(srv.ClientURL())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	requests := make(chan string, 8)
	if _, err := nc.Subscribe("$JS.API.CONSUMER.PAUSE.>", func(m *nats.Msg) { requests <- m.Subject }); err != nil {
		t.Fatal(err)
	}
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	p := newGatewayPauser(js, zap.NewNop(), prometheus.NewRegistry(), pausedConsumer{"INVENTORY", "payment-inventory"})

	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- p.Run(ctx) }()
	p.observe(breaker.Transition{From: breaker.Closed, To: breaker.Open, At: time.Now()}, time.Minute)
	if got := <-requests; got != "$JS.API.CONSUMER.PAUSE.INVENTORY.payment-inventory" {
		t.Fatalf("pause request on %s", got)
	}
	cancel() // the service stops while the pause call waits for its answer
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Run = %v", err)
		}
	case <-time.After(natstest.Patience):
		t.Fatal("the pause outlived the service")
	}
	var failed dto.Metric
	if err := p.pauses.WithLabelValues("failed").Write(&failed); err != nil {
		t.Fatal(err)
	}
	if n := failed.GetCounter().GetValue(); n != 0 {
		t.Fatalf("%v failed pauses counted, want 0: the shutdown cut it short", n)
	}
}
