package deadletter

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"go.uber.org/zap"

	"github.com/eventshop/shared/platform/subjects"
)

// Errors of the dead-letter operations.
var (
	ErrNotFound        = errors.New("dead letter not found")
	ErrResolved        = errors.New("dead letter already resolved")
	ErrOriginalMissing = errors.New("the original message was lost before it was dead-lettered: nothing to replay")
	ErrInvalidOption   = errors.New("invalid dead-letter option")
)

// Filter selects dead letters; empty fields match everything.
type Filter struct {
	Consumer string // durable name, exactly
	Subject  string // original subject; NATS wildcards (* and >) allowed
}

// IsZero reports whether f selects every letter.
func (f Filter) IsZero() bool { return f.Consumer == "" && f.Subject == "" }

func (f Filter) matches(e Letter) bool {
	if f.Consumer != "" && f.Consumer != e.Consumer {
		return false
	}
	return f.Subject == "" || subjects.Matches(f.Subject, e.OriginalSubject)
}

// Option configures Letters.
type Option func(*options) error

type options struct {
	now          func() time.Time
	metrics      *Metrics
	dlqStream    string
	tombstoneTTL time.Duration
	refresh      time.Duration
}

func newOptions(opts []Option) (options, error) {
	o := options{now: time.Now, dlqStream: DefaultStream, tombstoneTTL: DefaultTombstoneTTL, refresh: 15 * time.Second}
	for _, opt := range opts {
		if err := opt(&o); err != nil {
			return o, err
		}
	}
	return o, nil
}

// WithClock sets the clock of resolution timestamps.
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
	tombstones map[string]Letter // by DLQ subject; a tombstone never changes until it expires
	counts     map[string]int    // letters waiting by consumer, as last counted
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
		tombstones: map[string]Letter{}, counts: map[string]int{}}, nil
}

// Stream returns the stream whose dead letters l manages.
func (l *Letters) Stream() string { return l.stream }

// scope is the DLQ subject filter of l's letters.
func (l *Letters) scope() string { return "dlq.*." + l.stream + ".>" }

// List returns the dead letters f selects, oldest first.
func (l *Letters) List(ctx context.Context, f Filter) ([]Letter, error) {
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
func (l *Letters) Get(ctx context.Context, seq uint64) (Letter, error) {
	all, resolved, err := l.scan(ctx)
	if err != nil {
		return Letter{}, err
	}
	for _, e := range all {
		if e.DLQSequence == seq {
			return e, nil
		}
	}
	for _, r := range resolved {
		if r.DLQSequence == seq {
			return Letter{}, &ResolvedError{Letter: r}
		}
	}
	return Letter{}, fmt.Errorf("dead letter %d: %w", seq, ErrNotFound)
}

// scan reads every letter waiting and every tombstone of l's scope: the subjects from
// the stream's subject index, then the last message of each by subject
// (a read the NATS permissions can restrict to the scope, unlike a read
// by sequence). Tombstones never change, so each is read once.
func (l *Letters) scan(ctx context.Context) (waiting, resolved []Letter, err error) {
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
	l.mu.Lock()
	for _, m := range msgs {
		d := Decode(m)
		if d.Resolved() {
			l.tombstones[m.Subject] = d
			resolved = append(resolved, d)
			continue
		}
		waiting = append(waiting, d)
	}
	l.mu.Unlock()
	slices.SortFunc(waiting, func(a, b Letter) int { return cmp.Compare(a.DLQSequence, b.DLQSequence) })
	return waiting, resolved, nil
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
