package app

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/eventshop/inventory-service/internal/stock"
)

func TestRetryCountsConflictsAndGivesUp(t *testing.T) {
	t.Parallel()
	errBoom := errors.New("boom")
	tests := []struct {
		name          string
		conflicts     int   // how many attempts conflict before fn's final result
		final         error // result after the conflicts
		wantCalls     int
		wantErr       error
		wantConflicts float64
	}{
		{name: "first try", wantCalls: 1},
		{name: "conflicts then success", conflicts: 3, wantCalls: 4, wantConflicts: 3},
		{name: "other error is not retried", final: errBoom, wantCalls: 1, wantErr: errBoom},
		{name: "conflict then other error", conflicts: 1, final: errBoom, wantCalls: 2, wantErr: errBoom, wantConflicts: 1},
		{name: "gives up", conflicts: 100, wantCalls: 5, wantErr: stock.ErrConflict, wantConflicts: 4},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			reg := prometheus.NewRegistry()
			r := retrier{policy: defaultRetry, conflicts: NewMetrics(reg).conflicts}
			r.policy.Attempts, r.policy.Initial, r.policy.Max = 5, time.Microsecond, time.Millisecond
			calls := 0
			err := r.do(context.Background(), "test", func(context.Context) error {
				calls++
				if calls <= tt.conflicts {
					return fmt.Errorf("write: %w", stock.ErrConflict)
				}
				return tt.final
			})
			if !errors.Is(err, tt.wantErr) || (tt.wantErr == nil) != (err == nil) {
				t.Fatalf("err = %v, want %v", err, tt.wantErr)
			}
			if calls != tt.wantCalls {
				t.Errorf("calls = %d, want %d", calls, tt.wantCalls)
			}
			if got := conflictsTotal(t, reg, "eventshop_inventory_cas_conflicts_total"); got != tt.wantConflicts {
				t.Errorf("conflicts metric = %v, want %v", got, tt.wantConflicts)
			}
		})
	}
}

// conflictsTotal sums the counter name over every label.
func conflictsTotal(t *testing.T, reg *prometheus.Registry, name string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	total := 0.0
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			total += m.GetCounter().GetValue()
		}
	}
	return total
}

func TestRetryStopsWithContext(t *testing.T) {
	t.Parallel()
	r := retrier{policy: defaultRetry}
	r.policy.Attempts, r.policy.Initial, r.policy.Max = 1000, time.Millisecond, 5*time.Millisecond
	ctx, cancel := context.WithCancel(context.Background())
	calls := 0
	err := r.do(ctx, "test", func(context.Context) error {
		calls++
		if calls == 3 {
			cancel()
		}
		return stock.ErrConflict
	})
	if err == nil || calls > 4 {
		t.Fatalf("err = %v after %d calls, want an error soon after cancel", err, calls)
	}
}

func TestCASOptionsValidate(t *testing.T) {
	t.Parallel()
	for _, opt := range []Option{WithCASAttempts(0), WithCASBackoff(0, time.Second), WithCASBackoff(time.Second, time.Millisecond)} {
		var o options
		if err := opt(&o); !errors.Is(err, ErrInvalidOption) {
			t.Errorf("err = %v, want ErrInvalidOption", err)
		}
	}
}
