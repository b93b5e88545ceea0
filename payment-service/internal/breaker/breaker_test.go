package breaker_test

import (
	"errors"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/eventshop/payment-service/internal/breaker"
)

// fakeClock is a clock that moves only when told to.
type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func newFakeClock() *fakeClock {
	return &fakeClock{now: time.Date(2026, 11, 23, 10, 0, 0, 0, time.UTC)}
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

// recorder collects transitions.
type recorder struct {
	mu  sync.Mutex
	got []breaker.Transition
}

func (r *recorder) observe(t breaker.Transition) {
	r.mu.Lock()
	r.got = append(r.got, t)
	r.mu.Unlock()
}

func (r *recorder) path() []breaker.State {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []breaker.State
	for _, t := range r.got {
		out = append(out, t.To)
	}
	return out
}

// step is one action in a scripted scenario.
type step struct {
	advance   time.Duration
	call      *bool // nil: only Allow and keep the ticket; else Allow and Done(*call)
	hold      bool  // Allow and keep the ticket in the held list
	release   *bool // Done(*release) on the oldest held ticket
	wantErr   error // expected Allow error
	wantRetry time.Duration
	wantState *breaker.State // nil: not checked
}

func st(s breaker.State) *breaker.State { return &s }

func ok() *bool   { b := true; return &b }
func fail() *bool { b := false; return &b }

func TestBreakerTransitions(t *testing.T) {
	t.Parallel()
	cfg := breaker.Config{FailureThreshold: 3, OpenTimeout: 10 * time.Second, HalfOpenMaxProbes: 1}
	tests := []struct {
		name     string
		cfg      breaker.Config
		steps    []step
		wantPath []breaker.State
	}{
		{
			name: "successes keep it closed",
			cfg:  cfg,
			steps: []step{
				{call: ok(), wantState: st(breaker.Closed)},
				{call: ok(), wantState: st(breaker.Closed)},
			},
		},
		{
			name: "failures below the threshold keep it closed",
			cfg:  cfg,
			steps: []step{
				{call: fail(), wantState: st(breaker.Closed)},
				{call: fail(), wantState: st(breaker.Closed)},
			},
		},
		{
			name: "a success resets the consecutive count",
			cfg:  cfg,
			steps: []step{
				{call: fail()}, {call: fail()}, {call: ok()},
				{call: fail()}, {call: fail(), wantState: st(breaker.Closed)},
			},
		},
		{
			name: "closed to open at the threshold, calls refused with the remaining time",
			cfg:  cfg,
			steps: []step{
				{call: fail()}, {call: fail()}, {call: fail(), wantState: st(breaker.Open)},
				{advance: 4 * time.Second, call: ok(), wantErr: breaker.ErrOpen, wantRetry: 6 * time.Second, wantState: st(breaker.Open)},
			},
			wantPath: []breaker.State{breaker.Open},
		},
		{
			name: "open to half-open after the timeout, successful probe closes",
			cfg:  cfg,
			steps: []step{
				{call: fail()}, {call: fail()}, {call: fail()},
				{advance: 10 * time.Second, wantState: st(breaker.HalfOpen)},
				{call: ok(), wantState: st(breaker.Closed)},
				{call: ok(), wantState: st(breaker.Closed)},
			},
			wantPath: []breaker.State{breaker.Open, breaker.HalfOpen, breaker.Closed},
		},
		{
			name: "failed probe re-opens for another timeout",
			cfg:  cfg,
			steps: []step{
				{call: fail()}, {call: fail()}, {call: fail()},
				{advance: 10 * time.Second, call: fail(), wantState: st(breaker.Open)},
				{advance: 9 * time.Second, call: ok(), wantErr: breaker.ErrOpen, wantRetry: time.Second, wantState: st(breaker.Open)},
				{advance: time.Second, call: ok(), wantState: st(breaker.Closed)},
			},
			wantPath: []breaker.State{breaker.Open, breaker.HalfOpen, breaker.Open, breaker.HalfOpen, breaker.Closed},
		},
		{
			name: "half-open admits one probe, extra calls refused",
			cfg:  cfg,
			steps: []step{
				{call: fail()}, {call: fail()}, {call: fail()},
				{advance: 10 * time.Second, hold: true, wantState: st(breaker.HalfOpen)},
				{call: ok(), wantErr: breaker.ErrOpen, wantRetry: 10 * time.Second, wantState: st(breaker.HalfOpen)},
				{release: ok(), wantState: st(breaker.Closed)},
				{call: ok(), wantState: st(breaker.Closed)},
			},
			wantPath: []breaker.State{breaker.Open, breaker.HalfOpen, breaker.Closed},
		},
		{
			name: "two probes allowed, third refused, first result decides",
			cfg:  breaker.Config{FailureThreshold: 1, OpenTimeout: time.Second, HalfOpenMaxProbes: 2},
			steps: []step{
				{call: fail(), wantState: st(breaker.Open)},
				{advance: time.Second, hold: true},
				{hold: true},
				{call: ok(), wantErr: breaker.ErrOpen, wantRetry: time.Second},
				{release: fail(), wantState: st(breaker.Open)},
				{release: ok(), wantState: st(breaker.Open)}, // stale probe: ignored
			},
			wantPath: []breaker.State{breaker.Open, breaker.HalfOpen, breaker.Open},
		},
		{
			name: "a slow call admitted while closed cannot re-open a breaker closed since",
			cfg:  breaker.Config{FailureThreshold: 1, OpenTimeout: time.Second},
			steps: []step{
				{hold: true}, // slow call, closed generation 0
				{call: fail(), wantState: st(breaker.Open)}, // opens
				{advance: time.Second, call: ok(), wantState: st(breaker.Closed)},
				{release: fail(), wantState: st(breaker.Closed)}, // stale failure
			},
			wantPath: []breaker.State{breaker.Open, breaker.HalfOpen, breaker.Closed},
		},
		{
			name: "non-probe ticket finishing in half-open does not free a probe slot",
			cfg:  breaker.Config{FailureThreshold: 2, OpenTimeout: time.Second},
			steps: []step{
				{hold: true}, // closed-state call still running
				{call: fail()}, {call: fail(), wantState: st(breaker.Open)},
				{advance: time.Second, hold: true, wantState: st(breaker.HalfOpen)}, // the probe
				{release: ok(), wantState: st(breaker.HalfOpen)},                    // the old call: stale
				{call: ok(), wantErr: breaker.ErrOpen, wantState: st(breaker.HalfOpen), wantRetry: time.Second},
				{release: ok(), wantState: st(breaker.Closed)},
			},
			wantPath: []breaker.State{breaker.Open, breaker.HalfOpen, breaker.Closed},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			clock := newFakeClock()
			rec := &recorder{}
			b, err := breaker.New(tt.cfg, breaker.WithClock(clock), breaker.WithObserver(rec.observe))
			if err != nil {
				t.Fatal(err)
			}
			var held []*breaker.Ticket
			for i, s := range tt.steps {
				clock.Advance(s.advance)
				switch {
				case s.release != nil:
					held[0].Done(*s.release)
					held = held[1:]
				case s.call != nil || s.hold:
					tk, err := b.Allow()
					if !errors.Is(err, s.wantErr) || (s.wantErr == nil && err != nil) {
						t.Fatalf("step %d: Allow err = %v, want %v", i, err, s.wantErr)
					}
					if err != nil {
						if d, ok := breaker.RetryAfter(err); !ok || d != s.wantRetry {
							t.Fatalf("step %d: RetryAfter = %v, %v; want %v", i, d, ok, s.wantRetry)
						}
						break
					}
					if s.hold {
						held = append(held, tk)
					} else {
						tk.Done(*s.call)
					}
				}
				if s.wantState != nil {
					if got := b.State(); got != *s.wantState {
						t.Fatalf("step %d: state = %s, want %s", i, got, *s.wantState)
					}
				}
			}
			if got := rec.path(); !equalStates(got, tt.wantPath) {
				t.Fatalf("transitions = %v, want %v", got, tt.wantPath)
			}
		})
	}
}

func equalStates(a, b []breaker.State) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func TestDoneTwiceCountsOnce(t *testing.T) {
	t.Parallel()
	b, err := breaker.New(breaker.Config{FailureThreshold: 2})
	if err != nil {
		t.Fatal(err)
	}
	tk, _ := b.Allow()
	tk.Done(false)
	tk.Done(false)
	if got := b.State(); got != breaker.Closed {
		t.Fatalf("state = %s after one reported failure, want closed", got)
	}
}

func TestConfigValidate(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		cfg     breaker.Config
		wantErr error
	}{
		{name: "defaults", cfg: breaker.Config{}},
		{name: "explicit", cfg: breaker.Config{FailureThreshold: 1, OpenTimeout: time.Millisecond, HalfOpenMaxProbes: 3}},
		{name: "negative threshold", cfg: breaker.Config{FailureThreshold: -1}, wantErr: breaker.ErrInvalidConfig},
		{name: "negative timeout", cfg: breaker.Config{OpenTimeout: -time.Second}, wantErr: breaker.ErrInvalidConfig},
		{name: "negative probes", cfg: breaker.Config{HalfOpenMaxProbes: -2}, wantErr: breaker.ErrInvalidConfig},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			b, err := breaker.New(tt.cfg)
			if !errors.Is(err, tt.wantErr) || (tt.wantErr == nil && err != nil) {
				t.Fatalf("New err = %v, want %v", err, tt.wantErr)
			}
			if err == nil {
				c := b.Config()
				if c.FailureThreshold < 1 || c.OpenTimeout <= 0 || c.HalfOpenMaxProbes < 1 {
					t.Fatalf("defaults not applied: %+v", c)
				}
			}
		})
	}
	if _, err := breaker.New(breaker.Config{}, breaker.WithClock(nil)); !errors.Is(err, breaker.ErrInvalidConfig) {
		t.Fatalf("nil clock err = %v, want ErrInvalidConfig", err)
	}
}

func TestSnapshot(t *testing.T) {
	t.Parallel()
	clock := newFakeClock()
	b, err := breaker.New(breaker.Config{FailureThreshold: 1, OpenTimeout: 10 * time.Second}, breaker.WithClock(clock))
	if err != nil {
		t.Fatal(err)
	}
	tk, _ := b.Allow()
	tk.Done(false)
	clock.Advance(3 * time.Second)
	s := b.Snapshot()
	if s.State != breaker.Open || s.RetryAfter != 7*time.Second {
		t.Fatalf("snapshot = %+v, want open with 7s left", s)
	}
	if got := s.State.String(); got != "open" {
		t.Fatalf("String = %q", got)
	}
}

// TestConcurrentUse hammers one breaker from many goroutines while the clock
// moves; run it with -race. It checks the invariants that matter under
// concurrency: never more probes in flight than allowed, and every observed
// transition is a legal edge continuing from the previous one.
func TestConcurrentUse(t *testing.T) {
	t.Parallel()
	const maxProbes = 2
	clock := newFakeClock()
	var (
		mu          sync.Mutex
		transitions []breaker.Transition
	)
	b, err := breaker.New(breaker.Config{FailureThreshold: 3, OpenTimeout: 5 * time.Millisecond, HalfOpenMaxProbes: maxProbes},
		breaker.WithClock(clock),
		breaker.WithObserver(func(tr breaker.Transition) {
			mu.Lock()
			transitions = append(transitions, tr)
			mu.Unlock()
		}))
	if err != nil {
		t.Fatal(err)
	}
	var (
		probesInFlight atomic.Int64
		maxSeen        atomic.Int64
		admitted       atomic.Int64
		refused        atomic.Int64
		wg             sync.WaitGroup
	)
	for g := range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rng := rand.New(rand.NewPCG(uint64(g), 42))
			for range 2000 {
				if rng.IntN(10) == 0 {
					clock.Advance(time.Millisecond)
				}
				tk, err := b.Allow()
				if err != nil {
					if !errors.Is(err, breaker.ErrOpen) {
						t.Errorf("Allow: %v", err)
						return
					}
					refused.Add(1)
					continue
				}
				admitted.Add(1)
				if tk.Probe() {
					n := probesInFlight.Add(1)
					for {
						m := maxSeen.Load()
						if n <= m || maxSeen.CompareAndSwap(m, n) {
							break
						}
					}
					probesInFlight.Add(-1)
				}
				tk.Done(rng.IntN(3) != 0)
				_ = b.State()
			}
		}()
	}
	wg.Wait()
	if m := maxSeen.Load(); m > maxProbes {
		t.Fatalf("%d probes in flight, max %d", m, maxProbes)
	}
	if admitted.Load() == 0 || refused.Load() == 0 {
		t.Fatalf("admitted %d, refused %d: the test did not exercise both paths", admitted.Load(), refused.Load())
	}
	legal := map[[2]breaker.State]bool{
		{breaker.Closed, breaker.Open}:     true,
		{breaker.Open, breaker.HalfOpen}:   true,
		{breaker.HalfOpen, breaker.Closed}: true,
		{breaker.HalfOpen, breaker.Open}:   true,
	}
	mu.Lock()
	defer mu.Unlock()
	prev := breaker.Closed
	for i, tr := range transitions {
		if tr.From != prev || !legal[[2]breaker.State{tr.From, tr.To}] {
			t.Fatalf("transition %d: %s -> %s after %s", i, tr.From, tr.To, prev)
		}
		prev = tr.To
	}
	if len(transitions) < 3 {
		t.Fatalf("only %d transitions: the test did not cycle the breaker", len(transitions))
	}
}
