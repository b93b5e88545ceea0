// Package kittest is the component-test harness of every service built on
// kit: a real embedded nats-server (never a mock of NATS), the service
// built with a configuration pointing at it, run in-process, waited for
// until /ready answers, and stopped and joined when the test ends.
//
//	b := kittest.StartBroker(t)
//	cfg := config.Config{Base: b.Base()}
//	in := kittest.Start(t, func(ctx context.Context) (*service.Service, error) {
//		return service.New(ctx, cfg, log)
//	})
//	status, _, body := in.Get("/orders/o-1")
//
// Every request of Instance.Client, the readiness polls included, goes
// through one transport that WithTransport replaces: the place to check
// each exchange (against the service's OpenAPI contract, say).
package kittest

import (
	"context"
	"fmt"
	"io"
	"maps"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/eventshop/shared/platform/config"
	"github.com/eventshop/shared/platform/natstest"
)

// StopTimeout is how long Stop waits for the service to return from Run.
const StopTimeout = 15 * time.Second

// Broker is the embedded nats-server of a test and a JetStream client of
// it that may do anything (the tests play the other services with it).
type Broker struct {
	*natstest.Server
	JS jetstream.JetStream
}

// StartBroker starts an embedded nats-server with JetStream for t; it is
// stopped when the test ends, after everything started later.
func StartBroker(t testing.TB) *Broker {
	t.Helper()
	srv := natstest.Start(t)
	_, js := natstest.Connect(t, srv)
	return &Broker{Server: srv, JS: js}
}

// Base returns the shared settings of a service under test: NATS at b, a
// free port on the loopback, five seconds to shut down. The service's
// SetDefaults fills in the rest.
func (b *Broker) Base() config.Base {
	return config.Base{NATSURL: b.ClientURL(), HTTPAddr: "127.0.0.1:0", ShutdownTimeout: 5 * time.Second}
}

// Env is Base as environment variables, with extra's on top, for a
// service test that reads its configuration as the binary does
// (config.Load).
func (b *Broker) Env(extra ...map[string]string) func(key string) (string, bool) {
	env := map[string]string{"NATS_URL": b.ClientURL(), "HTTP_ADDR": "127.0.0.1:0", "SHUTDOWN_TIMEOUT": "5s"}
	for _, e := range extra {
		maps.Copy(env, e)
	}
	return func(key string) (string, bool) {
		v, ok := env[key]
		return v, ok
	}
}

// Config returns a service's cfg changed by tune, its defaults filled in
// (config.Settings), and fails t if it does not validate.
func Config[C any, P config.Settings[C]](t testing.TB, cfg C, tune ...func(*C)) C {
	t.Helper()
	for _, f := range tune {
		f(&cfg)
	}
	P(&cfg).SetDefaults()
	if err := P(&cfg).Validate(); err != nil {
		t.Fatal(err)
	}
	return cfg
}

// Service is what Start runs: a kit.Service, or a service embedding one.
type Service interface {
	Run(ctx context.Context) error
	Addr() string
}

// Option configures Start.
type Option func(*options)

type options struct {
	transport http.RoundTripper
	front     func(addr string) string
}

// WithTransport sends every request of the instance's Client through rt
// (nil: http.DefaultTransport).
func WithTransport(rt http.RoundTripper) Option {
	return func(o *options) { o.transport = rt }
}

// WithFront puts something in front of the service: front gets the
// service's address and returns the base URL the test talks to (URL), for
// example a proxy that validates every exchange against the service's
// OpenAPI document (apitest.Proxy). The readiness polls go through it too.
func WithFront(front func(addr string) string) Option {
	return func(o *options) { o.front = front }
}

// Instance is one service running in-process.
type Instance[S Service] struct {
	// Service is what build returned.
	Service S
	// URL is the service's base URL, "http://<addr>".
	URL string
	// Client sends the test's requests to the service.
	Client *http.Client

	t      testing.TB
	cancel context.CancelFunc
	done   chan error
	once   sync.Once
	// mayFail: the test broke what a clean shutdown needs.
	mayFail bool
}

// Start builds the service with build, given the context that ends when
// the instance stops (New waits for NATS as long as it allows), runs it,
// and waits until GET /ready answers 200. The instance is stopped when the
// test ends, unless the test stopped it before.
func Start[S Service](t testing.TB, build func(ctx context.Context) (S, error), opts ...Option) *Instance[S] {
	t.Helper()
	var o options
	for _, opt := range opts {
		opt(&o)
	}
	if o.transport == nil {
		o.transport = http.DefaultTransport
	}
	ctx, cancel := context.WithCancel(context.Background())
	svc, err := build(ctx)
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	url := "http://" + svc.Addr()
	if o.front != nil {
		url = o.front(svc.Addr())
	}
	in := &Instance[S]{
		Service: svc, URL: url, Client: &http.Client{Transport: o.transport},
		t: t, cancel: cancel, done: make(chan error, 1),
	}
	go func() { in.done <- svc.Run(ctx) }()
	t.Cleanup(in.Stop)
	natstest.EventuallyNil(t, "service ready", func() error {
		if status, _, body := in.Get("/ready"); status != http.StatusOK {
			return fmt.Errorf("/ready = %d %s", status, body)
		}
		return nil
	})
	return in
}

// ShutdownMayFail says that the test leaves the service unable to shut
// down cleanly (it stopped NATS for good): Run's error is then logged, not
// a failure.
func (in *Instance[S]) ShutdownMayFail() { in.mayFail = true }

// Stop ends the service's run and waits for Run to return, failing the
// test if it returns an error (see ShutdownMayFail) or takes longer than
// StopTimeout. A second Stop does nothing.
func (in *Instance[S]) Stop() {
	in.once.Do(func() {
		in.cancel()
		select {
		case err := <-in.done:
			switch {
			case err != nil && in.mayFail:
				in.t.Logf("service Run (shutdown may fail): %v", err)
			case err != nil:
				in.t.Errorf("service Run: %v", err)
			}
		case <-time.After(StopTimeout):
			in.t.Errorf("service did not stop in %s", StopTimeout)
		}
	})
}

// Do sends req with Client and returns the status, headers and body; a
// request that gets no response fails the test.
func (in *Instance[S]) Do(req *http.Request) (int, http.Header, []byte) {
	in.t.Helper()
	resp, err := in.Client.Do(req)
	if err != nil {
		in.t.Fatalf("%s %s: %v", req.Method, req.URL, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		in.t.Fatalf("%s %s: read body: %v", req.Method, req.URL, err)
	}
	return resp.StatusCode, resp.Header, body
}

// Request sends method path (relative to URL) with body (nil: none; sent
// as application/json otherwise) and the headers given as "name", "value"
// pairs, and returns the status, headers and body.
func (in *Instance[S]) Request(method, path string, body io.Reader, header ...string) (int, http.Header, []byte) {
	in.t.Helper()
	req, err := http.NewRequest(method, in.URL+path, body)
	if err != nil {
		in.t.Fatal(err)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	return in.Do(req)
}

// Bearer is the header pair "Authorization: Bearer <token>" for Request
// and Get; none for an empty token.
func Bearer(token string) []string {
	if token == "" {
		return nil
	}
	return []string{"Authorization", "Bearer " + token}
}

// Get is Request with GET and no body.
func (in *Instance[S]) Get(path string, header ...string) (int, http.Header, []byte) {
	in.t.Helper()
	return in.Request(http.MethodGet, path, nil, header...)
}
