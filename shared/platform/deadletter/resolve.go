package deadletter

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"go.uber.org/zap"

	"github.com/eventshop/shared/platform/natsconn"
)

// DefaultTombstoneTTL is how long a resolved letter's tombstone guards its
// subject. It outlives the advisory capture stream's MaxAge, so no
// advisory still waiting to be processed can find the subject empty.
const DefaultTombstoneTTL = 30 * 24 * time.Hour

// ResolvedError is returned for a letter that was replayed or discarded
// already; it matches ErrResolved. Letter is its tombstone, read back.
type ResolvedError struct{ Letter Letter }

func (e *ResolvedError) Error() string {
	return fmt.Sprintf("dead letter %d was %s at %s", e.Letter.DLQSequence, e.Letter.Resolution.Kind,
		e.Letter.Resolution.Time.Format(time.RFC3339))
}

// Is makes errors.Is(err, ErrResolved) true.
func (e *ResolvedError) Is(target error) bool { return target == ErrResolved }

// Replayed is the outcome of one replay.
type Replayed struct {
	Letter         Letter
	ReplaySequence uint64 // stream sequence of the copy
	Duplicate      bool   // the stream had the copy already (a repeated replay)
}

// Failure is a letter a bulk operation could not handle.
type Failure struct {
	Sequence uint64
	Err      error
}

// Bulk is the outcome of a replay or discard by filter.
type Bulk struct {
	Replayed  []Replayed // replay only
	Discarded []Letter   // discard only
	Failed    []Failure  // letters left as they were (a resolved one counts here too)
}

// Replay re-publishes the dead letter seq to its original subject and
// resolves it. The copy carries the original payload and headers (trace
// and correlation ids) without the dead-letter and JetStream control
// headers, and Nats-Msg-Id "replay-<stream>-<original seq>": a repeated
// replay inside the stream's duplicate window stores nothing, and after
// it the letter is gone (ErrResolved). Every consumer of the stream that
// matches the subject sees the copy, not only the one that gave up: the
// handlers are idempotent, so those that handled the original ack it.
func (l *Letters) Replay(ctx context.Context, seq uint64) (Replayed, error) {
	e, err := l.Get(ctx, seq)
	if err != nil {
		return Replayed{}, err
	}
	return l.replay(ctx, e)
}

// ReplayMatching replays every dead letter f selects, oldest first.
func (l *Letters) ReplayMatching(ctx context.Context, f Filter) (Bulk, error) {
	entries, err := l.List(ctx, f)
	if err != nil {
		return Bulk{}, err
	}
	var b Bulk
	for _, e := range entries {
		r, err := l.replay(ctx, e)
		if err != nil {
			b.Failed = append(b.Failed, Failure{Sequence: e.DLQSequence, Err: err})
			continue
		}
		b.Replayed = append(b.Replayed, r)
	}
	return b, nil
}

// Discard resolves the dead letter seq without replaying it; the log keeps
// what it was.
func (l *Letters) Discard(ctx context.Context, seq uint64) (Letter, error) {
	e, err := l.Get(ctx, seq)
	if err != nil {
		return Letter{}, err
	}
	return e, l.discard(ctx, e)
}

// DiscardMatching discards every dead letter f selects.
func (l *Letters) DiscardMatching(ctx context.Context, f Filter) (Bulk, error) {
	entries, err := l.List(ctx, f)
	if err != nil {
		return Bulk{}, err
	}
	var b Bulk
	for _, e := range entries {
		if err := l.discard(ctx, e); err != nil {
			b.Failed = append(b.Failed, Failure{Sequence: e.DLQSequence, Err: err})
			continue
		}
		b.Discarded = append(b.Discarded, e)
	}
	return b, nil
}

func (l *Letters) replay(ctx context.Context, e Letter) (Replayed, error) {
	if e.Missing || e.OriginalSubject == "" {
		return Replayed{}, fmt.Errorf("dead letter %d: %w", e.DLQSequence, ErrOriginalMissing)
	}
	if e.OriginalStream != l.stream {
		return Replayed{}, fmt.Errorf("dead letter %d is of stream %s, not %s: %w", e.DLQSequence, e.OriginalStream, l.stream, ErrNotFound)
	}
	msg := nats.NewMsg(e.OriginalSubject)
	msg.Data = e.Data
	for k, vs := range e.Header {
		for _, v := range vs {
			msg.Header.Add(k, v)
		}
	}
	id := fmt.Sprintf("replay-%s-%d", e.OriginalStream, e.OriginalSequence)
	// The stream must be the original one: a publish that another stream
	// would store is refused rather than misplaced.
	ack, err := l.js.PublishMsg(ctx, msg, jetstream.WithMsgID(id), jetstream.WithExpectStream(e.OriginalStream))
	if err != nil {
		return Replayed{}, fmt.Errorf("replay dead letter %d to %s: %w", e.DLQSequence, e.OriginalSubject, err)
	}
	if err := l.resolve(ctx, e, ResolutionReplayed, ack.Sequence); err != nil {
		return Replayed{}, err
	}
	l.log.Info("dead letter replayed", append(letterFields(e),
		zap.Uint64("replay_seq", ack.Sequence), zap.Bool("duplicate", ack.Duplicate))...)
	l.o.metrics.resolved(e.Consumer, ResolutionReplayed)
	l.refreshSoon(e)
	return Replayed{Letter: e, ReplaySequence: ack.Sequence, Duplicate: ack.Duplicate}, nil
}

func (l *Letters) discard(ctx context.Context, e Letter) error {
	if err := l.resolve(ctx, e, ResolutionDiscarded, 0); err != nil {
		return err
	}
	// The tombstone keeps the ids; the log keeps the rest. The payload
	// itself stays in the original stream (stream, stream_seq), so the log
	// identifies it by digest rather than copying what may be sensitive
	// (an order's payment token).
	sum := sha256.Sum256(e.Data)
	l.log.Warn("dead letter discarded", append(letterFields(e),
		zap.String("reason", e.Reason), zap.Uint64("deliveries", e.Deliveries), zap.Time("dead_lettered_at", e.Time),
		zap.Int("payload_bytes", len(e.Data)), zap.String("payload_sha256", hex.EncodeToString(sum[:])))...)
	l.o.metrics.resolved(e.Consumer, ResolutionDiscarded)
	l.refreshSoon(e)
	return nil
}

// resolve replaces the letter by its tombstone: a rollup of the letter's
// subject that expects the letter to be the last message there, so two
// operators resolving the same letter at once cannot both succeed.
func (l *Letters) resolve(ctx context.Context, e Letter, kind string, replaySeq uint64) error {
	t := e
	t.Resolution = Resolution{Kind: kind, Time: l.o.now(), ReplaySequence: replaySeq}
	m := Encode(t)
	m.Subject = e.DLQSubject // where the letter was read: the one to replace
	m.Header.Set(jetstream.MsgRollup, jetstream.MsgRollupSubject)
	_, err := l.js.PublishMsg(ctx, m, jetstream.WithExpectLastSequencePerSubject(e.DLQSequence), jetstream.WithMsgTTL(l.o.tombstoneTTL))
	if natsconn.IsWrongLastSequence(err) {
		return fmt.Errorf("dead letter %d was resolved concurrently: %w", e.DLQSequence, ErrResolved)
	}
	if err != nil {
		return fmt.Errorf("resolve dead letter %d: %w", e.DLQSequence, err)
	}
	return nil
}

func letterFields(e Letter) []zap.Field {
	return []zap.Field{
		zap.Uint64("dlq_seq", e.DLQSequence),
		zap.String("consumer", e.Consumer),
		zap.String("subject", e.OriginalSubject),
		zap.String("stream", e.OriginalStream),
		zap.Uint64("stream_seq", e.OriginalSequence),
		zap.String("order_id", e.OrderID()),
		zap.String("trace_id", e.TraceID()),
	}
}
