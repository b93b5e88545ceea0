package runner_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"

	"github.com/eventshop/shared/platform/deadletter"
	"github.com/eventshop/shared/platform/natstest"
	"github.com/eventshop/shared/platform/runner"
)

func setup(t *testing.T) (jetstream.JetStream, context.Context) {
	t.Helper()
	srv := natstest.Start(t)
	_, js := natstest.Connect(t, srv)
	ctx := context.Background()
	if _, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: "T", Subjects: []string{"t.>"}}); err != nil {
		t.Fatal(err)
	}
	return js, ctx
}

func start(t *testing.T, js jetstream.JetStream, cfg runner.Config, h runner.Handler) *runner.Runner {
	t.Helper()
	m := runner.NewMetrics(prometheus.NewRegistry())
	r, err := runner.New(js, cfg, h, zap.NewNop(), runner.WithMetrics(m))
	if err != nil {
		t.Fatal(err)
	}
	if err := r.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = r.Drain(ctx) // best effort at test end; Drain itself is tested below
	})
	return r
}

func dlqCount(t *testing.T, js jetstream.JetStream) uint64 {
	t.Helper()
	s, err := js.Stream(context.Background(), deadletter.DefaultStream)
	if err != nil {
		return 0
	}
	info, err := s.Info(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return info.State.Msgs
}

func TestConfigValidate(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		cfg     runner.Config
		wantErr bool
	}{
		{name: "defaults", cfg: runner.Config{Stream: "S", Durable: "d"}},
		{name: "no stream", cfg: runner.Config{Durable: "d"}, wantErr: true},
		{name: "no durable", cfg: runner.Config{Stream: "S"}, wantErr: true},
		{name: "max deliver 1", cfg: runner.Config{Stream: "S", Durable: "d", MaxDeliver: 1}, wantErr: true},
		{name: "ack pending below concurrency", cfg: runner.Config{Stream: "S", Durable: "d", Concurrency: 8, MaxAckPending: 2}, wantErr: true},
		{name: "unlimited deliveries", cfg: runner.Config{Stream: "S", Durable: "d", MaxDeliver: -1}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, err := runner.New(nil, tt.cfg, nil, zap.NewNop())
			if tt.wantErr && !errors.Is(err, runner.ErrInvalidConfig) {
				t.Fatalf("err = %v, want ErrInvalidConfig", err)
			}
			if !tt.wantErr && err != nil && errors.Is(err, runner.ErrInvalidConfig) && err.Error() != "jetstream, handler and logger are required: invalid consumer config" {
				t.Fatalf("err = %v", err)
			}
		})
	}
}

func TestDelayGrowsAndIsCapped(t *testing.T) {
	t.Parallel()
	b := runner.Backoff{Initial: 100 * time.Millisecond, Max: time.Second, Multiplier: 2}
	tests := []struct {
		n        uint64
		min, max time.Duration
	}{
		{1, 50 * time.Millisecond, 100 * time.Millisecond},
		{3, 200 * time.Millisecond, 400 * time.Millisecond},
		{20, 500 * time.Millisecond, time.Second},
	}
	for _, tt := range tests {
		for range 50 {
			if d := runner.Delay(b, tt.n); d < tt.min || d > tt.max {
				t.Fatalf("Delay(%d) = %v, want in [%v, %v]", tt.n, d, tt.min, tt.max)
			}
		}
	}
}

func TestEveryMessageHandledOnceWithBoundedConcurrency(t *testing.T) {
	t.Parallel()
	js, ctx := setup(t)
	var inFlight, peak atomic.Int32
	var mu sync.Mutex
	seen := map[string]int{}
	start(t, js, runner.Config{Stream: "T", Durable: "ok", Concurrency: 4}, func(_ context.Context, m jetstream.Msg) error {
		n := inFlight.Add(1)
		for p := peak.Load(); n > p && !peak.CompareAndSwap(p, n); p = peak.Load() {
		}
		time.Sleep(5 * time.Millisecond)
		inFlight.Add(-1)
		mu.Lock()
		seen[string(m.Data())]++
		mu.Unlock()
		return nil
	})
	for i := range 100 {
		if _, err := js.Publish(ctx, "t.a", []byte(fmt.Sprint(i))); err != nil {
			t.Fatal(err)
		}
	}
	natstest.Eventually(t, "100 messages", func() bool { mu.Lock(); defer mu.Unlock(); return len(seen) == 100 })
	mu.Lock()
	for k, n := range seen {
		if n != 1 {
			t.Errorf("message %s handled %d times", k, n)
		}
	}
	mu.Unlock()
	if p := peak.Load(); p > 4 {
		t.Errorf("peak concurrency %d > 4", p)
	}
}

func TestTransientErrorIsRetriedThenSucceeds(t *testing.T) {
	t.Parallel()
	js, ctx := setup(t)
	var calls atomic.Int32
	start(t, js, runner.Config{Stream: "T", Durable: "retry", Retry: runner.Backoff{Initial: 10 * time.Millisecond, Max: 20 * time.Millisecond}},
		func(context.Context, jetstream.Msg) error {
			if calls.Add(1) < 3 {
				return errors.New("flaky dependency")
			}
			return nil
		})
	if _, err := js.Publish(ctx, "t.a", []byte("x")); err != nil {
		t.Fatal(err)
	}
	natstest.Eventually(t, "third attempt", func() bool { return calls.Load() >= 3 })
	time.Sleep(200 * time.Millisecond)
	if c := calls.Load(); c != 3 {
		t.Fatalf("handler called %d times, want 3", c)
	}
	if n := dlqCount(t, js); n != 0 {
		t.Fatalf("dead letters = %d, want 0", n)
	}
}

func TestPermanentErrorIsDeadLetteredOnceWithReason(t *testing.T) {
	t.Parallel()
	js, ctx := setup(t)
	var calls atomic.Int32
	start(t, js, runner.Config{Stream: "T", Durable: "poison"}, func(_ context.Context, m jetstream.Msg) error {
		calls.Add(1)
		if string(m.Data()) == "bad" {
			return runner.Permanent(errors.New("schema says no"))
		}
		return nil
	})
	if _, err := js.Publish(ctx, "t.o-1.x", []byte("bad")); err != nil {
		t.Fatal(err)
	}
	if _, err := js.Publish(ctx, "t.o-2.x", []byte("good")); err != nil {
		t.Fatal(err)
	}
	natstest.Eventually(t, "dead letter", func() bool { return dlqCount(t, js) == 1 })
	s, _ := js.Stream(ctx, deadletter.DefaultStream)
	dl, err := s.GetLastMsgForSubject(ctx, "dlq.poison.T.1")
	if err != nil {
		t.Fatal(err)
	}
	if string(dl.Data) != "bad" || dl.Header.Get(deadletter.HeaderOriginalSubject) != "t.o-1.x" ||
		dl.Header.Get(deadletter.HeaderError) == "" || dl.Header.Get(deadletter.HeaderConsumer) != "poison" {
		t.Fatalf("dead letter = %q %v", dl.Data, dl.Header)
	}
	time.Sleep(200 * time.Millisecond)
	if c := calls.Load(); c != 2 {
		t.Fatalf("handler called %d times, want 2 (poison not retried)", c)
	}
}

func TestExhaustedRetriesAreDeadLettered(t *testing.T) {
	t.Parallel()
	js, ctx := setup(t)
	var calls atomic.Int32
	start(t, js, runner.Config{Stream: "T", Durable: "exhaust", MaxDeliver: 3, Retry: runner.Backoff{Initial: 5 * time.Millisecond, Max: 10 * time.Millisecond}},
		func(context.Context, jetstream.Msg) error { calls.Add(1); return errors.New("always down") })
	if _, err := js.Publish(ctx, "t.a", []byte("x")); err != nil {
		t.Fatal(err)
	}
	natstest.Eventually(t, "dead letter", func() bool { return dlqCount(t, js) == 1 })
	if c := calls.Load(); c != 3 {
		t.Fatalf("handler called %d times, want 3", c)
	}
}

func TestWaitIsNeverDeadLettered(t *testing.T) {
	t.Parallel()
	js, ctx := setup(t)
	var calls atomic.Int32
	start(t, js, runner.Config{Stream: "T", Durable: "wait", MaxDeliver: -1},
		func(context.Context, jetstream.Msg) error {
			if calls.Add(1) < 6 {
				return runner.Wait(errors.New("gateway down"), 10*time.Millisecond)
			}
			return nil
		})
	if _, err := js.Publish(ctx, "t.a", []byte("x")); err != nil {
		t.Fatal(err)
	}
	natstest.Eventually(t, "success after waits", func() bool { return calls.Load() >= 6 })
	if n := dlqCount(t, js); n != 0 {
		t.Fatalf("dead letters = %d, want 0", n)
	}
}

func TestDrainFinishesInFlightWork(t *testing.T) {
	t.Parallel()
	js, ctx := setup(t)
	release := make(chan struct{})
	var done atomic.Int32
	m := runner.NewMetrics(prometheus.NewRegistry())
	r, err := runner.New(js, runner.Config{Stream: "T", Durable: "drain", Concurrency: 2}, func(context.Context, jetstream.Msg) error {
		<-release
		done.Add(1)
		return nil
	}, zap.NewNop(), runner.WithMetrics(m))
	if err != nil {
		t.Fatal(err)
	}
	if err := r.Start(ctx); err != nil {
		t.Fatal(err)
	}
	for range 2 {
		if _, err := js.Publish(ctx, "t.a", []byte("x")); err != nil {
			t.Fatal(err)
		}
	}
	cons, _ := js.Consumer(ctx, "T", "drain")
	natstest.Eventually(t, "both in flight", func() bool {
		info, err := cons.Info(ctx)
		return err == nil && info.NumAckPending == 2
	})
	drained := make(chan error, 1)
	go func() {
		dctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		defer cancel()
		drained <- r.Drain(dctx)
	}()
	time.Sleep(100 * time.Millisecond)
	close(release)
	if err := <-drained; err != nil {
		t.Fatal(err)
	}
	if d := done.Load(); d != 2 {
		t.Fatalf("finished %d, want 2", d)
	}
	natstest.Eventually(t, "acks recorded", func() bool {
		info, err := cons.Info(ctx)
		return err == nil && info.NumAckPending == 0 && info.AckFloor.Stream == 2
	})
	if r.Ready() == nil {
		t.Fatal("drained runner still reports ready")
	}
}

func TestAttemptsAndDeadLettersAreMetrics(t *testing.T) {
	t.Parallel()
	js, ctx := setup(t)
	reg := prometheus.NewRegistry()
	m := runner.NewMetrics(reg)
	var calls atomic.Int32
	r, err := runner.New(js, runner.Config{Stream: "T", Durable: "count", MaxDeliver: 3,
		Retry: runner.Backoff{Initial: 5 * time.Millisecond, Max: 10 * time.Millisecond}},
		func(_ context.Context, msg jetstream.Msg) error {
			calls.Add(1)
			if string(msg.Data()) == "flaky" {
				if meta, _ := msg.Metadata(); meta.NumDelivered < 2 {
					return errors.New("once")
				}
				return nil
			}
			return errors.New("always")
		}, zap.NewNop(), runner.WithMetrics(m))
	if err != nil {
		t.Fatal(err)
	}
	if err := r.Start(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = r.Drain(context.Background()) })
	for _, d := range []string{"flaky", "broken"} {
		if _, err := js.Publish(ctx, "t.a", []byte(d)); err != nil {
			t.Fatal(err)
		}
	}
	natstest.Eventually(t, "broken dead-lettered", func() bool { return dlqCount(t, js) == 1 })
	natstest.Eventually(t, "all settled", func() bool { return calls.Load() == 5 })
	// Histogram sums of the attempt number, per outcome: the flaky message
	// was retried at 1 and acked at 2; the broken one retried at 1 and 2
	// and dead-lettered at 3.
	want := map[string][2]float64{"ack": {1, 2}, "retry": {3, 4}, "dead_letter": {1, 3}} // count, sum
	natstest.EventuallyNil(t, "attempt histogram", func() error {
		mfs, err := reg.Gather()
		if err != nil {
			return err
		}
		got := map[string][2]float64{}
		dead := 0.0
		for _, mf := range mfs {
			for _, s := range mf.GetMetric() {
				outcome := ""
				for _, l := range s.GetLabel() {
					if l.GetName() == "outcome" {
						outcome = l.GetValue()
					}
				}
				switch mf.GetName() {
				case "eventshop_consumer_delivery_attempt":
					got[outcome] = [2]float64{float64(s.GetHistogram().GetSampleCount()), s.GetHistogram().GetSampleSum()}
				case "eventshop_dead_letters_total":
					dead = s.GetCounter().GetValue()
				}
			}
		}
		for k, v := range want {
			if got[k] != v {
				return fmt.Errorf("attempts %v, want %v", got, want)
			}
		}
		if dead != 1 {
			return fmt.Errorf("dead letters %v, want 1", dead)
		}
		return nil
	})
}

// TestRefusedEventsAreDeadLetteredAndCountedByReason: a refused event is
// permanent (dead-lettered at once, with its reason) and counted in
// eventshop_events_refused_total by a bounded reason label.
func TestRefusedEventsAreDeadLetteredAndCountedByReason(t *testing.T) {
	t.Parallel()
	js, ctx := setup(t)
	reg := prometheus.NewRegistry()
	m := runner.NewMetrics(reg)
	var calls atomic.Int32
	r, err := runner.New(js, runner.Config{Stream: "T", Durable: "refuser", MaxDeliver: 5}, func(_ context.Context, msg jetstream.Msg) error {
		calls.Add(1)
		switch string(msg.Data()) {
		case "forged":
			return runner.Refused("amount_mismatch", errors.New("charged 1 USD cent, the order's total is 3000"))
		case "odd":
			return runner.Refused("Not A Label {x}", errors.New("some refusal"))
		case "broken":
			return runner.Permanent(errors.New("not an event"))
		}
		return nil
	}, zap.NewNop(), runner.WithMetrics(m))
	if err != nil {
		t.Fatal(err)
	}
	if err := r.Start(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = r.Drain(context.Background()) })
	for _, d := range []string{"forged", "odd", "broken", "fine"} {
		if _, err := js.Publish(ctx, "t.o-1.x", []byte(d)); err != nil {
			t.Fatal(err)
		}
	}
	natstest.Eventually(t, "three dead letters", func() bool { return dlqCount(t, js) == 3 })
	s, _ := js.Stream(ctx, deadletter.DefaultStream)
	dl, err := s.GetLastMsgForSubject(ctx, "dlq.refuser.T.1")
	if err != nil {
		t.Fatal(err)
	}
	if e := dl.Header.Get(deadletter.HeaderError); e != "refused (amount_mismatch): charged 1 USD cent, the order's total is 3000" {
		t.Fatalf("Dlq-Error = %q", e)
	}
	natstest.EventuallyNil(t, "refused counter", func() error {
		mfs, err := reg.Gather()
		if err != nil {
			return err
		}
		got := map[string]float64{}
		for _, mf := range mfs {
			if mf.GetName() != "eventshop_events_refused_total" {
				continue
			}
			for _, s := range mf.GetMetric() {
				for _, l := range s.GetLabel() {
					if l.GetName() == "reason" {
						got[l.GetValue()] = s.GetCounter().GetValue()
					}
				}
			}
		}
		if len(got) != 2 || got["amount_mismatch"] != 1 || got[runner.ReasonOther] != 1 {
			return fmt.Errorf("refused by reason = %v, want amount_mismatch 1, other 1", got)
		}
		return nil
	})
	if c := calls.Load(); c != 4 {
		t.Fatalf("handler called %d times, want 4 (refusals are not retried)", c)
	}
}
