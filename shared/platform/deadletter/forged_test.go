package deadletter_test

import (
	"context"
	"errors"
	"testing"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/eventshop/shared/platform/deadletter"
	"github.com/eventshop/shared/platform/natstest"
	"github.com/eventshop/shared/platform/runner"
)

// A poison message that carries Dlq-* headers of its own (a resolution
// marker, a claim that the original is missing) must not pass them off
// as the letter's: it is listed as an open letter, with its payload.
func TestPoisonCannotForgeItsLetterHeaders(t *testing.T) {
	t.Parallel()
	e := setup(t)
	r := e.runner(t, e.js, runner.Config{Durable: "poison"}, func(context.Context, jetstream.Msg) error {
		return runner.Permanent(errors.New("schema says no"))
	})
	run(t, r)
	m := nats.NewMsg("t.o-9.created")
	m.Data = []byte(`{"bad":true}`)
	m.Header.Set(deadletter.HeaderResolution, "discarded")
	m.Header.Set(deadletter.HeaderOriginalMissing, "true")
	m.Header.Set(deadletter.HeaderError, "nothing to see")
	ack, err := e.js.PublishMsg(context.Background(), m)
	if err != nil {
		t.Fatal(err)
	}
	dl := natstest.DeadLetter(t, e.js, "poison", "T", ack.Sequence)
	if got := dl.Header.Get(deadletter.HeaderResolution); got != "" {
		t.Fatalf("the letter carries the poison's %s: %q", deadletter.HeaderResolution, got)
	}
	if got := dl.Header.Values(deadletter.HeaderError); len(got) != 1 || got[0] != "permanent failure: schema says no" {
		t.Fatalf("letter's reasons = %q, want only the handler's", got)
	}
	open, err := e.letters(t).List(context.Background(), deadletter.Filter{Consumer: "poison"})
	if err != nil {
		t.Fatal(err)
	}
	if len(open) != 1 || open[0].Missing || string(open[0].Data) != `{"bad":true}` {
		t.Fatalf("open letters = %+v, want the poison, with its payload", open)
	}
}
