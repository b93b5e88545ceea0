// Package contracttest holds the events a service produced to their JSON
// Schemas. Inside the system events are checked by Go code (events.Decode
// and each payload's Validate), not by a schema engine; the schemas are the
// contract, and each service's component tests call Check at their end, so
// every event type a service produces in its tests is validated against
// its schema in CI, and is one contract.json says the service produces.
package contracttest

import (
	"context"
	"encoding/json"
	"errors"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/eventshop/shared/events"
)

// Check validates every event on stream whose source is source against its
// schema and fails t for each that does not pass. Messages that are not
// events of source (poison a test published on purpose, another service's
// events) are left alone. It returns how many events it checked.
func Check(t testing.TB, js jetstream.JetStream, stream, source string) int {
	t.Helper()
	if !js.Conn().IsConnected() {
		t.Logf("contract check of %s skipped: the test left NATS unreachable", stream)
		return 0
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	s, err := js.Stream(ctx, stream)
	if errors.Is(err, jetstream.ErrStreamNotFound) {
		return 0
	}
	if err != nil {
		t.Errorf("contract check of %s: %v", stream, err)
		return 0
	}
	info, err := s.Info(ctx)
	if err != nil {
		t.Errorf("contract check of %s: %v", stream, err)
		return 0
	}
	reg := events.DefaultRegistry()
	checked := 0
	for seq := info.State.FirstSeq; seq <= info.State.LastSeq && info.State.Msgs > 0; seq++ {
		msg, err := s.GetMsg(ctx, seq)
		if errors.Is(err, jetstream.ErrMsgNotFound) {
			continue
		}
		if err != nil {
			t.Errorf("contract check of %s seq %d: %v", stream, seq, err)
			return checked
		}
		var env struct {
			Source string      `json:"source"`
			Type   events.Type `json:"type"`
		}
		if json.Unmarshal(msg.Data, &env) != nil || env.Source != source {
			continue
		}
		if !events.ContractOf().Produces(source, env.Type) {
			t.Errorf("%s produced a %s event on %s, and shared/events/contract.json does not say it produces that type", source, env.Type, msg.Subject)
		}
		if _, err := reg.Parse(msg.Data); err != nil {
			t.Errorf("%s produced an event on %s that breaks its schema: %v", source, msg.Subject, err)
		}
		checked++
	}
	return checked
}
