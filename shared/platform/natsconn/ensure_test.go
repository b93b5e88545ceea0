package natsconn_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"go.uber.org/zap"

	"github.com/eventshop/shared/platform/natsconn"
)

var errDown = errors.New("nats down")

func TestEnsure(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name      string
		failures  int // attempts that fail before one succeeds; -1: all fail
		opts      []natsconn.EnsureOption
		ctxTTL    time.Duration
		wantCalls int // 0: do not check
		wantErr   error
	}{
		{name: "first attempt succeeds", failures: 0, wantCalls: 1},
		{name: "retried until it succeeds", failures: 3, wantCalls: 4},
		{name: "gives up with the last error", failures: -1, opts: []natsconn.EnsureOption{natsconn.WithGiveUpAfter(300 * time.Millisecond)}, wantErr: errDown},
		{name: "stops when ctx ends", failures: -1, ctxTTL: 300 * time.Millisecond, wantErr: context.DeadlineExceeded},
		{name: "invalid option", opts: []natsconn.EnsureOption{natsconn.WithAttemptTimeout(0)}, wantErr: natsconn.ErrInvalidOption},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			if tt.ctxTTL > 0 {
				var cancel context.CancelFunc
				ctx, cancel = context.WithTimeout(ctx, tt.ctxTTL)
				defer cancel()
			}
			calls := 0
			err := natsconn.Ensure(ctx, zap.NewNop(), "ensure test stream", func(context.Context) error {
				calls++
				if tt.failures < 0 || calls <= tt.failures {
					return errDown
				}
				return nil
			}, tt.opts...)
			if !errors.Is(err, tt.wantErr) || (tt.wantErr == nil && err != nil) {
				t.Fatalf("Ensure = %v, want %v", err, tt.wantErr)
			}
			if tt.wantCalls > 0 && calls != tt.wantCalls {
				t.Fatalf("ensure ran %d times, want %d", calls, tt.wantCalls)
			}
		})
	}
}

func TestEnsureBoundsEachAttempt(t *testing.T) {
	t.Parallel()
	attempts := 0
	err := natsconn.Ensure(context.Background(), zap.NewNop(), "ensure slow", func(ctx context.Context) error {
		attempts++
		if attempts == 1 {
			<-ctx.Done() // a request to a server that does not answer
			return ctx.Err()
		}
		return nil
	}, natsconn.WithAttemptTimeout(50*time.Millisecond))
	if err != nil || attempts != 2 {
		t.Fatalf("Ensure = %v after %d attempts, want success on the second", err, attempts)
	}
}
