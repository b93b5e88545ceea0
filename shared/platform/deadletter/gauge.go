package deadletter

import (
	"context"
	"time"

	"go.uber.org/zap"
)

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
func (l *Letters) refreshSoon(e Letter) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.counts[e.Consumer] > 0 {
		l.counts[e.Consumer]--
		l.o.metrics.waiting(e.Consumer, l.counts[e.Consumer])
	}
}
