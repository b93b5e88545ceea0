package chaos

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/eventshop/shared/platform/deadletter"
)

// DomainStreams are the streams of the system's events.
var DomainStreams = []string{"ORDERS", "INVENTORY", "PAYMENTS", "NOTIFICATIONS"}

// ReadDurables returns the durable consumers of the streams, with their
// filter subjects, as the server has them.
func ReadDurables(ctx context.Context, js jetstream.JetStream, streams []string) ([]Durable, error) {
	var out []Durable
	for _, name := range streams {
		s, err := js.Stream(ctx, name)
		if errors.Is(err, jetstream.ErrStreamNotFound) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("stream %s: %w", name, err)
		}
		l := s.ListConsumers(ctx)
		for ci := range l.Info() {
			if ci.Config.Durable == "" {
				continue // ordered readers, such as the audit check's
			}
			d := Durable{Stream: name, Name: ci.Config.Durable}
			if ci.Config.FilterSubject != "" {
				d.Filters = append(d.Filters, ci.Config.FilterSubject)
			}
			d.Filters = append(d.Filters, ci.Config.FilterSubjects...)
			out = append(out, d)
		}
		if err := l.Err(); err != nil {
			return nil, fmt.Errorf("consumers of %s: %w", name, err)
		}
	}
	return out, nil
}

// ReadLetters reads the dead-letter stream: the last message of every
// subject, a letter or the tombstone of a resolved one (deadletter.Decode),
// and how many messages each subject holds (1: the letter alone).
func ReadLetters(ctx context.Context, js jetstream.JetStream) ([]deadletter.Letter, map[string]uint64, error) {
	s, err := js.Stream(ctx, deadletter.DefaultStream)
	if errors.Is(err, jetstream.ErrStreamNotFound) {
		return nil, nil, nil
	}
	if err != nil {
		return nil, nil, fmt.Errorf("stream %s: %w", deadletter.DefaultStream, err)
	}
	info, err := s.Info(ctx, jetstream.WithSubjectFilter("dlq.>"))
	if err != nil {
		return nil, nil, fmt.Errorf("stream %s info: %w", deadletter.DefaultStream, err)
	}
	out := make([]deadletter.Letter, 0, len(info.State.Subjects))
	for subj := range info.State.Subjects {
		m, err := s.GetLastMsgForSubject(ctx, subj)
		if err != nil {
			return nil, nil, fmt.Errorf("dead letter %s: %w", subj, err)
		}
		out = append(out, deadletter.Decode(m))
	}
	return out, info.State.Subjects, nil
}

// isChaos reports whether a stored message was published by chaos.
func isChaos(m *jetstream.RawStreamMsg) bool {
	return m.Header.Get(HeaderInjected) != "" || strings.HasPrefix(m.Subject, "orders.chaos-")
}
