package runner

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"go.uber.org/zap"

	"github.com/eventshop/shared/platform/deadletter"
)

// Advisory subject prefixes the server publishes on, followed by
// .<stream>.<consumer>.
const (
	MaxDeliveriesPrefix = "$JS.EVENT.ADVISORY.CONSUMER.MAX_DELIVERIES"
	TerminatedPrefix    = "$JS.EVENT.ADVISORY.CONSUMER.MSG_TERMINATED"
)

// Advisory kinds and outcomes, the labels of
// eventshop_dead_letter_advisories_total.
const (
	KindMaxDeliveries = "max_deliveries"
	KindTerminated    = "terminated"

	AdvisoryWritten = "written" // the advisory path wrote the letter
	AdvisoryAlready = "already" // the letter (or its tombstone) was there: the runner wrote it
	AdvisoryIgnored = "ignored" // not an advisory of a known kind
)

// CaptureDurable is the name of the consumer of a capture stream.
const CaptureDurable = "dlq-advisories"

// DefaultCaptureMaxAge bounds how long a captured advisory waits for its
// consumer. It is shorter than DefaultTombstoneTTL, so an advisory never
// outlives the tombstone of a letter resolved meanwhile
// (deadletter.DefaultTombstoneTTL).
const DefaultCaptureMaxAge = 14 * 24 * time.Hour

// CaptureConfig describes the advisories one service captures.
type CaptureConfig struct {
	// Service names the capture stream (CaptureStreamName) and the logs.
	Service string
	// Consumers are the service's runners.
	Consumers []*Runner
	// Replicas of the capture stream and, if the capture makes it, of the
	// dead-letter stream (default 1).
	Replicas int
	// MaxAge of a captured advisory (default DefaultCaptureMaxAge).
	MaxAge time.Duration
	// DeadLetterStream is the dead-letter stream (default
	// deadletter.DefaultStream).
	DeadLetterStream string
}

// CaptureStreamName is the name of service's capture stream, e.g.
// DLQ_ADVISORIES_ORDER for "order-service".
func CaptureStreamName(service string) string {
	name := strings.TrimSuffix(service, "-service")
	return "DLQ_ADVISORIES_" + strings.ToUpper(strings.NewReplacer("-", "_", ".", "_").Replace(name))
}

// Capture turns the server's advisories about a service's consumers
// (MAX_DELIVERIES, MSG_TERMINATED) into dead letters, read from a stream
// that listens while the service is down; a letter whose original left its
// stream records the loss (Dlq-Original-Missing). docs/architecture.md,
// "Dead letters", says when each advisory comes and why the domain streams'
// limits retention matters. Capture lives with the runner because it is
// one: a runner of the capture stream, counted in the same consumer
// metrics.
type Capture struct {
	js     jetstream.JetStream
	cfg    CaptureConfig
	log    *zap.Logger
	runner *Runner

	mu      sync.Mutex
	streams map[string]jetstream.Stream
}

// NewCapture returns the advisory capture of cfg.Consumers. Start it
// before the consumers it watches, so the stream listens from their first
// delivery on. The options are those of its runner: WithMetrics counts the
// letters it writes in eventshop_dead_letters_total and its advisories in
// eventshop_dead_letter_advisories_total; WithClock dates its letters.
func NewCapture(js jetstream.JetStream, cfg CaptureConfig, log *zap.Logger, opts ...Option) (*Capture, error) {
	if js == nil || log == nil || cfg.Service == "" || len(cfg.Consumers) == 0 {
		return nil, fmt.Errorf("jetstream, logger, service and consumers are required: %w", ErrInvalidConfig)
	}
	if cfg.Replicas == 0 {
		cfg.Replicas = 1
	}
	if cfg.MaxAge == 0 {
		cfg.MaxAge = DefaultCaptureMaxAge
	}
	c := &Capture{js: js, cfg: cfg, log: log.With(zap.String("component", "dlq-capture")), streams: map[string]jetstream.Stream{}}
	var err error
	c.runner, err = New(js, Config{
		Stream:      CaptureStreamName(cfg.Service),
		Durable:     CaptureDurable,
		Concurrency: 1,
		// Only NATS failing makes a letter fail to be written: keep the
		// advisory until it can be, never give up on it.
		MaxDeliver:         -1,
		Retry:              Backoff{Initial: 500 * time.Millisecond, Max: 30 * time.Second, Multiplier: 2},
		DeadLetterStream:   cfg.DeadLetterStream,
		DeadLetterReplicas: cfg.Replicas,
	}, c.handle, log, opts...)
	if err != nil {
		return nil, err
	}
	return c, nil
}

// StreamConfig returns the capture stream's configuration: exactly the
// two advisory subjects of each of the service's durables. It is a
// work-queue stream (an advisory is deleted once handled) with no-ack
// (the server's advisories expect no reply; it also keeps the stream
// valid under the rule that a stream over $JS.> subjects must not ack).
func (c *Capture) StreamConfig() jetstream.StreamConfig {
	var subjects []string
	for _, s := range c.cfg.Consumers {
		subjects = append(subjects,
			MaxDeliveriesPrefix+"."+s.Stream()+"."+s.Name(),
			TerminatedPrefix+"."+s.Stream()+"."+s.Name())
	}
	return jetstream.StreamConfig{
		Name:        CaptureStreamName(c.cfg.Service),
		Description: "advisories about " + c.cfg.Service + "'s consumers giving up on messages, until turned into dead letters",
		Subjects:    subjects,
		Retention:   jetstream.WorkQueuePolicy,
		Storage:     jetstream.FileStorage,
		Replicas:    c.cfg.Replicas,
		MaxAge:      c.cfg.MaxAge,
		NoAck:       true,
	}
}

// Ensure creates or updates the capture stream.
func (c *Capture) Ensure(ctx context.Context) error {
	if _, err := c.js.CreateOrUpdateStream(ctx, c.StreamConfig()); err != nil {
		return fmt.Errorf("ensure advisory capture stream %s: %w", CaptureStreamName(c.cfg.Service), err)
	}
	return nil
}

// Start ensures the capture stream, waiting for NATS while ctx allows,
// and starts consuming it.
func (c *Capture) Start(ctx context.Context) error {
	wait := 50 * time.Millisecond
	for attempt := 0; ; attempt++ {
		err := c.Ensure(ctx)
		if err == nil {
			break
		}
		if ctx.Err() != nil {
			return err
		}
		if attempt%20 == 0 {
			c.log.Warn("advisory capture stream not ready, retrying", zap.Error(err))
		}
		select {
		case <-ctx.Done():
		case <-time.After(wait):
		}
		wait = min(2*wait, 2*time.Second)
	}
	return c.runner.Start(ctx)
}

// Drain stops consuming advisories after the one in hand.
func (c *Capture) Drain(ctx context.Context) error { return c.runner.Drain(ctx) }

// Name names the capture in logs and readiness checks.
func (c *Capture) Name() string { return CaptureDurable }

// Ready reports whether advisories are being consumed.
func (c *Capture) Ready() error { return c.runner.Ready() }

// advisory holds the fields of the MAX_DELIVERIES and MSG_TERMINATED
// advisories (io.nats.jetstream.advisory.v1.max_deliver / .terminated).
type advisory struct {
	Type       string    `json:"type"`
	Time       time.Time `json:"timestamp"`
	Stream     string    `json:"stream"`
	Consumer   string    `json:"consumer"`
	StreamSeq  uint64    `json:"stream_seq"`
	Deliveries uint64    `json:"deliveries"`
	Reason     string    `json:"reason"`
}

func (c *Capture) handle(ctx context.Context, msg jetstream.Msg) error {
	kind := KindMaxDeliveries
	switch {
	case strings.HasPrefix(msg.Subject(), MaxDeliveriesPrefix+"."):
	case strings.HasPrefix(msg.Subject(), TerminatedPrefix+"."):
		kind = KindTerminated
	default:
		c.log.Error("not an advisory this capture knows, dropped", zap.String("subject", msg.Subject()))
		c.runner.metrics.advisory("unknown", AdvisoryIgnored)
		return nil
	}
	var a advisory
	if err := json.Unmarshal(msg.Data(), &a); err != nil || a.Stream == "" || a.Consumer == "" || a.StreamSeq == 0 {
		// The server wrote it: retrying cannot make it readable.
		c.log.Error("unreadable advisory, dropped", zap.String("subject", msg.Subject()),
			zap.ByteString("advisory", msg.Data()), zap.Error(err))
		c.runner.metrics.advisory(kind, AdvisoryIgnored)
		return nil
	}
	letter := deadletter.Letter{
		Consumer:         a.Consumer,
		OriginalStream:   a.Stream,
		OriginalSequence: a.StreamSeq,
		Deliveries:       a.Deliveries,
		Reason:           advisoryReason(kind, a),
		Time:             c.runner.now(),
	}
	orig, err := c.original(ctx, a.Stream, a.StreamSeq)
	switch {
	case errors.Is(err, jetstream.ErrMsgNotFound):
		letter.Missing = true
		letter.Reason += "; the original message had already left stream " + a.Stream
	case err != nil:
		return fmt.Errorf("fetch %s #%d for its dead letter: %w", a.Stream, a.StreamSeq, err)
	default:
		letter.OriginalSubject, letter.Data, letter.Header = orig.Subject, orig.Data, orig.Header
	}
	created, err := deadletter.Write(ctx, c.js, letter)
	if err != nil {
		return err
	}
	fields := []zap.Field{
		zap.String("advisory", kind), zap.String("consumer", a.Consumer), zap.String("stream", a.Stream),
		zap.Uint64("stream_seq", a.StreamSeq), zap.Uint64("delivered", a.Deliveries),
		zap.String("subject", letter.OriginalSubject), zap.String("order_id", letter.OrderID()),
		zap.String("trace_id", letter.TraceID()),
	}
	if !created {
		c.log.Debug("advisory about a message already dead-lettered", fields...)
		c.runner.metrics.advisory(kind, AdvisoryAlready)
		return nil
	}
	c.log.Error("message dead-lettered from a server advisory", append(fields, zap.String("reason", letter.Reason))...)
	c.runner.metrics.advisory(kind, AdvisoryWritten)
	c.runner.metrics.DeadLettered(a.Consumer)
	return nil
}

func advisoryReason(kind string, a advisory) string {
	if kind == KindMaxDeliveries {
		return fmt.Sprintf("max deliveries exceeded: no ack after %d deliveries (the handler failed or outlived AckWait every time)", a.Deliveries)
	}
	if a.Reason == "" {
		return "terminated"
	}
	return "terminated: " + a.Reason
}

// original reads the message at seq of stream (a direct get by sequence).
func (c *Capture) original(ctx context.Context, stream string, seq uint64) (*jetstream.RawStreamMsg, error) {
	c.mu.Lock()
	s, ok := c.streams[stream]
	c.mu.Unlock()
	if !ok {
		var err error
		if s, err = c.js.Stream(ctx, stream); err != nil {
			return nil, err
		}
		c.mu.Lock()
		c.streams[stream] = s
		c.mu.Unlock()
	}
	return s.GetMsg(ctx, seq)
}
