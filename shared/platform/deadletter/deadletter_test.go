package deadletter_test

import (
	"context"
	"errors"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"

	"github.com/eventshop/shared/platform/deadletter"
	"github.com/eventshop/shared/platform/natstest"
	"github.com/eventshop/shared/platform/runner"
)

const traceparent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"

// env is one embedded server with a limits-retention stream T (t.>), as the
// domain streams are, and one service's metrics.
type env struct {
	srv *natstest.Server
	js  jetstream.JetStream
	reg *prometheus.Registry
	cm  *runner.Metrics
	dm  *deadletter.Metrics
}

func setup(t *testing.T) *env {
	t.Helper()
	srv := natstest.Start(t)
	_, js := natstest.Connect(t, srv)
	if _, err := js.CreateStream(context.Background(), jetstream.StreamConfig{
		Name: "T", Subjects: []string{"t.>"}, AllowDirect: true, Duplicates: 2 * time.Minute,
	}); err != nil {
		t.Fatal(err)
	}
	reg := prometheus.NewRegistry()
	cm := runner.NewMetrics(reg)
	dm := deadletter.NewMetrics(reg)
	return &env{srv: srv, js: js, reg: reg, cm: cm, dm: dm}
}

// runner builds (does not start) a consumer of T on js.
func (e *env) runner(t *testing.T, js jetstream.JetStream, cfg runner.Config, h runner.Handler) *runner.Runner {
	t.Helper()
	cfg.Stream = "T"
	r, err := runner.New(js, cfg, h, zap.NewNop(), runner.WithMetrics(e.cm))
	if err != nil {
		t.Fatal(err)
	}
	return r
}

type part interface {
	Start(context.Context) error
	Drain(context.Context) error
}

func run(t *testing.T, p part) {
	t.Helper()
	if err := p.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = p.Drain(ctx) // best effort at test end
	})
}

func (e *env) capture(t *testing.T, sources ...*runner.Runner) *runner.Capture {
	t.Helper()
	c, err := runner.NewCapture(e.js, runner.CaptureConfig{Service: "test-service", Consumers: sources}, zap.NewNop(),
		runner.WithMetrics(e.cm))
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func (e *env) letters(t *testing.T) *deadletter.Letters {
	t.Helper()
	l, err := deadletter.NewLetters(e.js, "T", zap.NewNop(), deadletter.WithMetrics(e.dm))
	if err != nil {
		t.Fatal(err)
	}
	return l
}

// publish stores one message the way events.Publisher does: create-once
// on its subject, with a message id and a traceparent.
func (e *env) publish(t *testing.T, subject, data string) uint64 {
	t.Helper()
	m := nats.NewMsg(subject)
	m.Data = []byte(data)
	m.Header.Set("traceparent", traceparent)
	m.Header.Set("Ce-Correlation", "corr-"+subject)
	ack, err := e.js.PublishMsg(context.Background(), m, jetstream.WithMsgID("evt-"+subject), jetstream.WithExpectLastSequencePerSubject(0))
	if err != nil {
		t.Fatal(err)
	}
	return ack.Sequence
}

// metric returns the value of the sample of name with the given labels.
func (e *env) metric(t *testing.T, name string, labels map[string]string) float64 {
	t.Helper()
	mfs, err := e.reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
	next:
		for _, m := range mf.GetMetric() {
			got := map[string]string{}
			for _, lp := range m.GetLabel() {
				got[lp.GetName()] = lp.GetValue()
			}
			for k, v := range labels {
				if got[k] != v {
					continue next
				}
			}
			switch {
			case m.GetCounter() != nil:
				return m.GetCounter().GetValue()
			case m.GetGauge() != nil:
				return m.GetGauge().GetValue()
			}
		}
	}
	return 0
}

// dlqMsgs counts the messages in the DLQ stream on subjects matching filter.
func (e *env) dlqMsgs(t *testing.T, filter string) uint64 {
	t.Helper()
	s, err := e.js.Stream(context.Background(), deadletter.DefaultStream)
	if errors.Is(err, jetstream.ErrStreamNotFound) {
		return 0
	}
	if err != nil {
		t.Fatal(err)
	}
	info, err := s.Info(context.Background(), jetstream.WithSubjectFilter(filter))
	if err != nil {
		t.Fatal(err)
	}
	var n uint64
	for _, c := range info.State.Subjects {
		n += c
	}
	return n
}

func (e *env) streamMsgs(t *testing.T, name string) uint64 {
	t.Helper()
	s, err := e.js.Stream(context.Background(), name)
	if err != nil {
		t.Fatal(err)
	}
	info, err := s.Info(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return info.State.Msgs
}

// hang returns a handler that blocks until released, far past AckWait,
// the way a handler stuck on a dead dependency without a deadline would,
// and its release (also run when the test ends, before the runner drains:
// cleanups run last in, first out, and the runner starts later).
func hang(t *testing.T, calls *atomic.Int32) (runner.Handler, func()) {
	release := make(chan struct{})
	var once sync.Once
	free := func() { once.Do(func() { close(release) }) }
	t.Cleanup(free)
	return func(context.Context, jetstream.Msg) error {
		calls.Add(1)
		<-release
		return errors.New("too late")
	}, free
}

func TestHandlerOutlivingAckWaitIsDeadLetteredFromTheAdvisoryOnce(t *testing.T) {
	t.Parallel()
	e := setup(t)
	var calls atomic.Int32
	h, release := hang(t, &calls)
	r := e.runner(t, e.js, runner.Config{Durable: "hang", MaxDeliver: 2, AckWait: 300 * time.Millisecond}, h)
	run(t, e.capture(t, r))
	run(t, r)
	seq := e.publish(t, "t.o-1.created", `{"n":1}`)

	dl := natstest.DeadLetter(t, e.js, "hang", "T", seq)
	if got := dl.Header.Get(deadletter.HeaderDeliveries); got != "2" {
		t.Errorf("deliveries = %q, want 2", got)
	}
	if got := dl.Header.Get(deadletter.HeaderError); !strings.Contains(got, "max deliveries exceeded") {
		t.Errorf("reason = %q, want max deliveries exceeded", got)
	}
	if dl.Header.Get(deadletter.HeaderOriginalSubject) != "t.o-1.created" || string(dl.Data) != `{"n":1}` ||
		dl.Header.Get("traceparent") != traceparent || dl.Header.Get("Ce-Correlation") != "corr-t.o-1.created" ||
		dl.Header.Get(deadletter.HeaderConsumer) != "hang" || dl.Header.Get(deadletter.HeaderTime) == "" {
		t.Errorf("dead letter = %q %v; want the original payload, subject and headers", dl.Data, dl.Header)
	}
	if id := dl.Header.Get(jetstream.MsgIDHeader); id != "" {
		t.Errorf("dead letter carries the original's message id %q", id)
	}
	if n := e.metric(t, "eventshop_dead_letter_advisories_total", map[string]string{"kind": "max_deliveries", "outcome": "written"}); n != 1 {
		t.Errorf("advisories written = %v, want 1", n)
	}
	// The stuck handler finally returns on the last delivery: the runner
	// tries to dead-letter too, and must not add a second letter.
	cons, err := e.js.Consumer(context.Background(), "T", "hang")
	if err != nil {
		t.Fatal(err)
	}
	release()
	natstest.Eventually(t, "handlers released", func() bool {
		info, err := cons.Info(context.Background())
		return err == nil && info.NumAckPending == 0
	})
	time.Sleep(300 * time.Millisecond)
	if n := e.dlqMsgs(t, "dlq.>"); n != 1 {
		t.Fatalf("DLQ holds %d messages, want exactly 1", n)
	}
	if n := e.metric(t, "eventshop_dead_letters_total", map[string]string{"consumer": "hang"}); n != 1 {
		t.Errorf("eventshop_dead_letters_total = %v, want 1", n)
	}
}

func TestPermanentErrorIsDeadLetteredOnceThoughTheTerminatedAdvisoryFires(t *testing.T) {
	t.Parallel()
	e := setup(t)
	r := e.runner(t, e.js, runner.Config{Durable: "poison"}, func(context.Context, jetstream.Msg) error {
		return runner.Permanent(errors.New("schema says no"))
	})
	run(t, e.capture(t, r))
	run(t, r)
	seq := e.publish(t, "t.o-2.created", `{"bad":true}`)
	dl := natstest.DeadLetter(t, e.js, "poison", "T", seq)
	if got := dl.Header.Get(deadletter.HeaderError); !strings.Contains(got, "schema says no") {
		t.Errorf("reason = %q, want the handler's error", got)
	}
	natstest.Eventually(t, "terminated advisory processed", func() bool {
		return e.metric(t, "eventshop_dead_letter_advisories_total", map[string]string{"kind": "terminated", "outcome": "already"}) == 1
	})
	if n := e.dlqMsgs(t, "dlq.>"); n != 1 {
		t.Fatalf("DLQ holds %d messages, want exactly 1", n)
	}
	if n := e.metric(t, "eventshop_dead_letters_total", map[string]string{"consumer": "poison"}); n != 1 {
		t.Errorf("eventshop_dead_letters_total = %v, want 1", n)
	}
}

func TestAdvisoryEmittedWhileTheServiceIsDownIsNotLost(t *testing.T) {
	t.Parallel()
	e := setup(t)
	// The service's own connection: it dies holding the last delivery.
	nc, js := natstest.Connect(t, e.srv)
	var calls atomic.Int32
	h, _ := hang(t, &calls)
	r := e.runner(t, js, runner.Config{Durable: "crash", MaxDeliver: 2, AckWait: 300 * time.Millisecond}, h)
	capture := e.capture(t, r)
	// A previous run created the capture stream; the capture consumer is
	// not running now.
	if err := capture.Ensure(context.Background()); err != nil {
		t.Fatal(err)
	}
	run(t, r)
	seq := e.publish(t, "t.o-3.created", `{"n":3}`)
	natstest.Eventually(t, "second (last) delivery", func() bool { return calls.Load() == 2 })
	nc.Close() // the process is gone; nobody hears the advisory when AckWait runs out

	capStream := runner.CaptureStreamName("test-service")
	natstest.Eventually(t, "advisory captured", func() bool { return e.streamMsgs(t, capStream) == 1 })
	if n := e.dlqMsgs(t, "dlq.>"); n != 0 {
		t.Fatalf("DLQ holds %d messages before the capture consumer runs", n)
	}
	run(t, capture) // the service is back
	dl := natstest.DeadLetter(t, e.js, "crash", "T", seq)
	if dl.Header.Get(deadletter.HeaderDeliveries) != "2" || !strings.Contains(dl.Header.Get(deadletter.HeaderError), "max deliveries exceeded") {
		t.Errorf("dead letter headers %v", dl.Header)
	}
	natstest.Eventually(t, "advisory consumed (work queue)", func() bool { return e.streamMsgs(t, capStream) == 0 })
}

func TestReplayOneReachesTheHandlerOnceAndResolvesTheLetter(t *testing.T) {
	t.Parallel()
	e := setup(t)
	var broken atomic.Bool
	broken.Store(true)
	var mu sync.Mutex
	var handled []jetstream.Msg
	r := e.runner(t, e.js, runner.Config{Durable: "flip"}, func(_ context.Context, m jetstream.Msg) error {
		if broken.Load() {
			return runner.Permanent(errors.New("bug in handler"))
		}
		mu.Lock()
		handled = append(handled, m)
		mu.Unlock()
		return nil
	})
	run(t, e.capture(t, r))
	run(t, r)
	seq := e.publish(t, "t.o-4.created", `{"n":4}`)
	natstest.DeadLetter(t, e.js, "flip", "T", seq)
	l := e.letters(t)
	ctx := context.Background()

	list, err := l.List(ctx, deadletter.Filter{})
	if err != nil || len(list) != 1 {
		t.Fatalf("List = %+v, %v; want one letter", list, err)
	}
	got := list[0]
	if got.Consumer != "flip" || got.OriginalSubject != "t.o-4.created" || got.OriginalSequence != seq ||
		got.OrderID() != "o-4" || got.TraceID() != "4bf92f3577b34da6a3ce929d0e0e4736" || !strings.Contains(got.Reason, "bug in handler") {
		t.Fatalf("letter = %+v", got)
	}
	if err := l.Refresh(ctx); err != nil {
		t.Fatal(err)
	}
	if n := e.metric(t, "eventshop_dead_letters", map[string]string{"consumer": "flip"}); n != 1 {
		t.Errorf("eventshop_dead_letters = %v, want 1", n)
	}

	broken.Store(false) // the fix is deployed
	rep, err := l.Replay(ctx, got.DLQSequence)
	if err != nil {
		t.Fatal(err)
	}
	if rep.Duplicate || rep.ReplaySequence == seq {
		t.Fatalf("replay = %+v, want a new copy", rep)
	}
	natstest.Eventually(t, "replayed copy handled", func() bool { mu.Lock(); defer mu.Unlock(); return len(handled) == 1 })
	mu.Lock()
	m := handled[0]
	mu.Unlock()
	if m.Subject() != "t.o-4.created" || string(m.Data()) != `{"n":4}` || m.Headers().Get("traceparent") != traceparent ||
		m.Headers().Get("Ce-Correlation") != "corr-t.o-4.created" || m.Headers().Get(deadletter.HeaderError) != "" ||
		m.Headers().Get(jetstream.MsgIDHeader) != "replay-T-"+strconv.FormatUint(seq, 10) {
		t.Fatalf("replayed message %s %q %v", m.Subject(), m.Data(), m.Headers())
	}

	if list, err := l.List(ctx, deadletter.Filter{}); err != nil || len(list) != 0 {
		t.Fatalf("List after replay = %+v, %v; want none", list, err)
	}
	if _, err := l.Replay(ctx, got.DLQSequence); !errors.Is(err, deadletter.ErrResolved) {
		t.Fatalf("second replay: err = %v, want ErrResolved", err)
	}
	if _, err := l.Get(ctx, got.DLQSequence); !errors.Is(err, deadletter.ErrResolved) {
		t.Fatalf("Get of a replayed letter: err = %v, want ErrResolved", err)
	}
	if n := e.streamMsgs(t, "T"); n != 2 {
		t.Fatalf("stream T holds %d messages, want the original and one copy", n)
	}
	// An advisory about the original processed late finds the tombstone.
	created, err := deadletter.Write(ctx, e.js, deadletter.Letter{Consumer: "flip", OriginalStream: "T", OriginalSequence: seq, Reason: "late", Time: time.Now()})
	if err != nil || created {
		t.Fatalf("dead-lettering a replayed message again: created %v, err %v; want refused", created, err)
	}
	if err := l.Refresh(ctx); err != nil {
		t.Fatal(err)
	}
	if n := e.metric(t, "eventshop_dead_letters", map[string]string{"consumer": "flip"}); n != 0 {
		t.Errorf("eventshop_dead_letters = %v after the replay, want 0", n)
	}
	time.Sleep(200 * time.Millisecond)
	mu.Lock()
	defer mu.Unlock()
	if len(handled) != 1 {
		t.Fatalf("handler saw %d copies, want 1", len(handled))
	}
}

// twoConsumers dead-letters every message of T in consumers a and b
// while broken is set.
func twoConsumers(t *testing.T, e *env, broken *atomic.Bool, handled *atomic.Int32) {
	t.Helper()
	h := func(context.Context, jetstream.Msg) error {
		if broken.Load() {
			return runner.Permanent(errors.New("broken"))
		}
		handled.Add(1)
		return nil
	}
	a := e.runner(t, e.js, runner.Config{Durable: "a"}, h)
	b := e.runner(t, e.js, runner.Config{Durable: "b"}, h)
	run(t, e.capture(t, a, b))
	run(t, a)
	run(t, b)
}

func TestReplayByFilterAndAll(t *testing.T) {
	t.Parallel()
	e := setup(t)
	var broken atomic.Bool
	broken.Store(true)
	var handled atomic.Int32
	twoConsumers(t, e, &broken, &handled)
	s1 := e.publish(t, "t.x.created", `{"n":1}`)
	s2 := e.publish(t, "t.y.confirmed", `{"n":2}`)
	for _, d := range []string{"a", "b"} {
		for _, s := range []uint64{s1, s2} {
			natstest.DeadLetter(t, e.js, d, "T", s)
		}
	}
	broken.Store(false)
	l := e.letters(t)
	ctx := context.Background()

	bulk, err := l.ReplayMatching(ctx, deadletter.Filter{Consumer: "a", Subject: "t.*.created"})
	if err != nil || len(bulk.Replayed) != 1 || len(bulk.Failed) != 0 || bulk.Replayed[0].Letter.OriginalSequence != s1 {
		t.Fatalf("replay a's created = %+v, %v", bulk, err)
	}
	left, err := l.List(ctx, deadletter.Filter{})
	if err != nil || len(left) != 3 {
		t.Fatalf("left %+v, %v; want 3", left, err)
	}
	bulk, err = l.ReplayMatching(ctx, deadletter.Filter{})
	if err != nil || len(bulk.Replayed) != 3 || len(bulk.Failed) != 0 {
		t.Fatalf("replay all = %+v, %v", bulk, err)
	}
	// a and b gave up on the same two messages: once one letter of a
	// message is replayed, replaying the other inside the duplicate window
	// publishes nothing (s1's copy came from the first replay).
	published := map[uint64]int{}
	for _, r := range bulk.Replayed {
		if !r.Duplicate {
			published[r.Letter.OriginalSequence]++
		}
	}
	if published[s1] != 0 || published[s2] != 1 {
		t.Errorf("copies published by replay all: %v, want none of #%d and one of #%d", published, s1, s2)
	}
	if n := e.streamMsgs(t, "T"); n != 4 {
		t.Errorf("stream T holds %d messages, want 2 originals + 2 copies", n)
	}
	// Each consumer sees each copy once.
	natstest.Eventually(t, "copies handled by both consumers", func() bool { return handled.Load() == 4 })
	if left, err := l.List(ctx, deadletter.Filter{}); err != nil || len(left) != 0 {
		t.Fatalf("left after replay all: %+v, %v", left, err)
	}
}

func TestDiscardOneAndByFilter(t *testing.T) {
	t.Parallel()
	e := setup(t)
	var broken atomic.Bool
	broken.Store(true)
	var handled atomic.Int32
	twoConsumers(t, e, &broken, &handled)
	s1 := e.publish(t, "t.x.created", `{"n":1}`)
	s2 := e.publish(t, "t.y.created", `{"n":2}`)
	for _, d := range []string{"a", "b"} {
		for _, s := range []uint64{s1, s2} {
			natstest.DeadLetter(t, e.js, d, "T", s)
		}
	}
	l := e.letters(t)
	ctx := context.Background()
	if all, err := l.List(ctx, deadletter.Filter{}); err != nil || len(all) != 4 {
		t.Fatalf("List = %d, %v; want 4", len(all), err)
	}
	ofA, err := l.List(ctx, deadletter.Filter{Consumer: "a"})
	if err != nil || len(ofA) != 2 {
		t.Fatalf("List of a = %d, %v; want 2", len(ofA), err)
	}
	gone, err := l.Discard(ctx, ofA[0].DLQSequence)
	if err != nil || gone.DLQSequence != ofA[0].DLQSequence {
		t.Fatalf("Discard = %+v, %v", gone, err)
	}
	if _, err := l.Discard(ctx, ofA[0].DLQSequence); !errors.Is(err, deadletter.ErrResolved) {
		t.Fatalf("second discard: err = %v, want ErrResolved", err)
	}
	if _, err := l.Get(ctx, 999); !errors.Is(err, deadletter.ErrNotFound) {
		t.Fatalf("Get(999): err = %v, want ErrNotFound", err)
	}
	bulk, err := l.DiscardMatching(ctx, deadletter.Filter{Consumer: "b"})
	if err != nil || len(bulk.Discarded) != 2 || len(bulk.Failed) != 0 {
		t.Fatalf("discard b = %+v, %v", bulk, err)
	}
	left, err := l.List(ctx, deadletter.Filter{})
	if err != nil || len(left) != 1 || left[0].Consumer != "a" {
		t.Fatalf("left = %+v, %v; want a single letter of a", left, err)
	}
	if n := e.metric(t, "eventshop_dead_letters_resolved_total", map[string]string{"consumer": "b", "resolution": "discarded"}); n != 2 {
		t.Errorf("discarded count for b = %v, want 2", n)
	}
	// Nothing was re-published and no stored message was lost: the
	// letters were resolved, the originals stay in T.
	if n := e.streamMsgs(t, "T"); n != 2 || handled.Load() != 0 {
		t.Errorf("stream T holds %d, handled %d; want 2 and 0", n, handled.Load())
	}
}

func TestLettersOfAnotherStreamAreOutOfScope(t *testing.T) {
	t.Parallel()
	e := setup(t)
	ctx := context.Background()
	if err := deadletter.EnsureStream(ctx, e.js, deadletter.DefaultStream, 1); err != nil {
		t.Fatal(err)
	}
	if _, err := deadletter.Write(ctx, e.js, deadletter.Letter{Consumer: "c", OriginalStream: "OTHER", OriginalSequence: 1, OriginalSubject: "other.1.x", Reason: "r", Time: time.Now()}); err != nil {
		t.Fatal(err)
	}
	l := e.letters(t)
	if list, err := l.List(ctx, deadletter.Filter{}); err != nil || len(list) != 0 {
		t.Fatalf("List = %+v, %v; want nothing of stream OTHER", list, err)
	}
	if _, err := l.Get(ctx, 1); !errors.Is(err, deadletter.ErrNotFound) {
		t.Fatalf("Get of another stream's letter: err = %v, want ErrNotFound", err)
	}
}

func TestDeadLetterStreamIsUpgradedForResolution(t *testing.T) {
	t.Parallel()
	e := setup(t)
	ctx := context.Background()
	old := deadletter.StreamConfig(deadletter.DefaultStream, 1)
	old.AllowRollup, old.AllowMsgTTL = false, false
	if _, err := e.js.CreateStream(ctx, old); err != nil {
		t.Fatal(err)
	}
	if err := deadletter.EnsureStream(ctx, e.js, deadletter.DefaultStream, 1); err != nil {
		t.Fatal(err)
	}
	s, err := e.js.Stream(ctx, deadletter.DefaultStream)
	if err != nil {
		t.Fatal(err)
	}
	if cfg := s.CachedInfo().Config; !cfg.AllowRollup || !cfg.AllowMsgTTL {
		t.Fatalf("DLQ config after ensure: rollup %v, msg TTL %v; want both on", cfg.AllowRollup, cfg.AllowMsgTTL)
	}
}
