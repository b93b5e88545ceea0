package store

import (
	"context"
	"errors"
	"fmt"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/eventshop/shared/platform/natsconn"
)

// leaderGet reads the last value of key from the stream's leader, so the
// read reflects every write acknowledged before it (natsconn.LeaderLast).
// It returns jetstream.ErrKeyNotFound for a key never written or deleted.
func (s *Store) leaderGet(ctx context.Context, key string) ([]byte, uint64, error) {
	m, err := natsconn.LeaderLast(ctx, s.js.Conn(), "KV_"+Bucket, s.putPrefix+key)
	switch {
	case errors.Is(err, jetstream.ErrMsgNotFound):
		return nil, 0, jetstream.ErrKeyNotFound
	case err != nil:
		return nil, 0, fmt.Errorf("get %s: %w", key, err)
	case m.Header.Get("KV-Operation") != "": // a delete or purge marker
		return nil, 0, jetstream.ErrKeyNotFound
	}
	return m.Data, m.Sequence, nil
}
