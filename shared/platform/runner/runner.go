// Package runner runs durable JetStream pull consumers: bounded
// concurrency, explicit acks, a retry schedule applied with NakWithDelay,
// dead-lettering of poison messages, metrics, and a drain that finishes and
// acknowledges in-flight work.
package runner

import (
	"context"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	oteltrace "go.opentelemetry.io/otel/trace"
	"go.uber.org/zap"

	"github.com/eventshop/shared/platform/deadletter"
	"github.com/eventshop/shared/platform/natsconn"
	"github.com/eventshop/shared/platform/subjects"
	"github.com/eventshop/shared/platform/trace"
	"github.com/eventshop/shared/platform/tracing"
)

// Handler handles one message. It returns nil to acknowledge, an error
// marked Permanent to dead-letter, or any other error to retry.
type Handler func(ctx context.Context, msg jetstream.Msg) error

// Middleware wraps a Handler with a cross-cutting concern.
type Middleware func(Handler) Handler

// Option configures a Runner.
type Option func(*Runner) error

// WithMetrics records the runner's outcomes in m.
func WithMetrics(m *Metrics) Option {
	return func(r *Runner) error {
		if m == nil {
			return fmt.Errorf("metrics: %w", ErrInvalidConfig)
		}
		r.metrics = m
		return nil
	}
}

// WithMiddleware wraps the handler; the first middleware is the outermost.
func WithMiddleware(mw ...Middleware) Option {
	return func(r *Runner) error {
		r.middleware = append(r.middleware, mw...)
		return nil
	}
}

// WithClock sets the clock used for dead-letter timestamps.
func WithClock(now func() time.Time) Option {
	return func(r *Runner) error {
		if now == nil {
			return fmt.Errorf("clock: %w", ErrInvalidConfig)
		}
		r.now = now
		return nil
	}
}

// WithTracerProvider sets where the CONSUMER spans go (default:
// OpenTelemetry's global provider, which tracing.Setup installs).
func WithTracerProvider(tp oteltrace.TracerProvider) Option {
	return func(r *Runner) error {
		if tp == nil {
			return fmt.Errorf("tracer provider: %w", ErrInvalidConfig)
		}
		r.tracer, r.ownTracer = tp.Tracer(tracerName), true
		return nil
	}
}

// noSpan does nothing: the span of a delivery while tracing is off.
var noSpan = oteltrace.SpanFromContext(context.Background())

// tracerName is the instrumentation scope of the runner's spans.
const tracerName = "github.com/eventshop/shared/platform/runner"

// Runner runs one durable consumer.
type Runner struct {
	js         jetstream.JetStream
	cfg        Config
	handler    Handler
	log        *zap.Logger
	metrics    *Metrics
	middleware []Middleware
	now        func() time.Time
	tracer     oteltrace.Tracer
	// ownTracer: WithTracerProvider gave the tracer; otherwise it is the
	// global one, which records only once tracing.Setup exports spans.
	ownTracer bool

	mu      sync.Mutex
	cc      jetstream.ConsumeContext
	started atomic.Bool
	// work hands each message to one of Concurrency long-lived workers:
	// a goroutine per message would grow a fresh stack for every message
	// (a few percent of a service's CPU under load).
	work       chan jetstream.Msg
	workClosed bool // under mu
	workers    sync.WaitGroup
	base       context.Context
}

// New returns a runner for cfg that hands each message to h.
func New(js jetstream.JetStream, cfg Config, h Handler, log *zap.Logger, opts ...Option) (*Runner, error) {
	cfg.setDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if js == nil || h == nil || log == nil {
		return nil, fmt.Errorf("jetstream, handler and logger are required: %w", ErrInvalidConfig)
	}
	r := &Runner{js: js, cfg: cfg, log: log.With(zap.String("consumer", cfg.Durable)), now: time.Now,
		tracer: otel.Tracer(tracerName)}
	for _, opt := range opts {
		if err := opt(r); err != nil {
			return nil, err
		}
	}
	for i := len(r.middleware) - 1; i >= 0; i-- {
		h = r.middleware[i](h)
	}
	r.handler = h
	return r, nil
}

// Name returns the durable name.
func (r *Runner) Name() string { return r.cfg.Durable }

// Stream returns the name of the stream the runner consumes.
func (r *Runner) Stream() string { return r.cfg.Stream }

// ConsumerConfig returns the JetStream consumer configuration the runner
// creates.
func (r *Runner) ConsumerConfig() jetstream.ConsumerConfig {
	cc := jetstream.ConsumerConfig{
		Durable:       r.cfg.Durable,
		Description:   "eventshop consumer " + r.cfg.Durable,
		AckPolicy:     jetstream.AckExplicitPolicy,
		AckWait:       r.cfg.AckWait,
		MaxDeliver:    r.cfg.MaxDeliver,
		MaxAckPending: r.cfg.MaxAckPending,
		DeliverPolicy: jetstream.DeliverAllPolicy,
	}
	if len(r.cfg.FilterSubjects) == 1 {
		cc.FilterSubject = r.cfg.FilterSubjects[0]
	} else {
		cc.FilterSubjects = r.cfg.FilterSubjects
	}
	return cc
}

// Start waits for the stream to exist, creates or updates the durable
// consumer and the dead-letter stream, and starts consuming. Handlers run
// with contexts derived from ctx without its cancellation, so stopping is
// done by Drain, which lets in-flight work finish.
func (r *Runner) Start(ctx context.Context) error {
	// A cluster that is still electing its leaders answers JetStream API
	// requests late: a timeout is retried while ctx allows; a stream that
	// can drop letters is not.
	for wait := 50 * time.Millisecond; ; wait = min(2*wait, 2*time.Second) {
		err := deadletter.EnsureStream(ctx, r.js, r.cfg.DeadLetterStream, r.cfg.DeadLetterReplicas)
		if err == nil {
			break
		}
		if errors.Is(err, deadletter.ErrStreamOutdated) {
			// Letters are still written and kept: consume, and say so.
			r.log.Error("dead letters cannot be resolved", zap.Error(err))
			break
		}
		if !errors.Is(err, context.DeadlineExceeded) && !errors.Is(err, nats.ErrTimeout) && !errors.Is(err, jetstream.ErrJetStreamNotEnabled) || ctx.Err() != nil {
			return err
		}
		r.log.Warn("dead-letter stream not ready, retrying", zap.Error(err))
		select {
		case <-ctx.Done():
		case <-time.After(wait):
		}
	}
	stream, err := natsconn.WaitStream(ctx, r.js, r.cfg.Stream, natsconn.WithWaitLog(r.log))
	if err != nil {
		return err
	}
	cons, err := stream.CreateOrUpdateConsumer(ctx, r.ConsumerConfig())
	if err != nil {
		return fmt.Errorf("create consumer %s on %s: %w", r.cfg.Durable, r.cfg.Stream, err)
	}
	r.base = context.WithoutCancel(ctx)
	r.work = make(chan jetstream.Msg)
	for range r.cfg.Concurrency {
		r.workers.Add(1)
		go func() {
			defer r.workers.Done()
			for msg := range r.work {
				r.process(msg)
			}
		}()
	}
	cc, err := cons.Consume(r.dispatch,
		// Pull for every worker and as many again, so that a pull request
		// is refilled every Concurrency messages rather than every few.
		jetstream.PullMaxMessages(2*r.cfg.Concurrency),
		// Short pull requests: when the server holding one goes away (a
		// cluster node stopped, the consumer leader moved), the client
		// notices within a few seconds from missing heartbeats and pulls
		// again, instead of idling out the 30 s default.
		jetstream.PullExpiry(5*time.Second),
		jetstream.ConsumeErrHandler(func(_ jetstream.ConsumeContext, err error) {
			// A missed heartbeat, or the connection gone (nats.go reports
			// that with an unexported error, so its state is asked instead
			// of the error's text): consuming resumes by itself.
			if errors.Is(err, jetstream.ErrNoHeartbeat) || !r.js.Conn().IsConnected() {
				r.log.Warn("consume interrupted", zap.Error(err))
				return
			}
			r.log.Debug("consume status", zap.Error(err))
		}),
	)
	if err != nil {
		close(r.work)
		return fmt.Errorf("consume %s: %w", r.cfg.Durable, err)
	}
	r.mu.Lock()
	r.cc = cc
	r.mu.Unlock()
	r.started.Store(true)
	r.log.Info("consumer started", zap.String("stream", r.cfg.Stream), zap.Strings("filters", r.cfg.FilterSubjects),
		zap.Int("concurrency", r.cfg.Concurrency), zap.Int("max_ack_pending", r.cfg.MaxAckPending))
	return nil
}

// Ready reports whether the runner is consuming.
func (r *Runner) Ready() error {
	if !r.started.Load() {
		return fmt.Errorf("consumer %s not started", r.cfg.Durable)
	}
	r.mu.Lock()
	cc := r.cc
	r.mu.Unlock()
	select {
	case <-cc.Closed():
		return fmt.Errorf("consumer %s stopped", r.cfg.Durable)
	default:
		return nil
	}
}

// Drain stops pulling new messages, lets the buffered and in-flight ones be
// handled and acknowledged, and returns when they are, or when ctx ends.
func (r *Runner) Drain(ctx context.Context) error {
	r.mu.Lock()
	cc := r.cc
	r.mu.Unlock()
	if cc == nil {
		return nil
	}
	cc.Drain()
	select {
	case <-cc.Closed():
	case <-ctx.Done():
		return fmt.Errorf("drain %s: %w", r.cfg.Durable, ctx.Err())
	}
	// Closed: nothing calls dispatch any more, so the workers may stop
	// once they have handled what they hold.
	r.mu.Lock()
	if !r.workClosed {
		r.workClosed = true
		close(r.work)
	}
	r.mu.Unlock()
	done := make(chan struct{})
	go func() { r.workers.Wait(); close(done) }()
	select {
	case <-done:
		r.started.Store(false)
		return nil
	case <-ctx.Done():
		return fmt.Errorf("drain %s in-flight: %w", r.cfg.Durable, ctx.Err())
	}
}

// dispatch runs on the consume goroutine: it blocks while every worker is
// busy, which stops the pull loop from buffering more.
func (r *Runner) dispatch(msg jetstream.Msg) { r.work <- msg }

func (r *Runner) process(msg jetstream.Msg) {
	start := r.now()
	meta, err := msg.Metadata()
	if err != nil {
		r.log.Error("message without metadata", zap.String("subject", msg.Subject()), zap.Error(err))
		r.settle(msg.Term(), msg.Subject())
		return
	}
	ctx, span := r.startSpan(msg, meta)
	defer span.End()
	ctx, cancel := context.WithTimeout(ctx, r.cfg.AckWait)
	herr := r.safeHandle(ctx, msg)
	cancel()
	if herr != nil {
		span.RecordError(herr)
		span.SetStatus(codes.Error, herr.Error())
	}
	tid := trace.TraceID(msg.Headers().Get("traceparent"))
	if sc := span.SpanContext(); sc.IsValid() {
		tid = sc.TraceID().String()
	}
	fields := []zap.Field{
		zap.String("subject", msg.Subject()),
		zap.String("order_id", subjects.OrderID(msg.Subject())),
		zap.String("trace_id", tid),
		zap.Uint64("stream_seq", meta.Sequence.Stream),
		zap.Uint64("delivered", meta.NumDelivered),
	}
	outcome := r.decide(ctx, msg, meta, herr, fields)
	span.SetAttributes(attrOutcome.String(outcome))
	r.metrics.observe(r.cfg.Durable, outcome, meta.NumDelivered, time.Since(start))
}

// attrOutcome is how the message was settled (ack, retry, wait,
// dead_letter).
const attrOutcome = attribute.Key("eventshop.consumer.outcome")

// startSpan starts the CONSUMER span "process <subject template>" of one
// delivery: a child of the producer's span, whose context the message's
// traceparent header carries, and linked to it as well (the messaging
// conventions' way to tie a delivery to its send when the parent is
// another trace's, as after a replay). The span's context is the
// handler's: its publishes are children of this span.
func (r *Runner) startSpan(msg jetstream.Msg, meta *jetstream.MsgMetadata) (context.Context, oteltrace.Span) {
	if !r.ownTracer && !tracing.Recording() {
		// Tracing off: the span would be dropped, so neither parse the
		// producer's context nor start it. The ids still travel: handlers
		// derive their events' traceparent from the incoming one, and the
		// log lines take the trace id from the message's header.
		return r.base, noSpan
	}
	ctx := tracing.Propagator.Extract(r.base, tracing.HeaderCarrier(msg.Headers()))
	tmpl := subjects.Template(msg.Subject())
	opts := []oteltrace.SpanStartOption{oteltrace.WithSpanKind(oteltrace.SpanKindConsumer)}
	if producer := oteltrace.SpanContextFromContext(ctx); producer.IsValid() {
		opts = append(opts, oteltrace.WithLinks(oteltrace.Link{SpanContext: producer}))
	}
	ctx, span := r.tracer.Start(ctx, "process "+tmpl, opts...)
	if span.IsRecording() {
		span.SetAttributes(
			tracing.AttrMessagingSystem.String(tracing.MessagingSystemNATS),
			tracing.AttrOperationType.String(tracing.OperationProcess),
			tracing.AttrDestinationName.String(msg.Subject()),
			tracing.AttrDestinationTemplate.String(tmpl),
			tracing.AttrMessageID.String(msg.Headers().Get("Nats-Msg-Id")),
			tracing.AttrConsumerGroupName.String(r.cfg.Durable),
			attribute.Int64("messaging.nats.stream_sequence", int64(meta.Sequence.Stream)),
			attribute.Int64("messaging.nats.delivered", int64(meta.NumDelivered)),
		)
	}
	return ctx, span
}

// decide settles the message according to the handler's result and returns
// the outcome label.
func (r *Runner) decide(ctx context.Context, msg jetstream.Msg, meta *jetstream.MsgMetadata, herr error, fields []zap.Field) string {
	switch {
	case herr == nil:
		r.settle(msg.Ack(), msg.Subject())
		return OutcomeAck
	case IsPermanent(herr):
		return r.toDeadLetter(ctx, msg, meta, herr, fields)
	}
	waiting := errors.Is(herr, ErrWait)
	if !waiting && r.cfg.MaxDeliver > 0 && int(meta.NumDelivered) >= r.cfg.MaxDeliver {
		return r.toDeadLetter(ctx, msg, meta, fmt.Errorf("gave up after %d deliveries: %w", meta.NumDelivered, herr), fields)
	}
	delay := r.delay(meta.NumDelivered, herr)
	if waiting {
		r.log.Debug("waiting, redelivery scheduled", append(fields, zap.Duration("delay", delay), zap.Error(herr))...)
		r.settle(msg.NakWithDelay(delay), msg.Subject())
		return OutcomeWait
	}
	r.log.Warn("handler failed, retry scheduled", append(fields, zap.Duration("delay", delay), zap.Error(herr))...)
	r.settle(msg.NakWithDelay(delay), msg.Subject())
	return OutcomeRetry
}

// toDeadLetter writes the letter in its own time (the handler's ran out,
// perhaps), under the delivery's span, the one in ctx.
func (r *Runner) toDeadLetter(ctx context.Context, msg jetstream.Msg, meta *jetstream.MsgMetadata, reason error, fields []zap.Field) string {
	ctx, cancel := context.WithTimeout(oteltrace.ContextWithSpan(r.base, oteltrace.SpanFromContext(ctx)), 10*time.Second)
	defer cancel()
	created, err := r.deadLetter(ctx, msg, meta, reason)
	if err != nil {
		// Never drop it: try again later.
		r.log.Error("dead-letter publish failed, message kept", append(fields, zap.Error(err))...)
		r.settle(msg.NakWithDelay(r.delay(meta.NumDelivered, err)), msg.Subject())
		return OutcomeRetry
	}
	if created {
		r.metrics.DeadLettered(r.cfg.Durable)
		if why, ok := RefusalReason(reason); ok {
			r.log.Error("event refused and dead-lettered", append(fields, zap.String("reason", why), zap.Error(reason))...)
			r.metrics.Refused(r.cfg.Durable, why)
		} else {
			r.log.Error("message dead-lettered", append(fields, zap.Error(reason))...)
		}
	} else {
		// The server's max-deliveries advisory got there first (the
		// handler outlived AckWait on the last delivery), or an earlier
		// attempt wrote it before its Term was lost.
		r.log.Info("message was already dead-lettered", append(fields, zap.Error(reason))...)
	}
	// The letter is stored before the Term: the MSG_TERMINATED advisory
	// this causes finds it there and writes nothing.
	r.settle(msg.TermWithReason(truncate(reason.Error(), 256)), msg.Subject())
	return OutcomeDeadLetter
}

// deadLetter copies the message the runner gives up on into the
// dead-letter stream (see deadletter.Write).
func (r *Runner) deadLetter(ctx context.Context, msg jetstream.Msg, meta *jetstream.MsgMetadata, reason error) (bool, error) {
	return deadletter.Write(ctx, r.js, deadletter.Letter{
		Consumer:         r.cfg.Durable,
		OriginalStream:   meta.Stream,
		OriginalSequence: meta.Sequence.Stream,
		OriginalSubject:  msg.Subject(),
		Data:             msg.Data(),
		Header:           msg.Headers(),
		Deliveries:       meta.NumDelivered,
		Reason:           reason.Error(),
		Time:             r.now(),
	})
}

func (r *Runner) safeHandle(ctx context.Context, msg jetstream.Msg) (err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("handler panic: %v", p)
		}
	}()
	return r.handler(ctx, msg)
}

// delay returns the redelivery delay for the given delivery count: a
// RetryAfter hint if the error carries one, otherwise exponential backoff
// with full jitter.
func (r *Runner) delay(delivered uint64, err error) time.Duration {
	var ra *retryAfter
	if errors.As(err, &ra) && ra.after > 0 {
		return ra.after
	}
	return Delay(r.cfg.Retry, delivered)
}

// Delay returns the backoff delay before delivery attempt n+1 under b:
// a random duration in [d/2, d] where d = Initial x Multiplier^(n-1), capped
// at Max.
func Delay(b Backoff, n uint64) time.Duration {
	if n < 1 {
		n = 1
	}
	d := float64(b.Initial) * math.Pow(b.Multiplier, float64(n-1))
	if d > float64(b.Max) || math.IsInf(d, 0) {
		d = float64(b.Max)
	}
	half := d / 2
	return time.Duration(half + rand.Float64()*half)
}

func (r *Runner) settle(err error, subject string) {
	if err != nil {
		r.log.Warn("ack/nak failed; the server will redeliver after AckWait", zap.String("subject", subject), zap.Error(err))
	}
}

func truncate(s string, n int) string {
	if len(s) > n {
		return s[:n]
	}
	return s
}
