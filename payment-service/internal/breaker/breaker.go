// Package breaker is a circuit breaker for calls to a dependency that can be
// down (the card gateway): after FailureThreshold consecutive failures it
// opens and refuses calls for OpenTimeout, then lets a bounded number of
// probe calls through (half-open) and closes on the first success or re-opens
// on the first failure.
//
// The caller decides what a failure is: a card decline is a healthy answer
// from the gateway and must be reported as a success.
package breaker

import (
	"errors"
	"fmt"
	"sync"
	"time"
)

// State is the state of a breaker. The numeric values are the ones exported
// by the breaker state gauge (0 closed, 1 half-open, 2 open).
type State int

// The states of a breaker.
const (
	Closed   State = 0
	HalfOpen State = 1
	Open     State = 2
)

// String returns the lower-case name of the state.
func (s State) String() string {
	switch s {
	case Closed:
		return "closed"
	case HalfOpen:
		return "half-open"
	case Open:
		return "open"
	default:
		return fmt.Sprintf("state(%d)", int(s))
	}
}

// Sentinel errors.
var (
	// ErrOpen is returned by Allow while the breaker refuses calls. The
	// returned error is an *OpenError that also says when to try again.
	ErrOpen = errors.New("circuit breaker open")
	// ErrInvalidConfig is returned for a configuration or option that cannot
	// work.
	ErrInvalidConfig = errors.New("invalid breaker config")
)

// OpenError is the error Allow returns while calls are refused. It wraps
// ErrOpen.
type OpenError struct {
	state      State
	retryAfter time.Duration
}

// Error describes the refusal.
func (e *OpenError) Error() string {
	return fmt.Sprintf("%s (%s, retry in %s)", ErrOpen, e.state, e.retryAfter)
}

// Unwrap makes errors.Is(err, ErrOpen) true.
func (e *OpenError) Unwrap() error { return ErrOpen }

// RetryAfter is how long the caller should wait before trying again.
func (e *OpenError) RetryAfter() time.Duration { return e.retryAfter }

// RetryAfter returns the retry hint carried by an error from Allow, and
// whether there was one.
func RetryAfter(err error) (time.Duration, bool) {
	var oe *OpenError
	if errors.As(err, &oe) {
		return oe.retryAfter, true
	}
	return 0, false
}

// Clock tells the time; tests inject a fake one.
type Clock interface {
	Now() time.Time
}

type systemClock struct{}

func (systemClock) Now() time.Time { return time.Now() }

// Config tunes a breaker. Zero values take the defaults.
type Config struct {
	// FailureThreshold is the number of consecutive failures that opens the
	// breaker (default 5).
	FailureThreshold int `env:"BREAKER_FAILURE_THRESHOLD" envDefault:"5"`
	// OpenTimeout is how long the breaker stays open before it lets probes
	// through (default 5s).
	OpenTimeout time.Duration `env:"BREAKER_OPEN_TIMEOUT" envDefault:"5s"`
	// HalfOpenMaxProbes is how many probe calls may be in flight at once in
	// the half-open state (default 1).
	HalfOpenMaxProbes int `env:"BREAKER_HALF_OPEN_PROBES" envDefault:"1"`
}

func (c *Config) setDefaults() {
	if c.FailureThreshold == 0 {
		c.FailureThreshold = 5
	}
	if c.OpenTimeout == 0 {
		c.OpenTimeout = 5 * time.Second
	}
	if c.HalfOpenMaxProbes == 0 {
		c.HalfOpenMaxProbes = 1
	}
}

// Validate reports a configuration that cannot work.
func (c Config) Validate() error {
	switch {
	case c.FailureThreshold < 1:
		return fmt.Errorf("failure threshold %d < 1: %w", c.FailureThreshold, ErrInvalidConfig)
	case c.OpenTimeout <= 0:
		return fmt.Errorf("open timeout %s <= 0: %w", c.OpenTimeout, ErrInvalidConfig)
	case c.HalfOpenMaxProbes < 1:
		return fmt.Errorf("half-open max probes %d < 1: %w", c.HalfOpenMaxProbes, ErrInvalidConfig)
	}
	return nil
}

// Transition describes a change of state, given to the observer.
type Transition struct {
	From, To State
	At       time.Time
	// Failures is the count of consecutive failures that led here (for a
	// transition to Open).
	Failures int
}

// Observer is told about every transition, in order. It is called with the
// breaker's lock held, so it must be quick and must not call the breaker.
type Observer func(Transition)

// Option configures a Breaker.
type Option func(*Breaker) error

// WithClock sets the clock (the system clock by default).
func WithClock(c Clock) Option {
	return func(b *Breaker) error {
		if c == nil {
			return fmt.Errorf("clock: %w", ErrInvalidConfig)
		}
		b.clock = c
		return nil
	}
}

// WithObserver sets the transition observer (for metrics and logs).
func WithObserver(o Observer) Option {
	return func(b *Breaker) error {
		if o == nil {
			return fmt.Errorf("observer: %w", ErrInvalidConfig)
		}
		b.observe = o
		return nil
	}
}

// Breaker is a circuit breaker. It is safe for concurrent use.
type Breaker struct {
	cfg     Config
	clock   Clock
	observe Observer

	mu       sync.Mutex
	state    State
	failures int       // consecutive failures while closed
	openedAt time.Time // when it last opened
	probes   int       // probes in flight while half-open
	// generation changes on every transition, so that a result reported
	// for a call admitted under an earlier state cannot move the breaker
	// (a slow call that started while closed must not re-open a breaker
	// that a later probe has just closed).
	generation uint64
}

// New returns a closed breaker.
func New(cfg Config, opts ...Option) (*Breaker, error) {
	cfg.setDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	b := &Breaker{cfg: cfg, clock: systemClock{}}
	for _, opt := range opts {
		if err := opt(b); err != nil {
			return nil, err
		}
	}
	return b, nil
}

// Config returns the effective configuration (defaults applied).
func (b *Breaker) Config() Config { return b.cfg }

// Ticket is the permission for one call. Report its outcome with Done
// exactly once; later calls are ignored.
type Ticket struct {
	b          *Breaker
	generation uint64
	probe      bool
	once       sync.Once
}

// Probe reports whether the call is a half-open probe.
func (t *Ticket) Probe() bool { return t.probe }

// Done reports the outcome of the call: success is false only for failures
// of the dependency itself (timeouts, 5xx, refused connections).
func (t *Ticket) Done(success bool) {
	t.once.Do(func() { t.b.done(t, success) })
}

// Allow asks to make a call. It returns a ticket, or an *OpenError (wrapping
// ErrOpen) when the breaker is open or its half-open probe slots are taken.
func (b *Breaker) Allow() (*Ticket, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	now := b.clock.Now()
	b.advance(now)
	switch b.state {
	case Closed:
		return &Ticket{b: b, generation: b.generation}, nil
	case HalfOpen:
		if b.probes < b.cfg.HalfOpenMaxProbes {
			b.probes++
			return &Ticket{b: b, generation: b.generation, probe: true}, nil
		}
		// The probes' outcome is unknown: if they fail the breaker opens
		// for a full OpenTimeout, so that is the useful wait.
		return nil, &OpenError{state: HalfOpen, retryAfter: b.cfg.OpenTimeout}
	default:
		return nil, &OpenError{state: Open, retryAfter: b.openRemaining(now)}
	}
}

// State returns the current state (an open breaker whose timeout has passed
// reports, and becomes, half-open).
func (b *Breaker) State() State {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.advance(b.clock.Now())
	return b.state
}

// Snapshot is a consistent view of a breaker for status pages.
type Snapshot struct {
	State               State
	ConsecutiveFailures int
	ProbesInFlight      int
	// RetryAfter is the time left before an open breaker lets probes in.
	RetryAfter time.Duration
}

// Snapshot returns the breaker's current state and counters.
func (b *Breaker) Snapshot() Snapshot {
	b.mu.Lock()
	defer b.mu.Unlock()
	now := b.clock.Now()
	b.advance(now)
	s := Snapshot{State: b.state, ConsecutiveFailures: b.failures, ProbesInFlight: b.probes}
	if b.state == Open {
		s.RetryAfter = b.openRemaining(now)
	}
	return s
}

func (b *Breaker) done(t *Ticket, success bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if t.generation != b.generation {
		return // admitted under an earlier state: its result is stale
	}
	now := b.clock.Now()
	switch b.state {
	case Closed:
		if success {
			b.failures = 0
			return
		}
		b.failures++
		if b.failures >= b.cfg.FailureThreshold {
			b.transition(Open, now)
		}
	case HalfOpen:
		if !t.probe {
			return
		}
		b.probes--
		if success {
			b.transition(Closed, now)
			return
		}
		b.failures++
		b.transition(Open, now)
	}
}

// advance moves an open breaker whose timeout has passed to half-open.
// Called with mu held.
func (b *Breaker) advance(now time.Time) {
	if b.state == Open && !now.Before(b.openedAt.Add(b.cfg.OpenTimeout)) {
		b.transition(HalfOpen, now)
	}
}

func (b *Breaker) openRemaining(now time.Time) time.Duration {
	d := b.openedAt.Add(b.cfg.OpenTimeout).Sub(now)
	if d < 0 {
		return 0
	}
	return d
}

// transition changes state. Called with mu held.
func (b *Breaker) transition(to State, now time.Time) {
	tr := Transition{From: b.state, To: to, At: now, Failures: b.failures}
	b.state = to
	b.generation++
	b.probes = 0
	switch to {
	case Open:
		b.openedAt = now
	case Closed:
		b.failures = 0
	}
	if b.observe != nil {
		b.observe(tr)
	}
}
