package natsconn

import (
	"context"
	"fmt"
	"sync"

	"github.com/nats-io/nats.go/jetstream"
)

// Streams looks stream handles up by name once and keeps them: a handle
// carries the stream's configuration, which decides how its messages are
// read (direct get or through the leader), so one look-up serves every
// read. A failed look-up is not kept: the next call tries again (a stream
// another service owns may not exist yet).
type Streams struct {
	js jetstream.JetStream

	mu     sync.Mutex
	byName map[string]jetstream.Stream
}

// NewStreams returns an empty cache of js's streams.
func NewStreams(js jetstream.JetStream) *Streams {
	return &Streams{js: js, byName: map[string]jetstream.Stream{}}
}

// Get returns the handle of the stream name.
func (s *Streams) Get(ctx context.Context, name string) (jetstream.Stream, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if h, ok := s.byName[name]; ok {
		return h, nil
	}
	h, err := s.js.Stream(ctx, name)
	if err != nil {
		return nil, fmt.Errorf("stream %s: %w", name, err)
	}
	s.byName[name] = h
	return h, nil
}
