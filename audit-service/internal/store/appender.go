// Package store keeps the audit chain in the append-only AUDIT stream: the
// single-writer Appender, which stores each group commit as one block, and
// the Reader that verifies the chain and finds an order's entries.
package store

import (
	"context"
	"encoding/json"
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
	"github.com/eventshop/shared/platform/natsconn"
)

// ErrInvalidOption is returned by an option given a value it cannot use.
var ErrInvalidOption = errors.New("invalid appender option")

// Defaults of the appender's options.
const (
	// DefaultMaxBlockBytes keeps a block well under the server's 1 MB
	// message limit; a larger group commit is split into several blocks.
	DefaultMaxBlockBytes = 512 << 10
	// DefaultDedupeWindow is how much of the chain, in recorded time
	// before its newest block, the appender remembers by event. A
	// redelivery comes within the consumers' AckWait (30 s) plus their
	// retry delay (at most 30 s) of the append it repeats; two minutes
	// keep the memory bounded (~300,000 ids at 2,500 events/s).
	DefaultDedupeWindow = 2 * time.Minute
)

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

// WithMetrics records appends, duplicates, blocks and the head index in m.
func WithMetrics(m *Metrics) AppenderOption {
	return func(a *Appender) error {
		if m == nil {
			return fmt.Errorf("metrics: %w", ErrInvalidOption)
		}
		a.metrics = m
		return nil
	}
}

// WithMaxBlockBytes bounds the size of a block (at least 4 KiB, at most
// 1 MiB: the server's default message limit).
func WithMaxBlockBytes(n int) AppenderOption {
	return func(a *Appender) error {
		if n < 4<<10 || n > 1<<20 {
			return fmt.Errorf("max block bytes %d: %w", n, ErrInvalidOption)
		}
		a.maxBlockBytes = n
		return nil
	}
}

// WithBlockInterval sets the shortest time between two group commits
// (default 25ms; 0 writes as soon as the writer is free). Appends that
// arrive meanwhile wait and share the next block: the audit trail is off
// the saga's path, so a few milliseconds there buy several times fewer
// stored messages under load, and cost nothing when appends are sparse
// (an append after a quiet interval is written at once).
func WithBlockInterval(d time.Duration) AppenderOption {
	return func(a *Appender) error {
		if d < 0 || d > time.Second {
			return fmt.Errorf("block interval %s: %w", d, ErrInvalidOption)
		}
		a.blockInterval = d
		return nil
	}
}

// WithDedupeWindow sets how much of the chain, in recorded time, the
// appender remembers by event (at least a minute).
func WithDedupeWindow(d time.Duration) AppenderOption {
	return func(a *Appender) error {
		if d < time.Minute {
			return fmt.Errorf("dedupe window %s: %w", d, ErrInvalidOption)
		}
		a.window = d
		return nil
	}
}

// Appender appends entries to the AUDIT stream, one block per group
// commit, each caller returning once its block is stored. How the chain
// stays linear with several writers (expected last sequence, then expected
// last message id) and how each event is appended once (the chain.Window,
// then isCopy) is described in docs/architecture.md, "Audit", and
// docs/guarantees.md.
type Appender struct {
	js            jetstream.JetStream
	stream        jetstream.Stream
	log           *zap.Logger
	now           func() time.Time
	metrics       *Metrics
	maxBlockBytes int
	window        time.Duration
	seen          *chain.Window
	blockInterval time.Duration
	lastCommit    time.Time // under mu

	mu     sync.Mutex // the writer: one commit at a time
	head   chain.Head
	loaded bool

	qmu   sync.Mutex // guards queue
	queue []*appendReq

	domains *natsconn.Streams
}

// appendReq is one Append waiting for the writer.
type appendReq struct {
	rec chain.Record
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

// maxCommit bounds the entries of one group commit.
const maxCommit = 1024

// commitTimeout bounds one group commit, which no single caller's context
// does: as long as a consumer's handler may take (its AckWait).
const commitTimeout = 30 * time.Second

// NewAppender returns an appender on the AUDIT stream, with its head and
// the window of recent blocks loaded.
func NewAppender(ctx context.Context, js jetstream.JetStream, log *zap.Logger, opts ...AppenderOption) (*Appender, error) {
	if js == nil || log == nil {
		return nil, fmt.Errorf("appender needs jetstream and a logger: %w", ErrInvalidOption)
	}
	a := &Appender{js: js, log: log, now: time.Now, maxBlockBytes: DefaultMaxBlockBytes, blockInterval: 25 * time.Millisecond,
		window: DefaultDedupeWindow, domains: natsconn.NewStreams(js)}
	for _, opt := range opts {
		if err := opt(a); err != nil {
			return nil, err
		}
	}
	a.seen = chain.NewWindow(a.window)
	s, err := js.Stream(ctx, events.StreamAudit)
	if err != nil {
		return nil, fmt.Errorf("audit stream: %w", err)
	}
	a.stream = s
	a.mu.Lock()
	defer a.mu.Unlock()
	if err := a.load(ctx); err != nil {
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
// already in the log it returns duplicate = true and an entry holding only
// the event's ids and, when the appender remembers it, its index.
//
// Concurrent calls are written together: the caller that becomes the
// writer takes every queued append into its commit, and the others find
// their result done when they get their turn.
func (a *Appender) Append(ctx context.Context, rec chain.Record) (entry chain.Entry, duplicate bool, err error) {
	if index, ok := a.seen.Known(rec); ok {
		e, dup := a.duplicate(rec, index)
		return e, dup, nil
	}
	if a.seen.MayPredate(rec.Time) {
		// Outside the remembered window: only a copy of an event
		// republished later can have been audited already.
		copied, err := a.isCopy(ctx, rec)
		if err != nil {
			return chain.Entry{}, false, err
		}
		if copied {
			e, dup := a.duplicate(rec, 0)
			return e, dup, nil
		}
	}
	req := &appendReq{rec: rec}
	a.qmu.Lock()
	a.queue = append(a.queue, req)
	a.qmu.Unlock()
	a.mu.Lock()
	defer a.mu.Unlock()
	if !req.done {
		// Hold the writer until the interval since the last commit has
		// passed, so that what arrives meanwhile joins this commit.
		if wait := a.blockInterval - time.Since(a.lastCommit); wait > 0 {
			select {
			case <-time.After(wait):
			case <-ctx.Done():
			}
		}
		a.lastCommit = time.Now()
		a.qmu.Lock()
		batch := a.queue
		a.queue = nil
		a.qmu.Unlock()
		// The batch holds other callers' appends: it is written whether or
		// not this caller still waits for it, within its own bound.
		wctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), commitTimeout)
		a.write(wctx, batch)
		cancel()
	}
	return req.entry, req.dup, req.err
}

// duplicate reports rec as already audited at index (0: unknown).
func (a *Appender) duplicate(rec chain.Record, index uint64) (chain.Entry, bool) {
	a.metrics.duplicate()
	a.log.Debug("event already audited", append(logging.Order(rec.OrderID, rec.TraceID),
		zap.String("event_id", rec.EventID), zap.Uint64("index", index))...)
	return chain.Entry{Index: index, EventID: rec.EventID, Type: rec.Type, Source: rec.Source,
		OrderID: rec.OrderID, TraceID: rec.TraceID, Stream: rec.Stream, StreamSeq: rec.StreamSeq}, true
}

// isCopy reports whether rec's event is audited, or will be, under another
// message on rec's subject in its domain stream: an earlier message
// carrying the same event (rec is a copy republished later; the event is
// audited under the first message), or a later copy that a remembered block
// holds (the copy's delivery overtook the original's, which was held up in
// redelivery, and this appender knows the copy's block only by its header,
// having started after it). (Events are published create-once, so only a
// republish by hand or by the chaos tool makes a copy.) A record without a
// subject cannot be looked up and is no copy.
func (a *Appender) isCopy(ctx context.Context, rec chain.Record) (bool, error) {
	if rec.Subject == "" || rec.Stream == "" {
		return false, nil
	}
	a.metrics.lookup()
	s, err := a.domains.Get(ctx, rec.Stream)
	if err != nil {
		return false, err
	}
	for seq := uint64(1); ; {
		m, err := s.GetMsg(ctx, seq, jetstream.WithGetMsgSubject(rec.Subject))
		if errors.Is(err, jetstream.ErrMsgNotFound) {
			return false, nil
		}
		if err != nil {
			return false, fmt.Errorf("look up %s in %s: %w", rec.Subject, rec.Stream, err)
		}
		seq = m.Sequence + 1
		if m.Sequence == rec.StreamSeq {
			continue
		}
		var ev struct {
			ID string `json:"id"`
		}
		if json.Unmarshal(m.Data, &ev) != nil || ev.ID != rec.EventID {
			continue
		}
		if m.Sequence < rec.StreamSeq || a.seen.Holds(rec.Stream, m.Sequence) {
			return true, nil
		}
	}
}

// write appends batch, in order, until every request is done.
func (a *Appender) write(ctx context.Context, batch []*appendReq) {
	fail := func(reqs []*appendReq, err error) {
		for _, r := range reqs {
			r.finish(chain.Entry{}, false, err)
		}
	}
	// The same event twice in one batch (a redelivery racing the first
	// delivery, or a copy) is written once; the copy shares the outcome,
	// as a duplicate.
	first := make(map[string]*appendReq, len(batch))
	pending := batch[:0:0]
	var copies [][2]*appendReq
	for _, r := range batch {
		k := r.rec.EventID
		if f, ok := first[k]; ok {
			copies = append(copies, [2]*appendReq{r, f})
			continue
		}
		first[k] = r
		pending = append(pending, r)
	}
	defer func() {
		for _, c := range copies {
			if c[1].err == nil {
				a.metrics.duplicate()
			}
			c[0].finish(c[1].entry, c[1].err == nil, c[1].err)
		}
	}()
	moved := 0 // times another writer moved the head under this batch
	for len(pending) > 0 {
		if !a.loaded {
			if err := a.catchUp(ctx); err != nil {
				fail(pending, err)
				return
			}
		}
		// What the blocks read since the request was queued hold (another
		// writer's, or this one's whose acks were lost) is not written
		// again.
		pending = a.dropKnown(pending)
		if len(pending) == 0 {
			return
		}
		if moved > 1 {
			// Another writer keeps winning: step aside briefly so the two
			// do not collide in lock-step.
			if err := sleep(ctx, time.Duration(rand.Int64N(int64(time.Duration(min(moved, 10))*5*time.Millisecond)))); err != nil {
				fail(pending, fmt.Errorf("append: %w", err))
				return
			}
		}
		n := min(maxCommit, len(pending))
		rest, headMoved := a.commit(ctx, pending[:n])
		pending = append(rest, pending[n:]...)
		if headMoved {
			moved++
		}
	}
}

// dropKnown finishes the requests whose events are remembered as audited
// and returns the others.
func (a *Appender) dropKnown(reqs []*appendReq) []*appendReq {
	out := reqs[:0]
	for _, r := range reqs {
		if index, ok := a.seen.Known(r.rec); ok {
			e, dup := a.duplicate(r.rec, index)
			r.finish(e, dup, nil)
			continue
		}
		out = append(out, r)
	}
	return out
}

// pendingBlock is one block of a commit.
type pendingBlock struct {
	chain.Packed
	reqs   []*appendReq
	bytes  int
	future jetstream.PubAckFuture
	ack    *jetstream.PubAck
	err    error
}

// commit chains reqs on the current head, stores them as blocks in one
// pipeline (one round trip), and returns the requests still to write and
// whether another writer moved the head. It finishes every request it
// can: the stored ones, a record that makes no entry, and on an unclear
// failure (a lost ack, NATS down) those of the failed block and every
// block after it, with the error: their redelivery finds them stored or
// writes them.
func (a *Appender) commit(ctx context.Context, reqs []*appendReq) (rest []*appendReq, moved bool) {
	recs := make([]chain.Record, len(reqs))
	for i, r := range reqs {
		recs[i] = r.rec
	}
	packed, errs := chain.Pack(a.head, recs, a.now(), a.maxBlockBytes)
	for i, err := range errs {
		if err != nil {
			// The record cannot make an entry: it fails alone, and
			// nothing links to it.
			reqs[i].finish(chain.Entry{}, false, err)
		}
	}
	if len(packed) == 0 {
		return nil, false
	}
	blocks := make([]*pendingBlock, len(packed))
	for i, p := range packed {
		b := &pendingBlock{Packed: p, reqs: make([]*appendReq, len(p.Recs))}
		for j, k := range p.Recs {
			b.reqs[j] = reqs[k]
		}
		blocks[i] = b
	}
	entries := 0
	for i, b := range blocks {
		entries += len(b.Block.Entries)
		msg := nats.NewMsg(chain.BlockSubject)
		msg.Data = b.Data
		msg.Header.Set(chain.HeaderSeqs, b.Seqs)
		b.bytes = len(msg.Data)
		b.Data = nil
		opts := []jetstream.PublishOpt{
			jetstream.WithExpectStream(events.StreamAudit),
			jetstream.WithMsgID(b.Block.LastHash),
		}
		if i == 0 {
			opts = append(opts, jetstream.WithExpectLastSequence(a.head.Seq))
		} else {
			opts = append(opts, jetstream.WithExpectLastMsgID(blocks[i-1].Block.LastHash))
		}
		b.future, b.err = a.js.PublishMsgAsync(msg, opts...)
		if b.err != nil {
			for _, later := range blocks[i+1:] {
				rest = append(rest, later.reqs...)
			}
			blocks = blocks[:i+1]
			break
		}
	}
	a.metrics.commit(entries)
	// Wait for every answer before looking at any: a refused block's
	// successors are refused too, and none may still be in flight when the
	// next commit starts.
	for _, b := range blocks {
		if b.err != nil {
			continue
		}
		select {
		case b.ack = <-b.future.Ok():
		case b.err = <-b.future.Err():
		case <-ctx.Done():
			b.err = ctx.Err()
		}
	}
	for i, b := range blocks {
		if b.err == nil && !b.ack.Duplicate {
			a.head = b.Block.Head(b.ack.Sequence)
			a.seen.AddEntries(a.head.At, b.Block.Entries)
			a.metrics.block(len(b.Block.Entries), b.bytes, a.head.Index)
			for j, r := range b.reqs {
				r.finish(b.Block.Entries[j], false, nil)
			}
			continue
		}
		// The head this appender knows is no longer known to be current.
		a.loaded = false
		if b.err != nil && !refused(b.err) {
			// The block may or may not be stored (a lost ack).
			err := fmt.Errorf("append block of %d entries at %d: %w", len(b.Block.Entries), b.Block.First, b.err)
			for _, later := range blocks[i:] {
				for _, r := range later.reqs {
					r.finish(chain.Entry{}, false, err)
				}
			}
			return rest, false
		}
		// Refused (or a block with this last hash already stored): another
		// writer moved the head. Everything from here is written again.
		var again []*appendReq
		for _, later := range blocks[i:] {
			again = append(again, later.reqs...)
		}
		return append(again, rest...), true
	}
	return rest, false
}

// refused reports whether err is JetStream refusing an expectation of the
// publish (the block was not stored).
func refused(err error) bool {
	if natsconn.IsWrongLastSequence(err) {
		return true
	}
	var apiErr *jetstream.APIError
	return errors.As(err, &apiErr) && apiErr.ErrorCode == wrongLastMsgID
}

// load reads the head block and, by their headers, the blocks recorded in
// the window before it. The chain continues from the last block that
// decodes, while the publish expectation uses the true last sequence: junk
// written onto the stream is reported by verification rather than
// stopping the log.
func (a *Appender) load(ctx context.Context) error {
	info, err := a.stream.Info(ctx)
	if err != nil {
		return fmt.Errorf("load audit head: %w", err)
	}
	last := info.State.LastSeq
	head := chain.Genesis()
	head.Seq = last
	var headBlock chain.Block
	var headSeq uint64
	var headStored time.Time
	for seq := last; seq >= info.State.FirstSeq && seq > 0; seq-- {
		m, err := a.stream.GetMsg(ctx, seq)
		if errors.Is(err, jetstream.ErrMsgNotFound) {
			continue
		}
		if err != nil {
			return fmt.Errorf("load audit head at %d: %w", seq, err)
		}
		b, err := chain.DecodeBlock(m.Data)
		if err != nil {
			a.log.Warn("undecodable audit block skipped while loading the head", zap.Uint64("stream_seq", seq), zap.Error(err))
			continue
		}
		head = b.Head(last)
		if head.At.IsZero() {
			head.At = m.Time
		}
		headBlock, headSeq, headStored = b, seq, m.Time
		break
	}
	if headSeq > info.State.FirstSeq {
		// The blocks before the head, back to the window's start, by their
		// headers: a redelivery repeats where its event was read from.
		err := scan(ctx, a.js, a.log, jetstream.OrderedConsumerConfig{
			FilterSubjects: []string{chain.BlockSubject},
			DeliverPolicy:  jetstream.DeliverByStartTimePolicy,
			OptStartTime:   new(headStored.Add(-a.window)),
			HeadersOnly:    true,
		}, func(m jetstream.Msg, meta *jetstream.MsgMetadata) error {
			if meta.Sequence.Stream >= headSeq {
				return errStop
			}
			seqs, err := chain.ParseSeqs(m.Headers().Get(chain.HeaderSeqs))
			if err != nil {
				a.log.Warn("audit block with an undecodable header skipped", zap.Uint64("stream_seq", meta.Sequence.Stream), zap.Error(err))
				return nil
			}
			a.seen.AddSeqs(meta.Timestamp, seqs)
			return nil
		})
		if err != nil {
			return fmt.Errorf("load the audit window: %w", err)
		}
		a.seen.StartIDs(head.At)
	}
	if headSeq > 0 {
		a.seen.AddEntries(head.At, headBlock.Entries)
	}
	a.head = head
	a.loaded = true
	a.metrics.headIndex(head.Index)
	return nil
}

// catchUp reads the blocks stored after the cached head (another writer's,
// or this one's whose acks were lost), remembers their events and moves
// the head past them.
func (a *Appender) catchUp(ctx context.Context) error {
	info, err := a.stream.Info(ctx)
	if err != nil {
		return fmt.Errorf("reload audit head: %w", err)
	}
	last := info.State.LastSeq
	for seq := a.head.Seq + 1; seq <= last; seq++ {
		m, err := a.stream.GetMsg(ctx, seq)
		if errors.Is(err, jetstream.ErrMsgNotFound) {
			continue
		}
		if err != nil {
			return fmt.Errorf("reload audit head at %d: %w", seq, err)
		}
		b, err := chain.DecodeBlock(m.Data)
		if err != nil {
			a.log.Warn("undecodable audit block skipped while reloading the head", zap.Uint64("stream_seq", seq), zap.Error(err))
			continue
		}
		h := b.Head(seq)
		if h.At.IsZero() {
			h.At = m.Time
		}
		a.seen.AddEntries(h.At, b.Entries)
		a.head = h
	}
	a.head.Seq = last
	a.loaded = true
	a.metrics.headIndex(a.head.Index)
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
