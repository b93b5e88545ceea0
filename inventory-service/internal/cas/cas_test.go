package cas_test

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/eventshop/inventory-service/internal/cas"
	"github.com/eventshop/inventory-service/internal/stock"
)

func TestDo(t *testing.T) {
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
			r, err := cas.New(reg, cas.WithAttempts(5), cas.WithBackoff(time.Microsecond, time.Millisecond))
			if err != nil {
				t.Fatal(err)
			}
			calls := 0
			err = r.Do(context.Background(), "test", func(context.Context) error {
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
			if got := conflictsTotal(t, reg); got != tt.wantConflicts {
				t.Errorf("conflicts metric = %v, want %v", got, tt.wantConflicts)
			}
		})
	}
}

// conflictsTotal sums the conflict counter over every label.
func conflictsTotal(t *testing.T, reg *prometheus.Registry) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	total := 0.0
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			total += m.GetCounter().GetValue()
		}
	}
	return total
}

func TestDoStopsWithContext(t *testing.T) {
	t.Parallel()
	r, err := cas.New(nil, cas.WithAttempts(1000), cas.WithBackoff(time.Millisecond, 5*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	calls := 0
	err = r.Do(ctx, "test", func(context.Context) error {
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

func TestOptionsValidate(t *testing.T) {
	t.Parallel()
	for _, opt := range []cas.Option{cas.WithAttempts(0), cas.WithBackoff(0, time.Second), cas.WithBackoff(time.Second, time.Millisecond)} {
		if _, err := cas.New(nil, opt); !errors.Is(err, cas.ErrInvalidOption) {
			t.Errorf("err = %v, want ErrInvalidOption", err)
		}
	}
}
