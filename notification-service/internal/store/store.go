// Package store keeps notification records in the JetStream KV bucket
// "notifications", one key per order and kind, written with compare-and-set
// on the key's revision.
package store

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/eventshop/notification-service/internal/notification"
	"github.com/eventshop/shared/platform/natsconn"
)

// Bucket is the KV bucket the notification service owns.
const Bucket = "notifications"

// Notifications is the KV adapter of notification records, and the reader
// of the notifications.<id>.sent events that are the log channel's records.
type Notifications struct {
	kv jetstream.KeyValue
	// streams holds NOTIFICATIONS and ORDERS: the log channel's records are
	// its notifications.<id>.sent events (a log line cannot fail half way
	// and nobody counts its attempts), shown with the final order event
	// they announce.
	streams *natsconn.Streams
}

// Open creates or updates the bucket and returns its adapter.
func Open(ctx context.Context, js jetstream.JetStream, replicas int) (*Notifications, error) {
	if replicas < 1 {
		replicas = 1
	}
	kv, err := js.CreateOrUpdateKeyValue(ctx, jetstream.KeyValueConfig{
		Bucket:      Bucket,
		Description: "eventshop notification records: <order_id>.<kind> -> delivery state",
		History:     5,
		Storage:     jetstream.FileStorage,
		Replicas:    replicas,
	})
	if err != nil {
		return nil, fmt.Errorf("ensure kv bucket %s: %w", Bucket, err)
	}
	return &Notifications{kv: kv, streams: natsconn.NewStreams(js)}, nil
}

// Get returns the record of an order's notification of kind k and its
// revision, or notification.ErrNotFound.
func (s *Notifications) Get(ctx context.Context, orderID string, k notification.Kind) (notification.Notification, uint64, error) {
	key := notification.Key(orderID, k)
	e, err := s.kv.Get(ctx, key)
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return notification.Notification{}, 0, fmt.Errorf("%s: %w", key, notification.ErrNotFound)
	}
	if err != nil {
		return notification.Notification{}, 0, fmt.Errorf("get %s: %w", key, err)
	}
	var n notification.Notification
	if err := json.Unmarshal(e.Value(), &n); err != nil {
		return notification.Notification{}, 0, fmt.Errorf("decode %s: %w", key, err)
	}
	return n, e.Revision(), nil
}

// Create stores n if no record exists for its key; otherwise it returns
// notification.ErrConflict.
func (s *Notifications) Create(ctx context.Context, n notification.Notification) (uint64, error) {
	raw, err := json.Marshal(n)
	if err != nil {
		return 0, fmt.Errorf("encode %s: %w", n.Key(), err)
	}
	rev, err := s.kv.Create(ctx, n.Key(), raw)
	if errors.Is(err, jetstream.ErrKeyExists) {
		return 0, fmt.Errorf("create %s: %w", n.Key(), notification.ErrConflict)
	}
	if err != nil {
		return 0, fmt.Errorf("create %s: %w", n.Key(), err)
	}
	return rev, nil
}

// Update replaces the record at revision rev with n; if the record moved on
// since, it returns notification.ErrConflict.
func (s *Notifications) Update(ctx context.Context, n notification.Notification, rev uint64) (uint64, error) {
	raw, err := json.Marshal(n)
	if err != nil {
		return 0, fmt.Errorf("encode %s: %w", n.Key(), err)
	}
	next, err := s.kv.Update(ctx, n.Key(), raw, rev)
	if errors.Is(err, jetstream.ErrKeyRevisionMismatch) {
		return 0, fmt.Errorf("update %s at revision %d: %w", n.Key(), rev, notification.ErrConflict)
	}
	if err != nil {
		return 0, fmt.Errorf("update %s: %w", n.Key(), err)
	}
	return next, nil
}

// ListByOrder returns the order's notifications, at most one per kind, in
// the order of notification.Kinds: the KV records (webhook channel) and the
// announced notification without one (log channel).
func (s *Notifications) ListByOrder(ctx context.Context, orderID string) ([]notification.Notification, error) {
	out := []notification.Notification{}
	recorded := map[notification.Kind]bool{}
	for _, k := range notification.Kinds {
		n, _, err := s.Get(ctx, orderID, k)
		if errors.Is(err, notification.ErrNotFound) {
			continue
		}
		if err != nil {
			return nil, err
		}
		out = append(out, n)
		recorded[k] = true
	}
	n, err := s.announced(ctx, orderID)
	switch {
	case errors.Is(err, notification.ErrNotFound):
	case err != nil:
		return nil, err
	case !recorded[n.Kind]:
		out = append(out, n)
	}
	return out, nil
}
