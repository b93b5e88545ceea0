// Package lifecycle runs a service's parts and stops them in the right order
// on shutdown: stop taking HTTP requests, drain consumers so in-flight
// messages finish and are acknowledged, then drain the NATS connection.
package lifecycle

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go"
	"go.uber.org/zap"
)

// HTTP is the server part of a service.
type HTTP interface {
	Serve() error
	Shutdown(ctx context.Context) error
}

// Consumer is one consumer part of a service.
type Consumer interface {
	Start(ctx context.Context) error
	Drain(ctx context.Context) error
	Name() string
}

// Parts are what a service runs.
type Parts struct {
	HTTP      HTTP
	Consumers []Consumer
	Conn      *nats.Conn
	// Background jobs run until ctx ends (optional).
	Background []func(ctx context.Context) error
	// ShutdownTimeout bounds the whole shutdown (default 20s).
	ShutdownTimeout time.Duration
}

// Run starts the parts and blocks until ctx ends or a part fails, then shuts
// everything down within ShutdownTimeout.
func Run(ctx context.Context, log *zap.Logger, p Parts) error {
	if p.ShutdownTimeout == 0 {
		p.ShutdownTimeout = 20 * time.Second
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	errc := make(chan error, 2+len(p.Background))
	go func() { errc <- p.HTTP.Serve() }()
	started := make([]Consumer, 0, len(p.Consumers))
	for _, c := range p.Consumers {
		if err := c.Start(ctx); err != nil {
			stopping := ctx.Err() != nil
			cancel()
			serr := shutdown(log, p, started)
			if stopping {
				return serr // asked to stop while still starting: not a failure
			}
			return fmt.Errorf("start consumer %s: %w", c.Name(), err)
		}
		started = append(started, c)
	}
	for _, job := range p.Background {
		go func() { errc <- job(ctx) }()
	}
	var runErr error
	select {
	case <-ctx.Done():
		log.Info("shutting down")
	case err := <-errc:
		if err != nil && !errors.Is(err, context.Canceled) {
			runErr = err
			log.Error("service part failed, shutting down", zap.Error(err))
		}
	}
	cancel()
	if err := shutdown(log, p, started); err != nil && runErr == nil {
		runErr = err
	}
	return runErr
}

func shutdown(log *zap.Logger, p Parts, consumers []Consumer) error {
	ctx, cancel := context.WithTimeout(context.Background(), p.ShutdownTimeout)
	defer cancel()
	var errs []error
	if err := p.HTTP.Shutdown(ctx); err != nil {
		errs = append(errs, err)
	}
	for _, c := range consumers {
		if err := c.Drain(ctx); err != nil {
			errs = append(errs, err)
		}
	}
	if p.Conn != nil && !p.Conn.IsClosed() {
		if err := p.Conn.Drain(); err != nil {
			errs = append(errs, fmt.Errorf("nats drain: %w", err))
		}
		for !p.Conn.IsClosed() && ctx.Err() == nil {
			time.Sleep(10 * time.Millisecond)
		}
	}
	err := errors.Join(errs...)
	if err != nil {
		log.Error("shutdown incomplete", zap.Error(err))
	} else {
		log.Info("shutdown complete")
	}
	return err
}
