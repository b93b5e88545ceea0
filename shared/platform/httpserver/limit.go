package httpserver

import (
	"container/list"
	"context"
	"fmt"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"

	"github.com/eventshop/shared/platform/problem"
)

// InFlightLimit sheds load: at most n requests through it at once; one more
// is answered at once with 503 problem+json and Retry-After, instead of
// queueing until every waiting request has grown the heap and outlived its
// client. n <= 0 means no limit.
func InFlightLimit(n int) gin.HandlerFunc {
	if n <= 0 {
		return func(c *gin.Context) { c.Next() }
	}
	slots := make(chan struct{}, n)
	return func(c *gin.Context) {
		select {
		case slots <- struct{}{}:
		default:
			c.Header("Retry-After", "1")
			Write(c, problem.New(http.StatusServiceUnavailable, "overloaded",
				fmt.Sprintf("%d requests are already in progress; retry shortly with the same Idempotency-Key", n)))
			c.Abort()
			return
		}
		defer func() { <-slots }()
		c.Next()
	}
}

// How the connection bound makes room. A connection costs a goroutine and
// its buffers whether it serves a request or waits for the next one, so
// MaxConns bounds them all; but a slot must not be held by a connection
// that does nothing: 1,100 clients that each sent one request and then
// kept their connection open took every slot for the 120 s idle timeout,
// and the service answered nobody, its probes included.
const (
	// pressureIdle is the idle timeout once the connections reach
	// pressureShare of the bound (the server's own IdleTimeout is 120 s).
	pressureIdle  = 5 * time.Second
	pressureShare = 0.75
	// silentGrace is how long a new connection may stay silent (no request
	// read yet) before, at the bound, it gives its slot to a newer one.
	// The server's ReadHeaderTimeout closes it anyway after 5 s.
	silentGrace = time.Second
)

// probeHeadroom is how many connections past the bound are accepted, when
// every slot is busy with a request, to answer /health and /ready: enough
// for the kubelet's and a load balancer's probes, few enough to cost
// nothing.
func probeHeadroom(n int) int { return max(4, n/64) }

// connLimit is a listener that keeps at most n connections (busy, idle or
// silent) and makes room for a new one, in this order: it closes the
// connection idle the longest (between keep-alive requests), then the one
// that has stayed silent the longest since it connected (past
// silentGrace); if every slot is busy it accepts the new connection
// anyway, up to probeHeadroom more, to answer /health and /ready only
// (probeGate); past that, Accept waits until a connection closes or
// becomes idle, and the next connections queue in the kernel's accept
// queue, costing the process nothing.
type connLimit struct {
	net.Listener
	n, headroom int
	now         func() time.Time
	done        chan struct{}
	closeOnce   sync.Once

	mu      sync.Mutex
	regular int           // connections in the n slots
	probes  int           // probe-only connections, in the headroom
	idle    list.List     // regular *trackedConn idle between requests, longest idle first
	silent  list.List     // regular *trackedConn with no request read yet, oldest first
	changed chan struct{} // closed when a slot may have become free

	shed      *prometheus.CounterVec
	probeOnly prometheus.Counter
}

// newConnLimit returns a bound of n connections whose metrics are
// registered with reg.
func newConnLimit(n int, reg prometheus.Registerer) *connLimit {
	f := promauto.With(reg)
	l := &connLimit{
		n: n, headroom: probeHeadroom(n), now: time.Now, done: make(chan struct{}), changed: make(chan struct{}),
		shed: f.NewCounterVec(prometheus.CounterOpts{
			Name: "eventshop_http_connections_shed_total",
			Help: "Connections closed by the server to make room under its connection bound (MAX_CONNS), by reason: idle (at the bound), idle_pressure (idle past the short timeout near the bound), silent (no request since it connected).",
		}, []string{"reason"}),
		probeOnly: f.NewCounter(prometheus.CounterOpts{
			Name: "eventshop_http_connections_probe_only_total",
			Help: "Connections accepted past the bound while every slot was busy with a request; they answer only /health and /ready.",
		}),
	}
	f.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "eventshop_http_connections_open",
		Help: "Open HTTP connections, against the bound MAX_CONNS.",
	}, func() float64 { l.mu.Lock(); defer l.mu.Unlock(); return float64(l.regular + l.probes) })
	f.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "eventshop_http_connections_idle",
		Help: "Open HTTP connections idle between keep-alive requests.",
	}, func() float64 { l.mu.Lock(); defer l.mu.Unlock(); return float64(l.idle.Len()) })
	return l
}

// wrap returns ln limited by l.
func (l *connLimit) wrap(ln net.Listener) net.Listener {
	l.Listener = ln
	return l
}

// Accept takes the next connection from the kernel first and only then
// makes room for it, so idle connections are closed only for a client that
// is actually waiting.
func (l *connLimit) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	tc := &trackedConn{Conn: c, limit: l}
	if err := l.admit(tc); err != nil {
		c.Close()
		return nil, err
	}
	return tc, nil
}

// Close stops Accept, including one waiting for room.
func (l *connLimit) Close() error {
	l.closeOnce.Do(func() { close(l.done) })
	return l.Listener.Close()
}

// admit makes room for tc and counts it, waiting if there is none.
func (l *connLimit) admit(tc *trackedConn) error {
	for {
		l.mu.Lock()
		shed, wait := l.makeRoom(tc)
		changed := l.changed
		l.mu.Unlock()
		for _, c := range shed {
			c.Conn.Close() // the server's goroutine for it sees the close and ends
		}
		if wait == 0 {
			return nil
		}
		t := time.NewTimer(wait)
		select {
		case <-changed:
		case <-t.C:
		case <-l.done:
			t.Stop()
			return net.ErrClosed
		}
		t.Stop()
	}
}

// makeRoom, with l.mu held, admits tc and returns the connections to close
// for it, or returns how long to wait before trying again.
func (l *connLimit) makeRoom(tc *trackedConn) (shed []*trackedConn, wait time.Duration) {
	now := l.now()
	if float64(l.regular) >= pressureShare*float64(l.n) {
		for e := l.idle.Front(); e != nil && now.Sub(e.Value.(*trackedConn).since) >= pressureIdle; e = l.idle.Front() {
			shed = append(shed, l.dropLocked(e.Value.(*trackedConn), "idle_pressure"))
		}
	}
	for l.regular >= l.n {
		if e := l.idle.Front(); e != nil {
			shed = append(shed, l.dropLocked(e.Value.(*trackedConn), "idle"))
			continue
		}
		if e := l.silent.Front(); e != nil && now.Sub(e.Value.(*trackedConn).since) >= silentGrace {
			shed = append(shed, l.dropLocked(e.Value.(*trackedConn), "silent"))
			continue
		}
		break
	}
	switch {
	case l.regular < l.n:
		l.regular++
		tc.since = now
		tc.elem = l.silent.PushBack(tc)
		tc.list = &l.silent
		return shed, 0
	case l.probes < l.headroom:
		// Not listed: it is never closed to make room, and it closes
		// after one response or at the ReadHeaderTimeout.
		l.probes++
		tc.probeOnly = true
		l.probeOnly.Inc()
		return shed, 0
	default:
		wait = time.Hour // until a connection closes or becomes idle
		if e := l.silent.Front(); e != nil {
			wait = max(silentGrace-now.Sub(e.Value.(*trackedConn).since), time.Millisecond)
		}
		return shed, wait
	}
}

// dropLocked stops counting c, with l.mu held, and returns it.
func (l *connLimit) dropLocked(c *trackedConn, reason string) *trackedConn {
	l.releaseLocked(c)
	l.shed.WithLabelValues(reason).Inc()
	return c
}

// releaseLocked stops counting c (once) and wakes a waiting Accept.
func (l *connLimit) releaseLocked(c *trackedConn) {
	if c.released {
		return
	}
	c.released = true
	c.unlistLocked()
	if c.probeOnly {
		l.probes--
	} else {
		l.regular--
	}
	l.wakeLocked()
}

func (l *connLimit) wakeLocked() {
	close(l.changed)
	l.changed = make(chan struct{})
}

// connState is the http.Server's ConnState hook: it tells which
// connections are idle, and so may be closed to make room.
func (l *connLimit) connState(c net.Conn, state http.ConnState) {
	tc, ok := c.(*trackedConn)
	if !ok {
		return
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if tc.released {
		return
	}
	switch state {
	case http.StateActive, http.StateHijacked: // busy until it closes
		tc.unlistLocked()
	case http.StateIdle:
		tc.unlistLocked()
		if tc.probeOnly {
			return // it closes after its response
		}
		tc.since = l.now()
		tc.elem = l.idle.PushBack(tc)
		tc.list = &l.idle
		l.wakeLocked()
	case http.StateClosed:
		l.releaseLocked(tc)
	}
}

// trackedConn is a connection counted by a connLimit.
type trackedConn struct {
	net.Conn
	limit *connLimit
	// probeOnly: accepted past the bound; it answers /health and /ready.
	probeOnly bool
	// Guarded by limit.mu:
	released bool
	since    time.Time     // when it connected or last became idle
	list     *list.List    // limit.idle, limit.silent or nil (busy)
	elem     *list.Element // its element in list
}

func (c *trackedConn) unlistLocked() {
	if c.list != nil {
		c.list.Remove(c.elem)
		c.list, c.elem = nil, nil
	}
}

// Close closes the connection and frees its slot.
func (c *trackedConn) Close() error {
	err := c.Conn.Close()
	c.limit.mu.Lock()
	c.limit.releaseLocked(c)
	c.limit.mu.Unlock()
	return err
}

type connKey struct{}

// connContext is the http.Server's ConnContext hook: it lets probeGate
// see the connection a request came on.
func connContext(ctx context.Context, c net.Conn) context.Context {
	return context.WithValue(ctx, connKey{}, c)
}

// probeGate lets a connection accepted past the bound (every slot busy
// with a request) serve /health and /ready, so the orchestrator does not
// restart a service that is only busy, and answers anything else with 503
// problem+json and Retry-After. Such a connection closes after its one
// response, so it gives its place back at once.
func probeGate(maxConns int) gin.HandlerFunc {
	return func(c *gin.Context) {
		tc, ok := c.Request.Context().Value(connKey{}).(*trackedConn)
		if !ok || !tc.probeOnly {
			c.Next()
			return
		}
		c.Header("Connection", "close")
		if p := c.FullPath(); p == "/health" || p == "/ready" {
			c.Next()
			return
		}
		c.Header("Retry-After", "1")
		Write(c, problem.New(http.StatusServiceUnavailable, "overloaded",
			fmt.Sprintf("all %d connections this server keeps are busy with requests; retry shortly", maxConns)))
	}
}
