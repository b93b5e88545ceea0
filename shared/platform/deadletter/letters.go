// Package deadletter makes dead letters a feature: it captures the
// server's MAX_DELIVERIES and MSG_TERMINATED advisories durably so that
// every message a consumer gives up on lands in the dead-letter stream
// exactly once (Capture), and lets operators list, inspect, replay and
// discard dead letters (Letters, served over HTTP by Admin).
//
// A dead letter is a message on subject dlq.<consumer>.<stream>.<seq> of
// the DLQ stream (see platform/runner). Resolving one (replay or
// discard) replaces it, in one compare-and-set rollup write, by a small
// tombstone on the same subject; the tombstone expires after a while. As
// long as it is there the subject is not empty, so neither the runner nor
// an advisory processed late can dead-letter that message again.
package deadletter

import (
	"cmp"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"go.uber.org/zap"

	"github.com/eventshop/shared/platform/natsconn"
	"github.com/eventshop/shared/platform/runner"
	"github.com/eventshop/shared/platform/subjects"
)

// Headers of a tombstone, the record a resolved dead letter leaves on its
// subject (beside the Dlq-Consumer and Dlq-Original-* headers).
const (
	HeaderResolution     = "Dlq-Resolution"      // ResolutionReplayed or ResolutionDiscarded
	HeaderResolvedTime   = "Dlq-Resolved-Time"   // RFC 3339
	HeaderEntrySequence  = "Dlq-Entry-Sequence"  // the DLQ sequence of the letter it replaced
	HeaderReplaySequence = "Dlq-Replay-Sequence" // stream sequence of the replayed copy
)

// Resolutions.
const (
	ResolutionReplayed  = "replayed"
	ResolutionDiscarded = "discarded"
)

// DefaultTombstoneTTL is how long a resolved letter's tombstone guards its
// subject. It outlives the advisory capture stream's MaxAge, so no
// advisory still waiting to be processed can find the subject empty.
const DefaultTombstoneTTL = 30 * 24 * time.Hour

// Errors of the dead-letter operations.
var (
	ErrNotFound        = errors.New("dead letter not found")
	ErrResolved        = errors.New("dead letter already resolved")
	ErrOriginalMissing = errors.New("the original message was lost before it was dead-lettered: nothing to replay")
	ErrInvalidOption   = errors.New("invalid dead-letter option")
)

// Entry is one dead letter.
type Entry struct {
	Sequence         uint64      // sequence in the DLQ stream: the letter's id
	Subject          string      // dlq.<consumer>.<stream>.<seq>
	Consumer         string      // durable that gave up on the message
	OriginalStream   string      // where the message is
	OriginalSequence uint64      // its sequence there
	OriginalSubject  string      // its subject ("" when Missing)
	Deliveries       uint64      // deliveries before it was given up on
	Error            string      // the last error
	Time             time.Time   // when it was dead-lettered
	Missing          bool        // the original was gone: no payload
	Header           nats.Header // the original headers (no Dlq-*, no Nats-*)
	Data             []byte      // the original payload
}

// OrderID returns the order id of the original subject
// (<domain>.<order_id>.<verb>), if it has one.
func (e Entry) OrderID() string { return orderID(e.OriginalSubject) }

// TraceID returns the trace id of the original traceparent header.
func (e Entry) TraceID() string { return traceID(e.Header.Get("traceparent")) }

// Filter selects dead letters; empty fields match everything.
type Filter struct {
	Consumer string // durable name, exactly
	Subject  string // original subject; NATS wildcards (* and >) allowed
}

// IsZero reports whether f selects every letter.
func (f Filter) IsZero() bool { return f.Consumer == "" && f.Subject == "" }

func (f Filter) matches(e Entry) bool {
	if f.Consumer != "" && f.Consumer != e.Consumer {
		return false
	}
	return f.Subject == "" || subjects.Matches(f.Subject, e.OriginalSubject)
}

// Resolution describes a resolved dead letter, read from its tombstone.
type Resolution struct {
	Sequence       uint64 // DLQ sequence the letter had
	Consumer       string
	Kind           string // ResolutionReplayed or ResolutionDiscarded
	Time           time.Time
	ReplaySequence uint64 // for a replay: the copy's stream sequence
}

// ResolvedError is returned for a letter that was replayed or discarded
// already; it matches ErrResolved.
type ResolvedError struct{ Resolution Resolution }

func (e *ResolvedError) Error() string {
	return fmt.Sprintf("dead letter %d was %s at %s", e.Resolution.Sequence, e.Resolution.Kind,
		e.Resolution.Time.Format(time.RFC3339))
}

// Is makes errors.Is(err, ErrResolved) true.
func (e *ResolvedError) Is(target error) bool { return target == ErrResolved }

// Replayed is the outcome of one replay.
type Replayed struct {
	Entry          Entry
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
	Discarded []Entry    // discard only
	Failed    []Failure  // letters left as they were (a resolved one counts here too)
}

// Option configures Letters or Capture.
type Option func(*options) error

type options struct {
	now          func() time.Time
	metrics      *Metrics
	consumerMet  *runner.Metrics
	dlqStream    string
	tombstoneTTL time.Duration
	refresh      time.Duration
}

func newOptions(opts []Option) (options, error) {
	o := options{now: time.Now, dlqStream: runner.DeadLetterStream, tombstoneTTL: DefaultTombstoneTTL, refresh: 15 * time.Second}
	for _, opt := range opts {
		if err := opt(&o); err != nil {
			return o, err
		}
	}
	return o, nil
}

// WithClock sets the clock of resolution and dead-letter timestamps.
func WithClock(now func() time.Time) Option {
	return func(o *options) error {
		if now == nil {
			return fmt.Errorf("clock: %w", ErrInvalidOption)
		}
		o.now = now
		return nil
	}
}

// WithMetrics records gauges and counts in m.
func WithMetrics(m *Metrics) Option {
	return func(o *options) error {
		if m == nil {
			return fmt.Errorf("metrics: %w", ErrInvalidOption)
		}
		o.metrics = m
		return nil
	}
}

// WithConsumerMetrics makes Capture count the letters it writes in the
// service's eventshop_dead_letters_total and its advisory consumer's
// outcomes with the other consumers'.
func WithConsumerMetrics(m *runner.Metrics) Option {
	return func(o *options) error {
		if m == nil {
			return fmt.Errorf("consumer metrics: %w", ErrInvalidOption)
		}
		o.consumerMet = m
		return nil
	}
}

// WithDeadLetterStream names the dead-letter stream (default "DLQ").
func WithDeadLetterStream(name string) Option {
	return func(o *options) error {
		if name == "" {
			return fmt.Errorf("dead-letter stream name: %w", ErrInvalidOption)
		}
		o.dlqStream = name
		return nil
	}
}

// WithTombstoneTTL sets how long a resolved letter's tombstone lasts.
func WithTombstoneTTL(d time.Duration) Option {
	return func(o *options) error {
		if d < time.Second {
			return fmt.Errorf("tombstone TTL %s < 1s: %w", d, ErrInvalidOption)
		}
		o.tombstoneTTL = d
		return nil
	}
}

// WithRefreshInterval sets how often Watch recounts the letters.
func WithRefreshInterval(d time.Duration) Option {
	return func(o *options) error {
		if d <= 0 {
			return fmt.Errorf("refresh interval %s: %w", d, ErrInvalidOption)
		}
		o.refresh = d
		return nil
	}
}

// Letters manages the dead letters of the messages of one stream: those
// every consumer of that stream gave up on. A service manages the letters
// of the stream it owns because replaying one re-publishes the original
// to its subject, and only the owner of a stream may publish there.
type Letters struct {
	js     jetstream.JetStream
	stream string
	log    *zap.Logger
	o      options

	mu         sync.Mutex
	tombstones map[string]Resolution // by DLQ subject; a tombstone never changes until it expires
	counts     map[string]int        // letters waiting by consumer, as last counted
}

// NewLetters returns the manager of the dead letters of stream's messages.
func NewLetters(js jetstream.JetStream, stream string, log *zap.Logger, opts ...Option) (*Letters, error) {
	if js == nil || stream == "" || log == nil {
		return nil, fmt.Errorf("jetstream, stream and logger are required: %w", ErrInvalidOption)
	}
	o, err := newOptions(opts)
	if err != nil {
		return nil, err
	}
	return &Letters{js: js, stream: stream, log: log.With(zap.String("dlq_scope", stream)), o: o,
		tombstones: map[string]Resolution{}, counts: map[string]int{}}, nil
}

// Stream returns the stream whose dead letters l manages.
func (l *Letters) Stream() string { return l.stream }

// scope is the DLQ subject filter of l's letters.
func (l *Letters) scope() string { return "dlq.*." + l.stream + ".>" }

// List returns the dead letters f selects, oldest first.
func (l *Letters) List(ctx context.Context, f Filter) ([]Entry, error) {
	all, _, err := l.scan(ctx)
	if err != nil {
		return nil, err
	}
	out := all[:0]
	for _, e := range all {
		if f.matches(e) {
			out = append(out, e)
		}
	}
	return out, nil
}

// Get returns the dead letter with DLQ sequence seq: ErrNotFound if l has
// none, a *ResolvedError if it was replayed or discarded.
func (l *Letters) Get(ctx context.Context, seq uint64) (Entry, error) {
	all, resolved, err := l.scan(ctx)
	if err != nil {
		return Entry{}, err
	}
	for _, e := range all {
		if e.Sequence == seq {
			return e, nil
		}
	}
	for _, r := range resolved {
		if r.Sequence == seq {
			return Entry{}, &ResolvedError{Resolution: r}
		}
	}
	return Entry{}, fmt.Errorf("dead letter %d: %w", seq, ErrNotFound)
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
			b.Failed = append(b.Failed, Failure{Sequence: e.Sequence, Err: err})
			continue
		}
		b.Replayed = append(b.Replayed, r)
	}
	return b, nil
}

// Discard resolves the dead letter seq without replaying it; the log keeps
// what it was.
func (l *Letters) Discard(ctx context.Context, seq uint64) (Entry, error) {
	e, err := l.Get(ctx, seq)
	if err != nil {
		return Entry{}, err
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
			b.Failed = append(b.Failed, Failure{Sequence: e.Sequence, Err: err})
			continue
		}
		b.Discarded = append(b.Discarded, e)
	}
	return b, nil
}

func (l *Letters) replay(ctx context.Context, e Entry) (Replayed, error) {
	if e.Missing || e.OriginalSubject == "" {
		return Replayed{}, fmt.Errorf("dead letter %d: %w", e.Sequence, ErrOriginalMissing)
	}
	if e.OriginalStream != l.stream {
		return Replayed{}, fmt.Errorf("dead letter %d is of stream %s, not %s: %w", e.Sequence, e.OriginalStream, l.stream, ErrNotFound)
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
		return Replayed{}, fmt.Errorf("replay dead letter %d to %s: %w", e.Sequence, e.OriginalSubject, err)
	}
	if err := l.resolve(ctx, e, ResolutionReplayed, ack.Sequence); err != nil {
		return Replayed{}, err
	}
	l.log.Info("dead letter replayed", append(entryFields(e),
		zap.Uint64("replay_seq", ack.Sequence), zap.Bool("duplicate", ack.Duplicate))...)
	l.o.metrics.resolved(e.Consumer, ResolutionReplayed)
	l.refreshSoon(e)
	return Replayed{Entry: e, ReplaySequence: ack.Sequence, Duplicate: ack.Duplicate}, nil
}

func (l *Letters) discard(ctx context.Context, e Entry) error {
	if err := l.resolve(ctx, e, ResolutionDiscarded, 0); err != nil {
		return err
	}
	// The tombstone keeps the ids; the log keeps the rest. The payload
	// itself stays in the original stream (stream, stream_seq), so the log
	// identifies it by digest rather than copying what may be sensitive
	// (an order's payment token).
	sum := sha256.Sum256(e.Data)
	l.log.Warn("dead letter discarded", append(entryFields(e),
		zap.String("reason", e.Error), zap.Uint64("deliveries", e.Deliveries), zap.Time("dead_lettered_at", e.Time),
		zap.Int("payload_bytes", len(e.Data)), zap.String("payload_sha256", hex.EncodeToString(sum[:])))...)
	l.o.metrics.resolved(e.Consumer, ResolutionDiscarded)
	l.refreshSoon(e)
	return nil
}

// resolve replaces the letter by its tombstone: a rollup of the letter's
// subject that expects the letter to be the last message there, so two
// operators resolving the same letter at once cannot both succeed.
func (l *Letters) resolve(ctx context.Context, e Entry, kind string, replaySeq uint64) error {
	now := l.o.now().UTC()
	m := nats.NewMsg(e.Subject)
	m.Header.Set(jetstream.MsgRollup, jetstream.MsgRollupSubject)
	m.Header.Set(HeaderResolution, kind)
	m.Header.Set(HeaderResolvedTime, now.Format(time.RFC3339Nano))
	m.Header.Set(HeaderEntrySequence, strconv.FormatUint(e.Sequence, 10))
	m.Header.Set(runner.HeaderDLQConsumer, e.Consumer)
	m.Header.Set(runner.HeaderDLQStream, e.OriginalStream)
	m.Header.Set(runner.HeaderDLQSequence, strconv.FormatUint(e.OriginalSequence, 10))
	m.Header.Set(runner.HeaderDLQSubject, e.OriginalSubject)
	if replaySeq > 0 {
		m.Header.Set(HeaderReplaySequence, strconv.FormatUint(replaySeq, 10))
	}
	_, err := l.js.PublishMsg(ctx, m, jetstream.WithExpectLastSequencePerSubject(e.Sequence), jetstream.WithMsgTTL(l.o.tombstoneTTL))
	if natsconn.IsWrongLastSequence(err) {
		return fmt.Errorf("dead letter %d was resolved concurrently: %w", e.Sequence, ErrResolved)
	}
	if err != nil {
		return fmt.Errorf("resolve dead letter %d: %w", e.Sequence, err)
	}
	return nil
}

// scan reads every letter and tombstone of l's scope: the subjects from
// the stream's subject index, then the last message of each by subject
// (a read the NATS permissions can restrict to the scope, unlike a read
// by sequence). Tombstones never change, so each is read once.
func (l *Letters) scan(ctx context.Context) ([]Entry, []Resolution, error) {
	s, err := l.js.Stream(ctx, l.o.dlqStream)
	if errors.Is(err, jetstream.ErrStreamNotFound) {
		return nil, nil, nil
	}
	if err != nil {
		return nil, nil, fmt.Errorf("dead-letter stream %s: %w", l.o.dlqStream, err)
	}
	info, err := s.Info(ctx, jetstream.WithSubjectFilter(l.scope()))
	if err != nil {
		return nil, nil, fmt.Errorf("list dead-letter subjects: %w", err)
	}
	l.mu.Lock()
	var todo []string
	var resolved []Resolution
	for subj, r := range l.tombstones {
		if _, ok := info.State.Subjects[subj]; !ok {
			delete(l.tombstones, subj) // expired
			continue
		}
		resolved = append(resolved, r)
	}
	for subj := range info.State.Subjects {
		if _, ok := l.tombstones[subj]; !ok {
			todo = append(todo, subj)
		}
	}
	l.mu.Unlock()

	msgs, err := getLast(ctx, s, todo)
	if err != nil {
		return nil, nil, err
	}
	var entries []Entry
	l.mu.Lock()
	for _, m := range msgs {
		if m.Header.Get(HeaderResolution) != "" {
			r := parseResolution(m)
			l.tombstones[m.Subject] = r
			resolved = append(resolved, r)
			continue
		}
		entries = append(entries, parseEntry(m))
	}
	l.mu.Unlock()
	slices.SortFunc(entries, func(a, b Entry) int { return cmp.Compare(a.Sequence, b.Sequence) })
	return entries, resolved, nil
}

// getLast reads the last message of each subject, a few at a time.
func getLast(ctx context.Context, s jetstream.Stream, subjects []string) ([]*jetstream.RawStreamMsg, error) {
	const parallel = 8
	out := make([]*jetstream.RawStreamMsg, len(subjects))
	errs := make([]error, len(subjects))
	sem := make(chan struct{}, parallel)
	var wg sync.WaitGroup
	for i, subj := range subjects {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer func() { <-sem; wg.Done() }()
			m, err := s.GetLastMsgForSubject(ctx, subj)
			if errors.Is(err, jetstream.ErrMsgNotFound) {
				return // a tombstone expired since the subjects were listed
			}
			out[i], errs[i] = m, err
		}()
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return nil, fmt.Errorf("read dead letters: %w", err)
	}
	return slices.DeleteFunc(out, func(m *jetstream.RawStreamMsg) bool { return m == nil }), nil
}

func parseEntry(m *jetstream.RawStreamMsg) Entry {
	h := m.Header
	e := Entry{
		Sequence:         m.Sequence,
		Subject:          m.Subject,
		Consumer:         h.Get(runner.HeaderDLQConsumer),
		OriginalStream:   h.Get(runner.HeaderDLQStream),
		OriginalSequence: parseUint(h.Get(runner.HeaderDLQSequence)),
		OriginalSubject:  h.Get(runner.HeaderDLQSubject),
		Deliveries:       parseUint(h.Get(runner.HeaderDLQDeliveries)),
		Error:            h.Get(runner.HeaderDLQError),
		Missing:          h.Get(runner.HeaderDLQMissing) == "true",
		Header:           nats.Header{},
		Data:             m.Data,
	}
	if t, err := time.Parse(time.RFC3339Nano, h.Get(runner.HeaderDLQTime)); err == nil {
		e.Time = t
	} else {
		e.Time = m.Time
	}
	// The subject is authoritative (dlq.<consumer>.<stream>.<seq>) should a
	// header be missing.
	if parts := strings.Split(m.Subject, "."); len(parts) == 4 {
		if e.Consumer == "" {
			e.Consumer = parts[1]
		}
		if e.OriginalStream == "" {
			e.OriginalStream = parts[2]
		}
		if e.OriginalSequence == 0 {
			e.OriginalSequence = parseUint(parts[3])
		}
	}
	for k, vs := range h {
		if isDLQHeader(k) || isControlHeader(k) {
			continue
		}
		e.Header[k] = slices.Clone(vs)
	}
	return e
}

func parseResolution(m *jetstream.RawStreamMsg) Resolution {
	h := m.Header
	r := Resolution{
		Sequence:       parseUint(h.Get(HeaderEntrySequence)),
		Consumer:       h.Get(runner.HeaderDLQConsumer),
		Kind:           h.Get(HeaderResolution),
		ReplaySequence: parseUint(h.Get(HeaderReplaySequence)),
	}
	if t, err := time.Parse(time.RFC3339Nano, h.Get(HeaderResolvedTime)); err == nil {
		r.Time = t
	} else {
		r.Time = m.Time
	}
	return r
}

// Refresh recounts the letters waiting, by consumer, into the
// eventshop_dead_letters gauge.
func (l *Letters) Refresh(ctx context.Context) error {
	entries, _, err := l.scan(ctx)
	if err != nil {
		return err
	}
	counts := map[string]int{}
	for _, e := range entries {
		counts[e.Consumer]++
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	for c := range l.counts {
		if _, ok := counts[c]; !ok {
			counts[c] = 0 // every letter of c resolved: report zero, not the last count
		}
	}
	l.counts = counts
	for c, n := range counts {
		l.o.metrics.waiting(c, n)
	}
	return nil
}

// Watch refreshes the gauge every refresh interval until ctx ends (a
// lifecycle background job). A failed refresh is logged and retried at the
// next tick: the gauge only goes stale.
func (l *Letters) Watch(ctx context.Context) error {
	t := time.NewTicker(l.o.refresh)
	defer t.Stop()
	for {
		rctx, cancel := context.WithTimeout(ctx, l.o.refresh)
		if err := l.Refresh(rctx); err != nil && ctx.Err() == nil {
			l.log.Warn("count dead letters", zap.Error(err))
		}
		cancel()
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}

// refreshSoon lowers the gauge for a letter just resolved, without
// waiting for the next Watch tick.
func (l *Letters) refreshSoon(e Entry) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.counts[e.Consumer] > 0 {
		l.counts[e.Consumer]--
		l.o.metrics.waiting(e.Consumer, l.counts[e.Consumer])
	}
}

func entryFields(e Entry) []zap.Field {
	return []zap.Field{
		zap.Uint64("dlq_seq", e.Sequence),
		zap.String("consumer", e.Consumer),
		zap.String("subject", e.OriginalSubject),
		zap.String("stream", e.OriginalStream),
		zap.Uint64("stream_seq", e.OriginalSequence),
		zap.String("order_id", e.OrderID()),
		zap.String("trace_id", e.TraceID()),
	}
}

func isDLQHeader(k string) bool { return len(k) >= 4 && strings.EqualFold(k[:4], "dlq-") }

func isControlHeader(k string) bool { return len(k) >= 5 && strings.EqualFold(k[:5], "nats-") }

func parseUint(s string) uint64 {
	n, err := strconv.ParseUint(s, 10, 64)
	if err != nil {
		return 0
	}
	return n
}
