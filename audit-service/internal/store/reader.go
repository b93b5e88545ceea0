package store

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"go.uber.org/zap"

	"github.com/eventshop/audit-service/internal/chain"
	"github.com/eventshop/shared/events"
)

// Reader replays audit entries in chain (stream) order with short-lived
// ordered consumers: no durable state on the server, no acks, and a gap in
// delivery makes the client library recreate the consumer at the right
// place instead of skipping.
type Reader struct {
	js  jetstream.JetStream
	log *zap.Logger
}

// NewReader returns a reader of the AUDIT stream.
func NewReader(js jetstream.JetStream, log *zap.Logger) *Reader { return &Reader{js: js, log: log} }

// StoredMsg is one message of the audit stream.
type StoredMsg struct {
	Subject   string
	StreamSeq uint64
	Data      []byte
}

// Scan calls fn with every message on subjects matching filter, in stream
// order, from the first one to the last one pending when the scan reached
// it. It stops early if fn returns an error.
func (r *Reader) Scan(ctx context.Context, filter string, fn func(StoredMsg) error) error {
	cons, err := r.js.OrderedConsumer(ctx, events.StreamAudit, jetstream.OrderedConsumerConfig{
		FilterSubjects:    []string{filter},
		DeliverPolicy:     jetstream.DeliverAllPolicy,
		InactiveThreshold: 30 * time.Second,
	})
	if err != nil {
		return fmt.Errorf("replay %s: %w", filter, err)
	}
	defer r.cleanup(cons)
	if info := cons.CachedInfo(); info == nil || info.NumPending == 0 {
		return nil
	}
	// A short pull expiry: a pull request stranded on a cluster node that
	// went away is replaced within seconds rather than after 30 s.
	it, err := cons.Messages(jetstream.PullMaxMessages(256), jetstream.PullExpiry(2*time.Second))
	if err != nil {
		return fmt.Errorf("replay %s: %w", filter, err)
	}
	defer it.Stop()
	for {
		msg, err := it.Next(jetstream.NextContext(ctx))
		if err != nil {
			return fmt.Errorf("replay %s: %w", filter, err)
		}
		meta, err := msg.Metadata()
		if err != nil {
			return fmt.Errorf("replay %s: %w", filter, err)
		}
		if err := fn(StoredMsg{Subject: msg.Subject(), StreamSeq: meta.Sequence.Stream, Data: msg.Data()}); err != nil {
			return err
		}
		if meta.NumPending == 0 {
			return nil
		}
	}
}

// cleanup deletes the ordered consumer at once rather than leaving it to its
// inactivity threshold, so frequent reads do not pile consumers up.
func (r *Reader) cleanup(cons jetstream.Consumer) {
	info := cons.CachedInfo()
	if info == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	if err := r.js.DeleteConsumer(ctx, events.StreamAudit, info.Name); err != nil && !errors.Is(err, jetstream.ErrConsumerNotFound) {
		r.log.Debug("ordered consumer cleanup", zap.String("consumer", info.Name), zap.Error(err))
	}
}

// Timeline returns the entries of orderID in chain order, or
// chain.ErrNotFound. Messages on the order's subjects that do not decode
// are left out here (verification reports them).
func (r *Reader) Timeline(ctx context.Context, orderID string) ([]chain.Entry, error) {
	var out []chain.Entry
	err := r.Scan(ctx, chain.OrderFilter(orderID), func(m StoredMsg) error {
		e, err := chain.Decode(m.Data)
		if err != nil {
			r.log.Warn("undecodable audit entry in timeline", zap.String("subject", m.Subject),
				zap.Uint64("stream_seq", m.StreamSeq), zap.Error(err))
			return nil
		}
		out = append(out, e)
		return nil
	})
	if err != nil {
		return nil, err
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("order %s: %w", orderID, chain.ErrNotFound)
	}
	return out, nil
}

// Verify recomputes the whole chain.
func (r *Reader) Verify(ctx context.Context) (chain.Result, error) {
	v := chain.NewVerifier()
	err := r.Scan(ctx, chain.AllFilter, func(m StoredMsg) error {
		v.Add(m.Subject, m.Data, m.StreamSeq)
		return nil
	})
	if err != nil {
		return chain.Result{}, err
	}
	return v.Result(), nil
}
