// Package httpserver builds a service's Gin HTTP server: health, readiness
// and metrics endpoints, panic recovery, access logs and request metrics,
// and the one middleware that turns handler errors into RFC 9457 problem
// responses.
package httpserver

import (
	"context"
	"crypto/subtle"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/prometheus/client_golang/prometheus"
	"go.opentelemetry.io/contrib/instrumentation/github.com/gin-gonic/gin/otelgin"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/propagation"
	oteltrace "go.opentelemetry.io/otel/trace"
	"go.uber.org/zap"

	"github.com/eventshop/shared/platform/metrics"
	"github.com/eventshop/shared/platform/problem"
	"github.com/eventshop/shared/platform/tracing"
)

// ErrorMapper turns a handler error into a problem. It is the one place a
// service decides how its errors look over HTTP.
type ErrorMapper func(error) problem.Problem

// ReadyCheck reports whether one dependency is usable; nil means ready.
type ReadyCheck func(ctx context.Context) error

// Config configures a Server.
type Config struct {
	Addr    string // listen address, e.g. ":8080"
	Service string // service name, for logs and metrics
	// ProfileToken, when set, mounts Go's profiler (net/http/pprof) under
	// /debug/pprof/ behind this bearer token (the admin token, PPROF=true).
	ProfileToken string
	// MaxConns bounds the open connections (MAX_CONNS). At the bound a new
	// connection takes the place of the one idle the longest (or silent
	// since it connected); if every connection is busy with a request, a
	// few more are accepted to answer /health and /ready only; past those
	// the next connection waits in the kernel's accept queue. 0 means no
	// bound.
	MaxConns int
}

// Server is a service's HTTP server.
type Server struct {
	Engine *gin.Engine
	srv    *http.Server
	log    *zap.Logger
	checks map[string]ReadyCheck
	info   map[string]func() string
	ln     net.Listener
	// limit bounds the connections (Config.MaxConns); nil: no bound.
	limit *connLimit
}

// Limits on what one request may make the server read or hold.
const (
	// maxHeaderBytes bounds the request line and headers together (Go's
	// default is 1 MiB): a 200 KB method name or header is refused with 431
	// before any handler, log line or metric sees it (net/http allows 4 KiB
	// over this). 16 KiB is twice the 8 KiB per header line that common
	// proxies allow: room for bearer tokens and trace headers.
	maxHeaderBytes = 16 << 10
	// readHeaderTimeout closes a connection that has not sent a whole
	// request line and headers in this time (a slowloris client).
	readHeaderTimeout = 5 * time.Second
)

// New returns a server with /health, /ready and /metrics mounted and the
// standard middleware installed. Routes added to Engine after New get the
// same treatment: handlers report failures with c.Error(err) and return.
func New(cfg Config, log *zap.Logger, reg *prometheus.Registry, mapErr ErrorMapper) (*Server, error) {
	if cfg.Addr == "" || cfg.Service == "" || log == nil || reg == nil || mapErr == nil {
		return nil, errors.New("httpserver: addr, service, logger, registry and error mapper are required")
	}
	gin.SetMode(gin.ReleaseMode)
	e := gin.New()
	e.HandleMethodNotAllowed = true
	e.ContextWithFallback = true
	s := &Server{Engine: e, log: log, checks: map[string]ReadyCheck{}, info: map[string]func() string{}}
	mreg := metrics.Registerer(reg, cfg.Service)
	rm := newRequestMetrics(mreg)
	// The server span is outermost: its context is the request's, so a
	// handler's publishes and log lines carry its trace id. Probes and
	// scrapes are not traced (a root trace per scrape says nothing).
	e.Use(traceContext(cfg.Service), s.recovery(), s.accessLog(), rm.middleware(), errorResponder(mapErr, log))
	if cfg.MaxConns > 0 {
		s.limit = newConnLimit(cfg.MaxConns, mreg)
		e.Use(probeGate(cfg.MaxConns))
	}
	e.NoRoute(func(c *gin.Context) {
		Write(c, problem.New(http.StatusNotFound, "not-found", "no route for "+c.Request.Method+" "+c.Request.URL.Path))
	})
	e.NoMethod(func(c *gin.Context) {
		Write(c, problem.New(http.StatusMethodNotAllowed, "method-not-allowed", c.Request.Method+" is not allowed on "+c.Request.URL.Path))
	})
	e.GET("/health", func(c *gin.Context) { c.JSON(http.StatusOK, gin.H{"status": "ok"}) })
	e.GET("/ready", s.ready)
	e.GET("/metrics", gin.WrapH(metrics.Handler(reg)))
	if cfg.ProfileToken != "" {
		mountProfiler(e, cfg.ProfileToken)
	}
	s.srv = &http.Server{
		Addr:              cfg.Addr,
		Handler:           e,
		ReadHeaderTimeout: readHeaderTimeout,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      30 * time.Second,
		IdleTimeout:       120 * time.Second, // shorter near the connection bound: see connLimit
		MaxHeaderBytes:    maxHeaderBytes,
	}
	if s.limit != nil {
		s.srv.ConnState = s.limit.connState
		s.srv.ConnContext = connContext
	}
	return s, nil
}

// AddReadyCheck adds a named readiness check to /ready.
func (s *Server) AddReadyCheck(name string, check ReadyCheck) { s.checks[name] = check }

// AddReadyInfo adds a named detail to /ready that informs without deciding
// readiness (for example a circuit breaker's state: open is not unready).
func (s *Server) AddReadyInfo(name string, info func() string) { s.info[name] = info }

func (s *Server) ready(c *gin.Context) {
	ctx, cancel := context.WithTimeout(c.Request.Context(), 2*time.Second)
	defer cancel()
	detail := map[string]string{}
	ok := true
	for name, check := range s.checks {
		if err := check(ctx); err != nil {
			ok = false
			detail[name] = err.Error()
			continue
		}
		detail[name] = "ok"
	}
	status := http.StatusOK
	if !ok {
		status = http.StatusServiceUnavailable
	}
	body := gin.H{"ready": ok, "checks": detail}
	if len(s.info) > 0 {
		info := map[string]string{}
		for name, f := range s.info {
			info[name] = f()
		}
		body["info"] = info
	}
	c.JSON(status, body)
}

// Listen binds the listen address now, so a caller knows the port is taken
// before it starts consuming.
func (s *Server) Listen() error {
	ln, err := net.Listen("tcp", s.srv.Addr)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", s.srv.Addr, err)
	}
	if s.limit != nil {
		ln = s.limit.wrap(ln)
	}
	s.ln = ln
	return nil
}

// Addr returns the bound address (after Listen).
func (s *Server) Addr() string {
	if s.ln == nil {
		return s.srv.Addr
	}
	return s.ln.Addr().String()
}

// Serve serves until Shutdown; it calls Listen first if needed.
func (s *Server) Serve() error {
	if s.ln == nil {
		if err := s.Listen(); err != nil {
			return err
		}
	}
	if err := s.srv.Serve(s.ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("http serve: %w", err)
	}
	return nil
}

// Shutdown stops accepting requests and waits for in-flight ones.
func (s *Server) Shutdown(ctx context.Context) error {
	s.srv.SetKeepAlivesEnabled(false)
	if err := s.srv.Shutdown(ctx); err != nil {
		return fmt.Errorf("http shutdown: %w", err)
	}
	return nil
}

// Write writes p as an application/problem+json response and aborts.
func Write(c *gin.Context, p problem.Problem) {
	if p.Instance == "" {
		p.Instance = c.Request.URL.Path
	}
	c.Header("Content-Type", problem.ContentType)
	c.AbortWithStatusJSON(p.Status, p)
	c.Header("Content-Type", problem.ContentType)
}

// errorResponder is the one place handler errors become responses.
func errorResponder(mapErr ErrorMapper, log *zap.Logger) gin.HandlerFunc {
	return func(c *gin.Context) {
		c.Next()
		if len(c.Errors) == 0 || c.Writer.Written() {
			return
		}
		err := c.Errors.Last().Err
		p := mapErr(err)
		if p.Status >= 500 {
			log.Error("request failed", zap.String("path", c.Request.URL.Path), zap.Error(err))
		}
		Write(c, p)
	}
}

func (s *Server) recovery() gin.HandlerFunc {
	return func(c *gin.Context) {
		defer func() {
			if p := recover(); p != nil {
				s.log.Error("handler panic", zap.Any("panic", p), zap.String("path", c.Request.URL.Path))
				Write(c, problem.Internal())
			}
		}()
		c.Next()
	}
}

// traceContext gives every traced request a span: otelgin's server span
// when spans are exported, otherwise only the ids (the caller's trace, or
// a new one), which is all the logs, the 202's traceparent and the events
// need, without otelgin's attributes and metrics on every request.
func traceContext(service string) gin.HandlerFunc {
	full := otelgin.Middleware(service, otelgin.WithFilter(traced), otelgin.WithPropagators(tracing.Propagator))
	tracer := otel.Tracer(tracerName)
	return func(c *gin.Context) {
		if tracing.Recording() {
			full(c)
			return
		}
		if !traced(c.Request) {
			c.Next()
			return
		}
		ctx := tracing.Propagator.Extract(c.Request.Context(), propagation.HeaderCarrier(c.Request.Header))
		ctx, span := tracer.Start(ctx, c.FullPath(), oteltrace.WithSpanKind(oteltrace.SpanKindServer))
		c.Request = c.Request.WithContext(ctx)
		c.Next()
		span.End()
	}
}

// tracerName is the instrumentation scope of the id-only server spans.
const tracerName = "github.com/eventshop/shared/platform/httpserver"

// traced says whether a request gets a server span: not the probes, the
// scrapes nor the profiler.
func traced(r *http.Request) bool {
	switch p := r.URL.Path; {
	case p == "/health", p == "/ready", p == "/metrics", strings.HasPrefix(p, "/debug/pprof"):
		return false
	}
	return true
}

// accessLog writes one debug line per request, with its order and trace
// ids. gin-contrib/zap (v1.1.5) was weighed and not taken: it logs every
// request that carries a c.Error at error level, and every 4xx here does
// (handlers report failures with c.Error), so a hostile client could flood
// the error log; and its recovery dumps the request's headers, the admin
// bearer token among them, into the log.
func (s *Server) accessLog() gin.HandlerFunc {
	return func(c *gin.Context) {
		start := time.Now()
		c.Next()
		path := c.Request.URL.Path
		if path == "/health" || path == "/ready" || path == "/metrics" {
			return
		}
		tid := c.GetString("trace_id")
		if tid == "" {
			tid = tracing.TraceID(c.Request.Context())
		}
		s.log.Debug("http request",
			zap.String("method", c.Request.Method), zap.String("path", path),
			zap.Int("status", c.Writer.Status()), zap.Duration("took", time.Since(start)),
			zap.String("order_id", c.GetString("order_id")), zap.String("trace_id", tid))
	}
}

// BearerAuth rejects requests without "Authorization: Bearer <token>".
func BearerAuth(token string) gin.HandlerFunc {
	return func(c *gin.Context) {
		got, ok := strings.CutPrefix(c.GetHeader("Authorization"), "Bearer ")
		if !ok || token == "" || subtle.ConstantTimeCompare([]byte(got), []byte(token)) != 1 {
			c.Header("WWW-Authenticate", `Bearer realm="eventshop-admin"`)
			Write(c, problem.New(http.StatusUnauthorized, "unauthorized", "admin endpoint: send Authorization: Bearer <ADMIN_TOKEN>"))
			return
		}
		c.Next()
	}
}
