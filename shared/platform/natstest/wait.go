package natstest

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/eventshop/shared/platform/deadletter"
	"github.com/nats-io/nats.go/jetstream"
)

// Patience is how long the waits of this package poll for an eventual
// outcome before they fail the test.
const Patience = 10 * time.Second

// pollInterval is the pause between two looks.
const pollInterval = 20 * time.Millisecond

// Eventually polls cond until it returns true and fails t if it does not
// within Patience; what names the outcome in the failure.
func Eventually(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(Patience)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(pollInterval)
	}
}

// EventuallyNil polls cond until it returns nil and fails t if it does not
// within Patience, with the last error: cond says why the outcome is not
// there yet.
func EventuallyNil(t testing.TB, what string, cond func() error) {
	t.Helper()
	deadline := time.Now().Add(Patience)
	for {
		err := cond()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s: %v", what, err)
		}
		time.Sleep(pollInterval)
	}
}

// DeadLetter waits for the dead letter that consumer durable wrote for the
// message at seq of stream, and returns it: its headers carry the reason
// (deadletter.HeaderError).
func DeadLetter(t testing.TB, js jetstream.JetStream, durable, stream string, seq uint64) *jetstream.RawStreamMsg {
	t.Helper()
	subject := fmt.Sprintf("dlq.%s.%s.%d", durable, stream, seq)
	var msg *jetstream.RawStreamMsg
	EventuallyNil(t, "dead letter "+subject, func() error {
		s, err := js.Stream(context.Background(), deadletter.DefaultStream)
		if err != nil {
			return err
		}
		msg, err = s.GetLastMsgForSubject(context.Background(), subject)
		return err
	})
	return msg
}
