package natsconn

import (
	"context"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"go.uber.org/zap"
)

// Pacing of WaitStream: quick at first (a stream another service creates
// as it starts is there soon), then at most every 2s.
const (
	waitInitialInterval = 50 * time.Millisecond
	waitMaxInterval     = 2 * time.Second
	// waitLogEvery: WaitStream logs its first attempt and every 20th.
	waitLogEvery = 20
)

// WaitOption tunes WaitStream.
type WaitOption func(*waitOptions) error

type waitOptions struct {
	log *zap.Logger
}

// WithWaitLog logs the wait on log, at its first attempt and once in a
// while after (default: silent).
func WithWaitLog(log *zap.Logger) WaitOption {
	return func(o *waitOptions) error {
		if log == nil {
			return fmt.Errorf("wait log is nil: %w", ErrInvalidOption)
		}
		o.log = log
		return nil
	}
}

// WaitStream waits until the stream name exists and returns its handle,
// looking again after a delay that doubles from 50ms up to 2s. A service
// reading a stream another service owns waits for it, so services start in
// any order. Any error is looked past (the stream is not there yet, or the
// server is briefly unreachable) until ctx ends.
func WaitStream(ctx context.Context, js jetstream.JetStream, name string, opts ...WaitOption) (jetstream.Stream, error) {
	var o waitOptions
	for _, opt := range opts {
		if err := opt(&o); err != nil {
			return nil, fmt.Errorf("wait for stream %s: %w", name, err)
		}
	}
	wait := waitInitialInterval
	for attempt := 0; ; attempt++ {
		s, err := js.Stream(ctx, name)
		if err == nil {
			return s, nil
		}
		if ctx.Err() != nil {
			return nil, fmt.Errorf("wait for stream %s: %w", name, ctx.Err())
		}
		if o.log != nil && attempt%waitLogEvery == 0 {
			o.log.Info("waiting for stream", zap.String("stream", name), zap.Error(err))
		}
		select {
		case <-ctx.Done():
		case <-time.After(wait):
		}
		wait = min(2*wait, waitMaxInterval)
	}
}
