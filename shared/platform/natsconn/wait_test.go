package natsconn_test

import (
	"context"
	"errors"
	"testing"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/eventshop/shared/platform/natsconn"
	"github.com/eventshop/shared/platform/natstest"
)

func TestWaitStream(t *testing.T) {
	t.Parallel()
	srv := natstest.Start(t)
	_, js := natstest.Connect(t, srv)
	ctx := context.Background()

	t.Run("returns once another service creates it", func(t *testing.T) {
		t.Parallel()
		got := make(chan error, 1)
		go func() {
			s, err := natsconn.WaitStream(ctx, js, "LATE")
			if err == nil && s.CachedInfo().Config.Name != "LATE" {
				err = errors.New("another stream's handle")
			}
			got <- err
		}()
		if _, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: "LATE", Subjects: []string{"late.>"}}); err != nil {
			t.Fatal(err)
		}
		if err := <-got; err != nil {
			t.Fatalf("WaitStream: %v", err)
		}
	})
	t.Run("gives up when ctx ends", func(t *testing.T) {
		t.Parallel()
		cctx, cancel := context.WithCancel(ctx)
		got := make(chan error, 1)
		go func() {
			_, err := natsconn.WaitStream(cctx, js, "NEVER")
			got <- err
		}()
		cancel()
		if err := <-got; !errors.Is(err, context.Canceled) {
			t.Fatalf("WaitStream after cancel = %v, want context.Canceled", err)
		}
	})
	t.Run("refuses a nil log", func(t *testing.T) {
		t.Parallel()
		if _, err := natsconn.WaitStream(ctx, js, "ANY", natsconn.WithWaitLog(nil)); !errors.Is(err, natsconn.ErrInvalidOption) {
			t.Fatalf("WithWaitLog(nil) = %v, want ErrInvalidOption", err)
		}
	})
}
