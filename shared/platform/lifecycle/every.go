package lifecycle

import (
	"context"
	"fmt"
	"sync"
	"time"
)

// Every is a part (a Consumer of Parts) that calls a function now and then
// every interval, in the background, from Start until Drain: the pollers
// of broker metrics and the like. It never holds the service up.
type Every struct {
	name     string
	interval time.Duration
	fn       func(ctx context.Context)

	mu     sync.Mutex
	cancel context.CancelFunc
	done   chan struct{}
}

// NewEvery returns the part named name that calls fn every interval.
func NewEvery(name string, interval time.Duration, fn func(ctx context.Context)) *Every {
	return &Every{name: name, interval: interval, fn: fn}
}

// Name names the part among the service's parts.
func (e *Every) Name() string { return e.name }

// Start calls the function once now and then every interval, in the
// background, until Drain. It returns at once; a second Start does nothing.
func (e *Every) Start(ctx context.Context) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.done != nil {
		return nil
	}
	ctx, e.cancel = context.WithCancel(context.WithoutCancel(ctx))
	e.done = make(chan struct{})
	go e.loop(ctx, e.done)
	return nil
}

// Drain stops the calls and waits for the one in progress, or for ctx.
func (e *Every) Drain(ctx context.Context) error {
	e.mu.Lock()
	cancel, done := e.cancel, e.done
	e.mu.Unlock()
	if done == nil {
		return nil
	}
	cancel()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("drain %s: %w", e.name, ctx.Err())
	}
}

func (e *Every) loop(ctx context.Context, done chan struct{}) {
	defer close(done)
	t := time.NewTicker(e.interval)
	defer t.Stop()
	for ctx.Err() == nil { // a tick pending when Drain cancels starts no call
		e.fn(ctx)
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}
