// Package lifecycle runs a service's parts and stops them in the right order
// on shutdown: stop taking HTTP requests, drain consumers so in-flight
// messages finish and are acknowledged, join every goroutine the service
// started, then drain the NATS connection.
package lifecycle

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go"
	"go.uber.org/zap"
	"golang.org/x/sync/errgroup"
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
	// Background jobs run until ctx ends (optional). A job that returns an
	// error other than ctx's shuts the service down; every job is joined
	// before the connection is drained.
	Background []func(ctx context.Context) error
	// ShutdownTimeout bounds the whole shutdown (default 20s).
	ShutdownTimeout time.Duration
}

// Run starts the parts and blocks until ctx ends or a part fails, then shuts
// everything down within ShutdownTimeout. Every goroutine it starts (the
// HTTP server's, the background jobs) has returned when Run returns, unless
// the shutdown timed out, which Run reports.
func Run(ctx context.Context, log *zap.Logger, p Parts) error {
	if p.ShutdownTimeout == 0 {
		p.ShutdownTimeout = 20 * time.Second
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	// The group's context ends with ctx or with the first part that fails.
	g, gctx := errgroup.WithContext(ctx)
	goPart := func(name string, run func() error) {
		g.Go(func() error {
			err := run()
			if err == nil || errors.Is(err, context.Canceled) {
				return nil
			}
			log.Error("service part failed, shutting down", zap.String("part", name), zap.Error(err))
			return fmt.Errorf("%s: %w", name, err)
		})
	}
	goPart("http", p.HTTP.Serve)
	started := make([]Consumer, 0, len(p.Consumers))
	for _, c := range p.Consumers {
		if err := c.Start(gctx); err != nil {
			stopping := gctx.Err() != nil
			cancel()
			serr := shutdown(log, p, started, g)
			if stopping {
				return serr // asked to stop (or a part failed) while still starting
			}
			return errors.Join(fmt.Errorf("start consumer %s: %w", c.Name(), err), serr)
		}
		started = append(started, c)
	}
	for i, job := range p.Background {
		goPart(fmt.Sprintf("background job %d", i), func() error { return job(gctx) })
	}
	<-gctx.Done()
	if ctx.Err() != nil {
		log.Info("shutting down")
	}
	cancel()
	return shutdown(log, p, started, g)
}

// shutdown stops the server, drains the consumers, joins the group (whose
// context is already cancelled) and drains the connection, all within the
// shutdown timeout. It returns the failure of the part that stopped the
// service, if one did, and what went wrong shutting down.
func shutdown(log *zap.Logger, p Parts, consumers []Consumer, g *errgroup.Group) error {
	ctx, cancel := context.WithTimeout(context.Background(), p.ShutdownTimeout)
	defer cancel()
	var failed error
	var errs []error
	if err := p.HTTP.Shutdown(ctx); err != nil {
		errs = append(errs, err)
	}
	for _, c := range consumers {
		if err := c.Drain(ctx); err != nil {
			errs = append(errs, err)
		}
	}
	// The jobs may use the connection: join them before draining it.
	joined := make(chan error, 1)
	go func() { joined <- g.Wait() }()
	select {
	case failed = <-joined:
	case <-ctx.Done():
		select { // the drains may have used the time up: the jobs still had theirs
		case failed = <-joined:
		default:
			errs = append(errs, fmt.Errorf("join background jobs: %w", ctx.Err()))
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
	return errors.Join(failed, err)
}
