package store

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"go.uber.org/zap"

	"github.com/eventshop/audit-service/internal/chain"
	"github.com/eventshop/shared/events"
	"github.com/eventshop/shared/platform/natsconn"
)

// errStop ends a scan early without an error.
var errStop = errors.New("stop scan")

// scan calls fn with every message of the AUDIT stream that cfg selects, in
// stream order, up to the last one pending when the scan reached it, with a
// short-lived ordered consumer: no durable state on the server, no acks,
// and a gap in delivery makes the client library recreate the consumer at
// the right place instead of skipping. It stops early, without an error,
// when fn returns errStop.
func scan(ctx context.Context, js jetstream.JetStream, log *zap.Logger, cfg jetstream.OrderedConsumerConfig, fn func(jetstream.Msg, *jetstream.MsgMetadata) error) error {
	cfg.InactiveThreshold = 30 * time.Second
	cons, err := js.OrderedConsumer(ctx, events.StreamAudit, cfg)
	if err != nil {
		return fmt.Errorf("replay %v: %w", cfg.FilterSubjects, err)
	}
	defer cleanup(js, log, cons)
	if info := cons.CachedInfo(); info == nil || info.NumPending == 0 {
		return nil
	}
	// A short pull expiry: a pull request stranded on a cluster node that
	// went away is replaced within seconds rather than after 30 s.
	it, err := cons.Messages(jetstream.PullMaxMessages(256), jetstream.PullExpiry(2*time.Second))
	if err != nil {
		return fmt.Errorf("replay %v: %w", cfg.FilterSubjects, err)
	}
	defer it.Stop()
	for {
		msg, err := it.Next(jetstream.NextContext(ctx))
		if err != nil {
			return fmt.Errorf("replay %v: %w", cfg.FilterSubjects, err)
		}
		meta, err := msg.Metadata()
		if err != nil {
			return fmt.Errorf("replay %v: %w", cfg.FilterSubjects, err)
		}
		if err := fn(msg, meta); err != nil {
			if errors.Is(err, errStop) {
				return nil
			}
			return err
		}
		if meta.NumPending == 0 {
			return nil
		}
	}
}

// cleanup deletes the ordered consumer at once rather than leaving it to its
// inactivity threshold, so frequent reads do not pile consumers up.
func cleanup(js jetstream.JetStream, log *zap.Logger, cons jetstream.Consumer) {
	info := cons.CachedInfo()
	if info == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	if err := js.DeleteConsumer(ctx, events.StreamAudit, info.Name); err != nil && !errors.Is(err, jetstream.ErrConsumerNotFound) {
		log.Debug("ordered consumer cleanup", zap.String("consumer", info.Name), zap.Error(err))
	}
}

// Reader verifies the audit chain and finds an order's entries in it.
type Reader struct {
	js  jetstream.JetStream
	log *zap.Logger

	streams *natsconn.Streams
}

// NewReader returns a reader of the AUDIT stream.
func NewReader(js jetstream.JetStream, log *zap.Logger) *Reader {
	return &Reader{js: js, log: log, streams: natsconn.NewStreams(js)}
}

// seqKey names an event by where it was read from.
type seqKey struct {
	stream string
	seq    uint64
}

// located is one event of an order as its domain stream holds it.
type located struct {
	key    seqKey
	id     string
	stored time.Time
}

// Timeline returns the entries of orderID in chain order, or
// chain.ErrNotFound.
//
// The audit stream has no per-order subject. The order's events are found
// by subject in the domain streams (<prefix>.<order_id>.>), which tells
// where each was read from and when it was stored. The audit stored each
// after that, so the blocks are scanned from the earliest of those times
// (less chain.ClockSkew) by their headers alone (chain.HeaderSeqs, a
// headers-only ordered consumer), and only the blocks that name one of the
// order's events are read whole, by sequence. The scan stops once every
// event is found: it reads the headers of the blocks written between the
// order's first event and the audit of its last one, or up to the end of
// the chain while an event is not audited yet.
func (r *Reader) Timeline(ctx context.Context, orderID string) ([]chain.Entry, error) {
	evs, err := r.orderEvents(ctx, orderID)
	if err != nil {
		return nil, err
	}
	if len(evs) == 0 {
		return nil, fmt.Errorf("order %s: %w", orderID, chain.ErrNotFound)
	}
	targets := make(map[seqKey]bool, len(evs))
	missing := map[string]bool{}
	from := evs[0].stored
	for _, e := range evs {
		targets[e.key] = true
		missing[e.id] = true
		if e.stored.Before(from) {
			from = e.stored
		}
	}
	var hits []uint64
	err = scan(ctx, r.js, r.log, jetstream.OrderedConsumerConfig{
		FilterSubjects: []string{chain.BlockSubject},
		DeliverPolicy:  jetstream.DeliverByStartTimePolicy,
		OptStartTime:   new(from.Add(-chain.ClockSkew)),
		HeadersOnly:    true,
	}, func(m jetstream.Msg, meta *jetstream.MsgMetadata) error {
		seqs, err := chain.ParseSeqs(m.Headers().Get(chain.HeaderSeqs))
		if err != nil {
			return nil // verification reports it
		}
		hit := false
		for _, e := range evs {
			if missing[e.id] && seqs.Contains(e.key.stream, e.key.seq) {
				delete(missing, e.id)
				hit = true
			}
		}
		if hit {
			hits = append(hits, meta.Sequence.Stream)
		}
		if len(missing) == 0 {
			return errStop
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("timeline of %s: %w", orderID, err)
	}
	audit, err := r.streams.Get(ctx, events.StreamAudit)
	if err != nil {
		return nil, err
	}
	var out []chain.Entry
	for _, seq := range hits {
		m, err := audit.GetMsg(ctx, seq)
		if err != nil {
			return nil, fmt.Errorf("timeline of %s: read block %d: %w", orderID, seq, err)
		}
		b, err := chain.DecodeBlock(m.Data)
		if err != nil {
			r.log.Warn("undecodable audit block in timeline", zap.Uint64("stream_seq", seq), zap.Error(err))
			continue
		}
		for _, e := range b.Entries {
			if targets[seqKey{e.Stream, e.StreamSeq}] {
				out = append(out, e)
			}
		}
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("order %s: %w", orderID, chain.ErrNotFound)
	}
	slices.SortFunc(out, func(a, b chain.Entry) int { return cmp.Compare(a.Index, b.Index) })
	return out, nil
}

// orderEvents returns the valid events of orderID in every domain stream,
// read by subject (next-by-subject gets; the domain streams allow direct
// gets). Invalid messages are left out: the audit dead-letters them.
func (r *Reader) orderEvents(ctx context.Context, orderID string) ([]located, error) {
	var out []located
	for _, name := range events.DomainStreams {
		s, err := r.streams.Get(ctx, name)
		if errors.Is(err, jetstream.ErrStreamNotFound) {
			continue
		}
		if err != nil {
			return nil, err
		}
		filter := strings.TrimSuffix(events.StreamSubjects[name], ">") + orderID + ".>"
		for seq := uint64(1); ; {
			m, err := s.GetMsg(ctx, seq, jetstream.WithGetMsgSubject(filter))
			if errors.Is(err, jetstream.ErrMsgNotFound) {
				break
			}
			if err != nil {
				return nil, fmt.Errorf("events of %s in %s: %w", orderID, name, err)
			}
			seq = m.Sequence + 1
			env, err := events.Decode(m.Subject, m.Data)
			if err != nil {
				continue
			}
			out = append(out, located{key: seqKey{name, m.Sequence}, id: env.ID, stored: m.Time})
		}
	}
	return out, nil
}

// Verify recomputes the whole chain.
func (r *Reader) Verify(ctx context.Context) (chain.Result, error) {
	v := chain.NewVerifier()
	err := scan(ctx, r.js, r.log, jetstream.OrderedConsumerConfig{
		FilterSubjects: []string{chain.AllFilter},
		DeliverPolicy:  jetstream.DeliverAllPolicy,
	}, func(m jetstream.Msg, meta *jetstream.MsgMetadata) error {
		v.Add(m.Subject(), m.Headers().Get(chain.HeaderSeqs), m.Data(), meta.Sequence.Stream)
		return nil
	})
	if err != nil {
		return chain.Result{}, err
	}
	return v.Result(), nil
}
