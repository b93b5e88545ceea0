package events

import (
	"context"
	"fmt"
	"time"

	"github.com/cenkalti/backoff/v4"
	"github.com/nats-io/nats.go/jetstream"
)

// StreamOptions tunes the streams a service creates.
type StreamOptions struct {
	// Replicas is the stream replication factor (1 on a single server, 3 on
	// a cluster).
	Replicas int
	// MaxAge bounds how long events are kept; 0 keeps them for ever.
	MaxAge time.Duration
}

// StreamConfig returns the configuration of one of the system's streams.
// Events are kept under limits retention (several consumers read each
// stream), on file storage, with a two-minute duplicate window and direct
// get enabled for single-event look-ups by subject.
func StreamConfig(name string, o StreamOptions) (jetstream.StreamConfig, error) {
	subj, ok := StreamSubjects[name]
	if !ok {
		return jetstream.StreamConfig{}, fmt.Errorf("stream %q: %w", name, ErrUnknownType)
	}
	if o.Replicas < 1 {
		o.Replicas = 1
	}
	cfg := jetstream.StreamConfig{
		Name:        name,
		Description: "eventshop " + name + " events",
		Subjects:    []string{subj},
		Retention:   jetstream.LimitsPolicy,
		Storage:     jetstream.FileStorage,
		Replicas:    o.Replicas,
		MaxAge:      o.MaxAge,
		Duplicates:  2 * time.Minute,
		AllowDirect: true,
		Discard:     jetstream.DiscardOld,
	}
	if name == StreamAudit {
		// The audit log is append-only: nothing may delete or purge it.
		cfg.DenyDelete = true
		cfg.DenyPurge = true
		cfg.MaxAge = 0
		// Each append reads the chain head by sequence and links to it. A
		// direct get may be answered by a lagging replica of an R3 stream,
		// which would link a new entry to an older head; reads through
		// the stream leader are always current.
		cfg.AllowDirect = false
	}
	return cfg, nil
}

// EnsureStream creates or updates a stream the calling service owns.
func EnsureStream(ctx context.Context, js jetstream.JetStream, name string, o StreamOptions) (jetstream.Stream, error) {
	cfg, err := StreamConfig(name, o)
	if err != nil {
		return nil, err
	}
	s, err := js.CreateOrUpdateStream(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("ensure stream %s: %w", name, err)
	}
	return s, nil
}

// WaitStream waits, with exponential backoff, until a stream owned by another
// service exists, and returns it. It gives up when ctx ends.
func WaitStream(ctx context.Context, js jetstream.JetStream, name string) (jetstream.Stream, error) {
	var s jetstream.Stream
	b := backoff.NewExponentialBackOff()
	b.InitialInterval = 50 * time.Millisecond
	b.MaxInterval = 2 * time.Second
	b.MaxElapsedTime = 0
	op := func() error {
		var err error
		s, err = js.Stream(ctx, name)
		return err // not found yet, or the server is briefly unreachable: retry
	}
	if err := backoff.Retry(op, backoff.WithContext(b, ctx)); err != nil {
		return nil, fmt.Errorf("wait for stream %s: %w", name, err)
	}
	return s, nil
}
