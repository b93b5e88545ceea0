package httpserver_test

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"

	"github.com/eventshop/shared/platform/httpserver"
	"github.com/eventshop/shared/platform/metrics"
	"github.com/eventshop/shared/platform/problem"
)

// startBounded serves a server bounded to maxConns connections, with
// /thing (404 problem) and /slow (blocks until release is closed) routes,
// and returns it with its registry and base URL.
func startBounded(t *testing.T, maxConns int, release <-chan struct{}, entered chan<- struct{}) (*httpserver.Server, *prometheus.Registry, string) {
	t.Helper()
	reg := metrics.NewRegistry("test")
	s, err := httpserver.New(httpserver.Config{Addr: "127.0.0.1:0", Service: "test", MaxConns: maxConns}, zap.NewNop(), reg,
		func(err error) problem.Problem { return problem.New(http.StatusNotFound, "missing", err.Error()) })
	if err != nil {
		t.Fatal(err)
	}
	s.Engine.GET("/thing", func(c *gin.Context) { _ = c.Error(errMissing) })
	s.Engine.GET("/slow", func(c *gin.Context) {
		entered <- struct{}{}
		<-release
		c.Status(http.StatusNoContent)
	})
	if err := s.Listen(); err != nil {
		t.Fatal(err)
	}
	served := make(chan error, 1)
	go func() { served <- s.Serve() }()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := s.Shutdown(ctx); err != nil {
			t.Errorf("shutdown: %v", err)
		}
		if err := <-served; err != nil {
			t.Errorf("serve: %v", err)
		}
	})
	return s, reg, "http://" + s.Addr()
}

// receive takes n values from ch, failing the test if they do not come
// (the server never got to the requests).
func receive[T any](t *testing.T, ch <-chan T, n int, what string) []T {
	t.Helper()
	var got []T
	for range n {
		select {
		case v := <-ch:
			got = append(got, v)
		case <-time.After(5 * time.Second):
			t.Fatalf("%s: %d of %d arrived", what, len(got), n)
		}
	}
	return got
}

// newClient is a client with its own connections; its timeout is the
// failure signal ("the service does not answer"), not a latency bound.
func newClient() *http.Client {
	return &http.Client{Timeout: 3 * time.Second, Transport: &http.Transport{}}
}

// get returns the status, a header and the body of GET url.
func get(t *testing.T, c *http.Client, url string) (int, http.Header, string) {
	t.Helper()
	resp, err := c.Get(url)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("GET %s: read body: %v", url, err)
	}
	return resp.StatusCode, resp.Header, string(body)
}

// counter sums the samples of the counter name with the given label value.
func counter(t *testing.T, reg *prometheus.Registry, name, label, value string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var sum float64
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			for _, lp := range m.GetLabel() {
				if lp.GetName() == label && lp.GetValue() == value {
					sum += m.GetCounter().GetValue()
				}
			}
		}
	}
	return sum
}

// TestIdleConnectionsMakeRoom: MAX_CONNS connections that each sent one
// request and then sat idle (keep-alive) must not take the service
// offline: a new client's /health and API requests are answered, the
// longest-idle connection giving its place.
func TestIdleConnectionsMakeRoom(t *testing.T) {
	t.Parallel()
	const maxConns = 8
	_, reg, url := startBounded(t, maxConns, nil, nil)
	for i := range maxConns {
		c, err := net.Dial("tcp", strings.TrimPrefix(url, "http://"))
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		if _, err := c.Write([]byte("GET /health HTTP/1.1\r\nHost: x\r\n\r\n")); err != nil {
			t.Fatal(err)
		}
		if err := c.SetReadDeadline(time.Now().Add(5 * time.Second)); err != nil {
			t.Fatal(err)
		}
		resp, err := http.ReadResponse(bufio.NewReader(c), nil)
		if err != nil {
			t.Fatalf("idle connection %d: %v", i+1, err)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("idle connection %d: GET /health = %d", i+1, resp.StatusCode)
		}
	} // maxConns keep-alive connections now sit idle, holding every slot
	client := newClient()
	if code, _, body := get(t, client, url+"/health"); code != http.StatusOK {
		t.Fatalf("GET /health with every slot held by an idle connection = %d %s, want 200", code, body)
	}
	if code, _, body := get(t, newClient(), url+"/thing"); code != http.StatusNotFound {
		t.Fatalf("API request with every slot held by an idle connection = %d %s, want the route's own 404 (not 503)", code, body)
	}
	if n := counter(t, reg, "eventshop_http_connections_shed_total", "reason", "idle"); n < 1 {
		t.Fatalf("idle connections shed = %v, want >= 1", n)
	}
}

// TestProbesAnswerWhileEverySlotIsBusy: with every slot held by a request
// in progress, /health and /ready still answer (so the orchestrator does
// not restart a busy service), other requests get 503 problem+json with
// Retry-After, and the busy requests finish.
func TestProbesAnswerWhileEverySlotIsBusy(t *testing.T) {
	t.Parallel()
	const maxConns = 8
	release := make(chan struct{})
	done := sync.OnceFunc(func() { close(release) })
	entered := make(chan struct{}, maxConns)
	_, reg, url := startBounded(t, maxConns, release, entered)
	t.Cleanup(done) // before the server's shutdown, which waits for them
	busy := &http.Client{Transport: &http.Transport{MaxConnsPerHost: maxConns}}
	results := make(chan int, maxConns)
	for range maxConns {
		go func() {
			resp, err := busy.Get(url + "/slow")
			if err != nil {
				results <- 0
				return
			}
			resp.Body.Close()
			results <- resp.StatusCode
		}()
	}
	receive(t, entered, maxConns, "slow requests in progress")
	for _, path := range []string{"/health", "/ready"} {
		if code, _, body := get(t, newClient(), url+path); code != http.StatusOK {
			t.Fatalf("GET %s with every slot busy = %d %s, want 200", path, code, body)
		}
	}
	code, h, body := get(t, newClient(), url+"/thing")
	if code != http.StatusServiceUnavailable || h.Get("Retry-After") == "" ||
		!strings.HasPrefix(h.Get("Content-Type"), problem.ContentType) || !strings.Contains(body, "urn:eventshop:problem:overloaded") {
		t.Fatalf("API request with every slot busy = %d, Retry-After %q, %s %s; want 503 overloaded problem with Retry-After",
			code, h.Get("Retry-After"), h.Get("Content-Type"), body)
	}
	if n := counter(t, reg, "eventshop_http_connections_probe_only_total", "service", "test"); n != 3 {
		t.Fatalf("probe-only connections = %v, want 3 (/health, /ready, the refused request)", n)
	}
	done()
	for _, code := range receive(t, results, maxConns, "slow requests finished") {
		if code != http.StatusNoContent {
			t.Fatalf("busy request = %d, want 204", code)
		}
	}
	if code, _, body := get(t, newClient(), url+"/thing"); code != http.StatusNotFound {
		t.Fatalf("API request once the busy ones finished = %d %s, want 404", code, body)
	}
}

// TestConnectionsPastTheHeadroomWait: with every slot and the probe
// headroom busy, the next connection is not served until one frees, and
// the server still shuts down.
func TestConnectionsPastTheHeadroomWait(t *testing.T) {
	t.Parallel()
	const maxConns, headroom = 2, 4 // headroom: probeHeadroom(2)
	release := make(chan struct{})
	done := sync.OnceFunc(func() { close(release) })
	entered := make(chan struct{}, maxConns+headroom)
	s, _, url := startBounded(t, maxConns, release, entered)
	t.Cleanup(done) // before the server's shutdown, which waits for them
	s.AddReadyCheck("slow", func(context.Context) error {
		entered <- struct{}{}
		<-release
		return nil
	})
	addr := strings.TrimPrefix(url, "http://")
	send := func(path string) net.Conn {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		if _, err := fmt.Fprintf(c, "GET %s HTTP/1.1\r\nHost: x\r\n\r\n", path); err != nil {
			t.Fatal(err)
		}
		return c
	}
	var held []net.Conn
	for range maxConns {
		held = append(held, send("/slow"))
	}
	receive(t, entered, maxConns, "slow requests in progress")
	for range headroom {
		held = append(held, send("/ready"))
	}
	receive(t, entered, headroom, "slow probes in progress")
	next := send("/health")
	if err := next.SetReadDeadline(time.Now().Add(300 * time.Millisecond)); err != nil {
		t.Fatal(err)
	}
	r := bufio.NewReader(next)
	if line, err := r.ReadString('\n'); err == nil {
		t.Fatalf("connection served past the bound and the headroom: %q", line)
	}
	done()
	for i, c := range held {
		if err := c.SetReadDeadline(time.Now().Add(5 * time.Second)); err != nil {
			t.Fatal(err)
		}
		line, err := bufio.NewReader(c).ReadString('\n')
		if err != nil || !(strings.HasPrefix(line, "HTTP/1.1 204") || strings.HasPrefix(line, "HTTP/1.1 200")) {
			t.Fatalf("held connection %d: %q, %v", i+1, line, err)
		}
	}
	if err := next.SetReadDeadline(time.Now().Add(5 * time.Second)); err != nil {
		t.Fatal(err)
	}
	if line, err := r.ReadString('\n'); err != nil || !strings.HasPrefix(line, "HTTP/1.1 200") {
		t.Fatalf("waiting connection once others freed: %q, %v", line, err)
	}
}
