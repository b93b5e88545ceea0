package lifecycle_test

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/zap"

	"github.com/eventshop/shared/platform/lifecycle"
)

// server is an HTTP part whose Serve blocks until Shutdown, or fails with
// err when fail is closed.
type server struct {
	stop chan struct{}
	once sync.Once
	fail chan struct{}
	err  error
}

func newServer() *server { return &server{stop: make(chan struct{}), fail: make(chan struct{})} }

func (s *server) Serve() error {
	select {
	case <-s.stop:
		return nil
	case <-s.fail:
		return s.err
	}
}

func (s *server) Shutdown(context.Context) error {
	s.once.Do(func() { close(s.stop) })
	return nil
}

// part is a consumer part that records its order of drain in log.
type part struct {
	name string
	log  *[]string
	mu   *sync.Mutex
}

func (p part) Start(context.Context) error { return nil }
func (p part) Name() string                { return p.name }
func (p part) Drain(context.Context) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	*p.log = append(*p.log, "drain "+p.name)
	return nil
}

// TestRunJoinsEveryBackgroundJob: when ctx ends, Run returns only after
// every background job has returned, and after the parts were drained;
// a job that ignores ctx for a while holds Run up until it returns.
func TestRunJoinsEveryBackgroundJob(t *testing.T) {
	t.Parallel()
	var (
		mu    sync.Mutex
		order []string
	)
	record := func(s string) {
		mu.Lock()
		defer mu.Unlock()
		order = append(order, s)
	}
	release := make(chan struct{})
	var running atomic.Int32
	slow := func(ctx context.Context) error {
		running.Add(1)
		defer running.Add(-1)
		<-ctx.Done()
		<-release // still working after its context ended
		record("slow job returned")
		return nil
	}
	quick := func(ctx context.Context) error {
		running.Add(1)
		defer running.Add(-1)
		<-ctx.Done()
		return ctx.Err()
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- lifecycle.Run(ctx, zap.NewNop(), lifecycle.Parts{
			HTTP:            newServer(),
			Consumers:       []lifecycle.Consumer{part{"a", &order, &mu}, part{"b", &order, &mu}},
			Background:      []func(context.Context) error{slow, quick},
			ShutdownTimeout: 10 * time.Second,
		})
	}()
	for running.Load() != 2 {
		time.Sleep(time.Millisecond)
	}
	cancel()
	select {
	case err := <-done:
		t.Fatalf("Run returned (%v) while a background job was still running", err)
	case <-time.After(50 * time.Millisecond):
	}
	close(release)
	if err := <-done; err != nil {
		t.Fatalf("Run = %v, want nil", err)
	}
	if n := running.Load(); n != 0 {
		t.Fatalf("%d background jobs still running after Run returned", n)
	}
	want := []string{"drain a", "drain b", "slow job returned"}
	mu.Lock()
	defer mu.Unlock()
	if len(order) != len(want) {
		t.Fatalf("order = %v, want %v", order, want)
	}
	for i := range want {
		if order[i] != want[i] {
			t.Fatalf("order = %v, want %v", order, want)
		}
	}
}

// TestRunStopsWhenAPartFails: a background job or the server failing
// shuts the service down, and Run returns that failure.
func TestRunStopsWhenAPartFails(t *testing.T) {
	t.Parallel()
	boom := errors.New("boom")
	tests := []struct {
		name string
		job  func(ctx context.Context) error
		srv  func(*server)
	}{
		{name: "job", job: func(context.Context) error { return boom }},
		{name: "server", srv: func(s *server) { s.err = boom; close(s.fail) }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			srv := newServer()
			var other atomic.Bool
			jobs := []func(context.Context) error{func(ctx context.Context) error {
				<-ctx.Done()
				other.Store(true)
				return nil
			}}
			if tt.job != nil {
				jobs = append(jobs, tt.job)
			}
			if tt.srv != nil {
				tt.srv(srv)
			}
			err := lifecycle.Run(context.Background(), zap.NewNop(), lifecycle.Parts{
				HTTP: srv, Background: jobs, ShutdownTimeout: 10 * time.Second,
			})
			if !errors.Is(err, boom) {
				t.Fatalf("Run = %v, want %v", err, boom)
			}
			if !other.Load() {
				t.Fatal("Run returned before the other job had stopped")
			}
		})
	}
}
