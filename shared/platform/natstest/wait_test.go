package natstest_test

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/eventshop/shared/platform/deadletter"
	"github.com/eventshop/shared/platform/natstest"
)

func TestEventually(t *testing.T) {
	t.Parallel()
	var n atomic.Int32
	natstest.Eventually(t, "third look", func() bool { return n.Add(1) >= 3 })
	var m atomic.Int32
	natstest.EventuallyNil(t, "third look", func() error {
		if m.Add(1) < 3 {
			return errors.New("not yet")
		}
		return nil
	})
}

func TestDeadLetter(t *testing.T) {
	t.Parallel()
	srv := natstest.Start(t)
	_, js := natstest.Connect(t, srv)
	ctx := context.Background()
	if err := deadletter.EnsureStream(ctx, js, deadletter.DefaultStream, 1); err != nil {
		t.Fatal(err)
	}
	go func() {
		time.Sleep(100 * time.Millisecond) // the dead letter arrives later
		msg := nats.NewMsg("dlq.c.S.7")
		msg.Data = []byte("poison")
		msg.Header.Set(deadletter.HeaderError, "bad")
		if _, err := js.PublishMsg(ctx, msg); err != nil {
			t.Error(err)
		}
	}()
	got := natstest.DeadLetter(t, js, "c", "S", 7)
	if string(got.Data) != "poison" || got.Header.Get(deadletter.HeaderError) != "bad" {
		t.Fatalf("dead letter = %q %v", got.Data, got.Header)
	}
}
