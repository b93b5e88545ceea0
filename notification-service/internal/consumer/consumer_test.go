package consumer

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/eventshop/notification-service/internal/notification"
	"github.com/eventshop/shared/events"
	"github.com/eventshop/shared/platform/natstest"
	"github.com/eventshop/shared/platform/runner"
)

func TestInvalidEventIsPermanent(t *testing.T) {
	t.Parallel()
	_, js := natstest.Connect(t, natstest.Start(t))
	ctx := context.Background()
	if _, err := events.EnsureStream(ctx, js, events.StreamOrders, events.StreamOptions{}); err != nil {
		t.Fatal(err)
	}
	m := nats.NewMsg("orders.o-bad.confirmed")
	m.Data = []byte(`{"specversion":"1.0","id":"x"}`)
	if _, err := js.PublishMsg(ctx, m); err != nil {
		t.Fatal(err)
	}
	c, err := js.CreateConsumer(ctx, events.StreamOrders, jetstream.ConsumerConfig{
		FilterSubject: "orders.o-bad.confirmed", AckPolicy: jetstream.AckExplicitPolicy, InactiveThreshold: time.Minute,
	})
	if err != nil {
		t.Fatal(err)
	}
	msg, err := c.Next(jetstream.FetchMaxWait(5 * time.Second))
	if err != nil {
		t.Fatal(err)
	}
	// The use cases are never reached: the event does not decode.
	err = Consumers(nil, 1, time.Second)[0].Handle(ctx, msg)
	if !runner.IsPermanent(err) || !errors.Is(err, events.ErrInvalidEvent) {
		t.Fatalf("Handle = %v, want permanent ErrInvalidEvent", err)
	}
}

func TestVerdict(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name          string
		err           error
		wantPermanent bool
		wantReason    string
	}{
		{name: "transient channel failure", err: errors.New("send n-1: connection refused")},
		{name: "rejected", err: fmt.Errorf("send n-1: receiver answered 400: %w", notification.ErrRejected), wantPermanent: true},
		{name: "contended record", err: fmt.Errorf("mark n-1 sent: %w", notification.ErrConflict)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got := verdict(nil, tt.err)
			if !errors.Is(got, tt.err) || runner.IsPermanent(got) != tt.wantPermanent {
				t.Fatalf("verdict(%v) = %v, want permanent=%v", tt.err, got, tt.wantPermanent)
			}
			if reason, _ := runner.RefusalReason(got); reason != tt.wantReason {
				t.Fatalf("verdict(%v) refused for %q, want %q", tt.err, reason, tt.wantReason)
			}
		})
	}
	if verdict(nil, nil) != nil {
		t.Fatal("verdict(nil) is not an ack")
	}
}
