package chaos

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/nats-io/nats.go/jetstream"
)

// DeadLetterStream is the stream every consumer runner writes its dead
// letters to (shared/platform/runner).
const DeadLetterStream = "DLQ"

// DomainStreams are the streams of the system's events.
var DomainStreams = []string{"ORDERS", "INVENTORY", "PAYMENTS", "NOTIFICATIONS"}

// Headers of a dead letter and of the tombstone of a resolved one
// (shared/platform/runner, shared/platform/deadletter).
const (
	headerDLQSubject    = "Dlq-Original-Subject"
	headerDLQError      = "Dlq-Error"
	headerDLQResolution = "Dlq-Resolution"
)

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

// ReadLetters returns every subject of the dead-letter stream with the
// original subject and reason of its last message.
func ReadLetters(ctx context.Context, js jetstream.JetStream) ([]Letter, error) {
	s, err := js.Stream(ctx, DeadLetterStream)
	if errors.Is(err, jetstream.ErrStreamNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("stream %s: %w", DeadLetterStream, err)
	}
	info, err := s.Info(ctx, jetstream.WithSubjectFilter("dlq.>"))
	if err != nil {
		return nil, fmt.Errorf("stream %s info: %w", DeadLetterStream, err)
	}
	out := make([]Letter, 0, len(info.State.Subjects))
	for subj, n := range info.State.Subjects {
		l := Letter{Subject: subj, Messages: n}
		m, err := s.GetLastMsgForSubject(ctx, subj)
		if err != nil {
			return nil, fmt.Errorf("dead letter %s: %w", subj, err)
		}
		l.OriginalSubject = m.Header.Get(headerDLQSubject)
		l.Reason = m.Header.Get(headerDLQError)
		l.Resolved = m.Header.Get(headerDLQResolution)
		out = append(out, l)
	}
	return out, nil
}

// isChaos reports whether a stored message was published by chaos.
func isChaos(m *jetstream.RawStreamMsg) bool {
	return m.Header.Get(HeaderInjected) != "" || strings.HasPrefix(m.Subject, "orders.chaos-")
}
