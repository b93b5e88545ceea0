package lifecycle_test

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/eventshop/shared/platform/lifecycle"
)

// TestEveryCallsAtStartThenEachIntervalUntilDrained: the first call comes
// at Start, more follow, a second Start adds no loop, and Drain waits for
// the call in progress; after it no call starts.
func TestEveryCallsAtStartThenEachIntervalUntilDrained(t *testing.T) {
	var calls, inside atomic.Int64
	release := make(chan struct{})
	e := lifecycle.NewEvery("poller", 5*time.Millisecond, func(ctx context.Context) {
		inside.Add(1)
		defer inside.Add(-1)
		if calls.Add(1) == 3 {
			<-release // the third call is in progress when Drain is asked
		}
	})
	if e.Name() != "poller" {
		t.Fatalf("Name = %q", e.Name())
	}
	ctx := context.Background()
	if err := e.Start(ctx); err != nil {
		t.Fatal(err)
	}
	if err := e.Start(ctx); err != nil {
		t.Fatal(err)
	}
	for calls.Load() < 3 {
		time.Sleep(time.Millisecond)
	}
	short, cancel := context.WithTimeout(ctx, 20*time.Millisecond)
	defer cancel()
	if err := e.Drain(short); err == nil {
		t.Fatal("Drain returned while a call was in progress")
	}
	close(release)
	if err := e.Drain(ctx); err != nil {
		t.Fatal(err)
	}
	n := calls.Load()
	time.Sleep(30 * time.Millisecond)
	if calls.Load() != n || inside.Load() != 0 || n != 3 {
		t.Fatalf("after Drain: %d calls (then %d), %d in progress; want 3, none more, none in progress", n, calls.Load(), inside.Load())
	}
}
