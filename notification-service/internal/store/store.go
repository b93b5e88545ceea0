// Package store keeps notification records in the JetStream KV bucket
// "notifications", one key per order and kind, changed by compare-and-set
// on the key's revision (kvstore.Repo).
package store

import (
	"context"
	"errors"
	"fmt"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/eventshop/notification-service/internal/notification"
	"github.com/eventshop/shared/platform/kvstore"
	"github.com/eventshop/shared/platform/natsconn"
)

// Bucket is the KV bucket the notification service owns.
const Bucket = "notifications"

// tracerName is the instrumentation scope of the store's KV spans.
const tracerName = "github.com/eventshop/notification-service/internal/store"

// Notifications is the KV adapter of notification records, and the reader
// of the notifications.<id>.sent events that are the log channel's records
// (app.Store).
type Notifications struct {
	records *kvstore.Repo[notification.Notification]
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
	records, err := kvstore.New[notification.Notification](kv, kvstore.WithTracer(tracerName),
		kvstore.WithConflict(notification.ErrConflict))
	if err != nil {
		return nil, err
	}
	return &Notifications{records: records, streams: natsconn.NewStreams(js)}, nil
}

// Get returns the record of an order's notification of kind k and its
// revision, or notification.ErrNotFound.
func (s *Notifications) Get(ctx context.Context, orderID string, k notification.Kind) (notification.Notification, uint64, error) {
	key := notification.Key(orderID, k)
	n, rev, err := s.records.Get(ctx, key)
	if errors.Is(err, kvstore.ErrNotFound) {
		return notification.Notification{}, 0, fmt.Errorf("%s: %w", key, notification.ErrNotFound)
	}
	return n, rev, err
}

// Create stores n if no record exists for its key; otherwise the error
// wraps notification.ErrConflict.
func (s *Notifications) Create(ctx context.Context, n notification.Notification) (uint64, error) {
	return s.records.Create(ctx, n.Key(), n)
}

// Modify applies change to the record of an order's notification of kind
// k (the zero value at revision 0 if there is none) and stores it by
// compare-and-set, starting over from a fresh read a bounded number of
// times when another delivery wrote first; then the error wraps
// notification.ErrConflict. A change that leaves the record as it was
// writes nothing (kvstore.Repo.Modify).
func (s *Notifications) Modify(ctx context.Context, orderID string, k notification.Kind, change func(n *notification.Notification, rev uint64) error) (notification.Notification, uint64, error) {
	return s.records.Modify(ctx, notification.Key(orderID, k), change)
}

// ModifyFrom is Modify starting from n, read or written at revision rev:
// the first attempt does not read.
func (s *Notifications) ModifyFrom(ctx context.Context, n notification.Notification, rev uint64, change func(n *notification.Notification, rev uint64) error) (notification.Notification, uint64, error) {
	return s.records.ModifyFrom(ctx, n.Key(), n, rev, change)
}
