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

// Appender appends entries to the AUDIT stream, one at a time.
//
// Every publish carries two expectations that JetStream checks atomically:
// the stream's last sequence is the head this appender built on
// (Nats-Expected-Last-Sequence), so the chain stays linear even if another
// audit instance writes too; and the entry's subject audit.<order>.<event>
// is empty (Nats-Expected-Last-Subject-Sequence: 0), so an event is audited
// once, for ever, not only within the duplicate window. When a publish is
// refused, the subject tells which expectation failed: if it holds an entry
// the event is a duplicate, otherwise another writer moved the head, which
// is reloaded before trying again.
type Appender struct {
	js      jetstream.JetStream
	stream  jetstream.Stream
	log     *zap.Logger
	now     func() time.Time
	metrics *Metrics

	mu     sync.Mutex // one writer: appends are serialised
	head   chain.Head
	loaded bool
}

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
func (a *Appender) Append(ctx context.Context, rec chain.Record) (entry chain.Entry, duplicate bool, err error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if !a.loaded {
		if err := a.loadHead(ctx); err != nil {
			return chain.Entry{}, false, err
		}
	}
	subject := chain.Subject(rec.OrderID, rec.EventID)
	for attempt := 1; ; attempt++ {
		e, err := chain.Next(a.head, rec, a.now())
		if err != nil {
			return chain.Entry{}, false, err
		}
		raw, err := chain.Encode(e)
		if err != nil {
			return chain.Entry{}, false, err
		}
		msg := nats.NewMsg(subject)
		msg.Data = raw
		ack, err := a.js.PublishMsg(ctx, msg,
			jetstream.WithExpectStream(events.StreamAudit),
			jetstream.WithExpectLastSequence(a.head.Seq),
			jetstream.WithExpectLastSequencePerSubject(0),
		)
		if err == nil {
			a.head = chain.Head{Index: e.Index, Hash: e.Hash, Seq: ack.Sequence}
			a.metrics.appended(e.Index)
			return e, false, nil
		}
		if !events.IsWrongLastSequence(err) {
			// The entry may or may not be stored (a lost ack): the
			// cached head is no longer known to be current.
			a.loaded = false
			return chain.Entry{}, false, fmt.Errorf("append %s: %w", subject, err)
		}
		if stored, found, err := a.existing(ctx, subject); err != nil {
			return chain.Entry{}, false, err
		} else if found {
			a.metrics.duplicate()
			a.log.Debug("event already audited", append(logging.Order(rec.OrderID, rec.TraceID),
				zap.String("event_id", rec.EventID), zap.Uint64("index", stored.Index))...)
			return stored, true, nil
		}
		if err := a.loadHead(ctx); err != nil {
			return chain.Entry{}, false, err
		}
		if attempt > 1 {
			// Another writer keeps winning: step aside briefly so the two
			// do not collide in lock-step.
			if err := sleep(ctx, time.Duration(rand.Int64N(int64(time.Duration(min(attempt, 10))*5*time.Millisecond)))); err != nil {
				return chain.Entry{}, false, fmt.Errorf("append %s: %w", subject, err)
			}
		}
	}
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
