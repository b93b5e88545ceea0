package natsconn_test

import (
	"context"
	"errors"
	"testing"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/eventshop/shared/platform/natsconn"
	"github.com/eventshop/shared/platform/natstest"
)

func TestStreamsKeepsFoundHandlesAndRetriesMissingOnes(t *testing.T) {
	t.Parallel()
	srv := natstest.Start(t)
	_, js := natstest.Connect(t, srv)
	ctx := context.Background()
	streams := natsconn.NewStreams(js)
	if _, err := streams.Get(ctx, "LATER"); !errors.Is(err, jetstream.ErrStreamNotFound) {
		t.Fatalf("missing stream: err = %v, want ErrStreamNotFound", err)
	}
	if _, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: "LATER", Subjects: []string{"later.>"}}); err != nil {
		t.Fatal(err)
	}
	first, err := streams.Get(ctx, "LATER")
	if err != nil {
		t.Fatalf("the stream created since: %v", err)
	}
	again, err := streams.Get(ctx, "LATER")
	if err != nil || again != first {
		t.Fatalf("second look-up = %v, %v; want the kept handle", again, err)
	}
}
