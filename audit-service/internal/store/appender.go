// Package store keeps the audit chain in the append-only AUDIT stream: the
// single-writer Appender and the Reader that replays entries with ordered
// consumers.
package store

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"go.uber.org/zap"

	"github.com/eventshop/audit-service/internal/chain"
	"github.com/eventshop/shared/events"
	"github.com/eventshop/shared/platform/logging"
)

// ErrInvalidOption is returned by an option given a value it cannot use.
var ErrInvalidOption = errors.New("invalid appender option")

// AppenderOption configures an Appender.
type AppenderOption func(*Appender) error

// WithClock sets the clock of recorded_at.
func WithClock(now func() time.Time) AppenderOption {
	return func(a *Appender) error {
		if now == nil {
			return fmt.Errorf("clock: %w", ErrInvalidOption)
		}
		a.now = now
		return nil
	}
}

// WithMetrics records appends, duplicates and the head index in m.
func WithMetrics(m *Metrics) AppenderOption {
	return func(a *Appender) error {
		if m == nil {
			return fmt.Errorf("metrics: %w", ErrInvalidOption)
		}
		a.metrics = m
		return nil
	}
}

// Appender appends entries to the AUDIT stream.
//
// Every publish carries expectations that JetStream checks atomically, so
// the chain stays linear even if another audit instance writes too: the
// entry's subject audit.<order>.<event> is empty
// (Nats-Expected-Last-Subject-Sequence: 0), so an event is audited once,
// for ever, not only within the duplicate window; and the entry follows the
// one it links to. Appends that arrive together are written as one
// pipeline (group commit): the first entry expects the stream's last
// sequence to be the head this appender built on
// (Nats-Expected-Last-Sequence), each next one expects the stream's last
// message to be its predecessor (Nats-Expected-Last-Msg-Id: the
// predecessor's hash, which each entry carries as its Nats-Msg-Id). A
// pipeline therefore costs one round trip, not one per entry, and stops at
// its first refused entry: nothing after it can be stored, since its
// predecessor is not the stream's last message. When a publish is refused,
// the subject tells which expectation failed: if it holds an entry the
// event is a duplicate, otherwise another writer moved the head, which is
// reloaded before the rest are tried again.
type Appender struct {
	js      jetstream.JetStream
	stream  jetstream.Stream
	log     *zap.Logger
	now     func() time.Time
	metrics *Metrics

	mu     sync.Mutex // the writer: one pipeline at a time
	head   chain.Head
	loaded bool

	qmu   sync.Mutex // guards queue
	queue []*appendReq
}

// appendReq is one Append waiting for the writer.
type appendReq struct {
	rec     chain.Record
	subject string
	// set by the writer, under Appender.mu
	done  bool
	entry chain.Entry
	dup   bool
	err   error
}

func (r *appendReq) finish(e chain.Entry, dup bool, err error) {
	r.entry, r.dup, r.err, r.done = e, dup, err, true
}

// wrongLastMsgID is the JetStream error code of a refused
// Nats-Expected-Last-Msg-Id.
const wrongLastMsgID = 10070

// NewAppender returns an appender on the AUDIT stream and loads its head.
func NewAppender(ctx context.Context, js jetstream.JetStream, log *zap.Logger, opts ...AppenderOption) (*Appender, error) {
	if js == nil || log == nil {
		return nil, fmt.Errorf("appender needs jetstream and a logger: %w", ErrInvalidOption)
	}
	a := &Appender{js: js, log: log, now: time.Now}
	for _, opt := range opts {
		if err := opt(a); err != nil {
			return nil, err
		}
	}
	s, err := js.Stream(ctx, events.StreamAudit)
	if err != nil {
		return nil, fmt.Errorf("audit stream: %w", err)
	}
	a.stream = s
	a.mu.Lock()
	defer a.mu.Unlock()
	if err := a.loadHead(ctx); err != nil {
		return nil, err
	}
	return a, nil
}

// Head returns the head the next append builds on.
func (a *Appender) Head() chain.Head {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.head
}

// Append adds rec to the chain and returns its entry. If the event is
// already in the log it returns the stored entry and duplicate = true.
//
// Concurrent calls are written together: the caller that becomes the
// writer takes every queued append into its pipeline, and the others find
// their result done when they get their turn.
func (a *Appender) Append(ctx context.Context, rec chain.Record) (entry chain.Entry, duplicate bool, err error) {
	req := &appendReq{rec: rec, subject: chain.Subject(rec.OrderID, rec.EventID)}
	a.qmu.Lock()
	a.queue = append(a.queue, req)
	a.qmu.Unlock()
	a.mu.Lock()
	defer a.mu.Unlock()
	if !req.done {
		a.qmu.Lock()
		batch := a.queue
		a.queue = nil
		a.qmu.Unlock()
		a.write(ctx, batch)
	}
	return req.entry, req.dup, req.err
}

// write appends batch, in order, until every request is done.
func (a *Appender) write(ctx context.Context, batch []*appendReq) {
	fail := func(reqs []*appendReq, err error) {
		for _, r := range reqs {
			r.finish(chain.Entry{}, false, err)
		}
	}
	// The same event twice in one batch (a redelivery racing the first
	// delivery) is written once; the copy shares the outcome, as a
	// duplicate.
	first := make(map[string]*appendReq, len(batch))
	pending := batch[:0:0]
	var copies [][2]*appendReq
	for _, r := range batch {
		if f, ok := first[r.subject]; ok {
			copies = append(copies, [2]*appendReq{r, f})
			continue
		}
		first[r.subject] = r
		pending = append(pending, r)
	}
	defer func() {
		for _, c := range copies {
			c[0].finish(c[1].entry, c[1].err == nil, c[1].err)
		}
	}()
	moved := 0 // times another writer moved the head under this batch
	// window bounds a pipeline: an event audited before breaks its
	// pipeline and everything after it is sent again, so after a break the
	// window halves (a redelivered backlog costs about twice its size, not
	// its square) and after a clean pipeline it doubles again.
	window := maxPipeline
	for len(pending) > 0 {
		if !a.loaded {
			if err := a.loadHead(ctx); err != nil {
				fail(pending, err)
				return
			}
		}
		if moved > 1 {
			// Another writer keeps winning: step aside briefly so the two
			// do not collide in lock-step.
			if err := sleep(ctx, time.Duration(rand.Int64N(int64(time.Duration(min(moved, 10))*5*time.Millisecond)))); err != nil {
				fail(pending, fmt.Errorf("append: %w", err))
				return
			}
		}
		n := min(window, len(pending))
		rest, headMoved, clean := a.pipeline(ctx, pending[:n])
		pending = append(rest, pending[n:]...)
		if headMoved {
			moved++
		}
		if clean {
			window = min(2*window, maxPipeline)
		} else {
			window = max(window/2, 1)
		}
	}
}

// maxPipeline bounds the entries one pipeline publishes.
const maxPipeline = 256

// pipeline publishes reqs as one chain of entries on the current head and
// returns those still to write, whether another writer moved the head, and
// whether every entry it sent was stored. It finishes every request it
// can: the stored ones, the duplicates, a record that makes no entry, and
// on an unclear failure (a lost ack, NATS down) the failed one and every
// one published after it, with the error — their redelivery finds them
// stored or writes them.
func (a *Appender) pipeline(ctx context.Context, reqs []*appendReq) (rest []*appendReq, moved, clean bool) {
	type sent struct {
		entry  chain.Entry
		future jetstream.PubAckFuture
		err    error
	}
	out := make([]sent, 0, len(reqs))
	var unsent []*appendReq // not published this time: the next pipeline takes them
	prev := a.head
	for i, r := range reqs {
		e, err := chain.Next(prev, r.rec, a.now())
		var raw []byte
		if err == nil {
			raw, err = chain.Encode(e)
		}
		if err != nil {
			// The record cannot make an entry: it fails alone, nothing
			// was sent for it, and the rest go in the next pipeline.
			r.finish(chain.Entry{}, false, err)
			unsent = reqs[i+1:]
			reqs = reqs[:i]
			break
		}
		msg := nats.NewMsg(r.subject)
		msg.Data = raw
		opts := []jetstream.PublishOpt{
			jetstream.WithExpectStream(events.StreamAudit),
			jetstream.WithExpectLastSequencePerSubject(0),
			jetstream.WithMsgID(e.Hash),
		}
		if i == 0 {
			opts = append(opts, jetstream.WithExpectLastSequence(a.head.Seq))
		} else {
			opts = append(opts, jetstream.WithExpectLastMsgID(prev.Hash))
		}
		f, err := a.js.PublishMsgAsync(msg, opts...)
		out = append(out, sent{entry: e, future: f, err: err})
		if err != nil {
			unsent = reqs[i+1:]
			reqs = reqs[:i+1]
			break
		}
		prev = chain.Head{Index: e.Index, Hash: e.Hash}
	}
	a.metrics.pipeline(len(out))
	// Wait for every answer before looking at any: a refused entry's
	// successors are refused too, and none may still be in flight when the
	// next pipeline starts.
	acks := make([]*jetstream.PubAck, len(out))
	for i := range out {
		if out[i].err != nil {
			continue
		}
		select {
		case acks[i] = <-out[i].future.Ok():
		case out[i].err = <-out[i].future.Err():
		case <-ctx.Done():
			out[i].err = ctx.Err()
		}
	}
	for i, s := range out {
		r := reqs[i]
		if s.err == nil {
			a.head = chain.Head{Index: s.entry.Index, Hash: s.entry.Hash, Seq: acks[i].Sequence}
			a.metrics.appended(s.entry.Index)
			r.finish(s.entry, false, nil)
			continue
		}
		if !refused(s.err) {
			// The entry may or may not be stored (a lost ack): the cached
			// head is no longer known to be current.
			a.loaded = false
			err := fmt.Errorf("append %s: %w", r.subject, s.err)
			for _, q := range reqs[i:] {
				q.finish(chain.Entry{}, false, err)
			}
			return unsent, false, false
		}
		stored, found, err := a.existing(ctx, r.subject)
		switch {
		case err != nil:
			r.finish(chain.Entry{}, false, err)
		case found:
			a.metrics.duplicate()
			a.log.Debug("event already audited", append(logging.Order(r.rec.OrderID, r.rec.TraceID),
				zap.String("event_id", r.rec.EventID), zap.Uint64("index", stored.Index))...)
			r.finish(stored, true, nil)
		default:
			// Another writer moved the head.
			a.loaded = false
			moved = true
		}
		for _, q := range reqs[i:] {
			if !q.done {
				rest = append(rest, q)
			}
		}
		return append(rest, unsent...), moved, false
	}
	return unsent, false, true
}

// refused reports whether err is JetStream refusing an expectation of the
// publish (the entry was not stored).
func refused(err error) bool {
	if events.IsWrongLastSequence(err) {
		return true
	}
	var apiErr *jetstream.APIError
	return errors.As(err, &apiErr) && apiErr.ErrorCode == wrongLastMsgID
}

// existing returns the entry stored on subject, if any.
func (a *Appender) existing(ctx context.Context, subject string) (chain.Entry, bool, error) {
	m, err := a.stream.GetLastMsgForSubject(ctx, subject)
	if errors.Is(err, jetstream.ErrMsgNotFound) {
		return chain.Entry{}, false, nil
	}
	if err != nil {
		return chain.Entry{}, false, fmt.Errorf("look up %s: %w", subject, err)
	}
	e, err := chain.Decode(m.Data)
	if err != nil {
		// Something is stored there, so the event must not be appended
		// again; verification reports the undecodable entry.
		return chain.Entry{}, true, nil
	}
	return e, true, nil
}

// loadHead reads the last message of the stream. The chain continues from
// the last entry that decodes, while the publish expectation uses the true
// last sequence: junk written onto the stream is reported by verification
// rather than stopping the log.
func (a *Appender) loadHead(ctx context.Context) error {
	info, err := a.stream.Info(ctx)
	if err != nil {
		return fmt.Errorf("load audit head: %w", err)
	}
	last := info.State.LastSeq
	head := chain.Genesis()
	head.Seq = last
	for seq := last; seq >= info.State.FirstSeq && seq > 0; seq-- {
		m, err := a.stream.GetMsg(ctx, seq)
		if errors.Is(err, jetstream.ErrMsgNotFound) {
			continue
		}
		if err != nil {
			return fmt.Errorf("load audit head at %d: %w", seq, err)
		}
		e, err := chain.Decode(m.Data)
		if err != nil {
			a.log.Warn("undecodable audit entry skipped while loading the head", zap.Uint64("stream_seq", seq), zap.Error(err))
			continue
		}
		head.Index, head.Hash = e.Index, e.Hash
		break
	}
	a.head = head
	a.loaded = true
	a.metrics.headIndex(head.Index)
	return nil
}

func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}
