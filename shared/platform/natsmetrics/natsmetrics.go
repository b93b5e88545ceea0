// Package natsmetrics exports what the broker knows about a service's
// work as Prometheus gauges: the lag of each durable consumer the service
// runs (pending, ack-pending and redelivered messages, read from the
// server's consumer info) and the size of each stream it owns. The server
// holds these numbers; a service's own counters cannot, since a message
// nobody has pulled yet never reaches a handler.
//
// A Collector polls at an interval. It never holds the service up: a
// failed info request is logged at debug level and counted, and the gauge
// keeps its last value until the next poll succeeds. It implements
// lifecycle.Consumer (Start, Drain, Name) so that the service's lifecycle
// starts it and joins it at shutdown.
//
// The dead-letter depth is not polled here: the letters of a stream's
// messages can only be told from the tombstones of resolved ones by the
// stream's owner (the NATS permissions let a service read only those), and
// platform/deadletter exports it there as eventshop_dead_letters{consumer}.
package natsmetrics

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
	"go.uber.org/zap"

	"github.com/eventshop/shared/platform/lifecycle"
)

// DefaultInterval is how often the broker is asked when no interval is set.
const DefaultInterval = 5 * time.Second

// ErrInvalidOption is returned, wrapped, by New for an option that cannot
// work.
var ErrInvalidOption = errors.New("invalid broker metrics option")

// Durable names a durable consumer by its stream and name;
// *runner.Runner is one.
type Durable interface {
	Stream() string
	Name() string
}

// Option configures a Collector.
type Option func(*options) error

type options struct {
	interval  time.Duration
	consumers []target
	streams   []string
}

type target struct{ stream, durable string }

// WithInterval sets how often the broker is asked (default DefaultInterval).
func WithInterval(d time.Duration) Option {
	return func(o *options) error {
		if d <= 0 {
			return fmt.Errorf("interval %s: want > 0: %w", d, ErrInvalidOption)
		}
		o.interval = d
		return nil
	}
}

// WithConsumers adds durable consumers whose lag is exported; only these
// name series, which keeps the label values bounded. It is generic so that
// a service's []*runner.Runner can be passed as it is.
func WithConsumers[D Durable](ds ...D) Option {
	return func(o *options) error {
		for _, d := range ds {
			if any(d) == nil || d.Stream() == "" || d.Name() == "" {
				return fmt.Errorf("consumer without stream or name: %w", ErrInvalidOption)
			}
			o.consumers = append(o.consumers, target{d.Stream(), d.Name()})
		}
		return nil
	}
}

// WithStreams adds streams whose size is exported: those the service owns.
func WithStreams(names ...string) Option {
	return func(o *options) error {
		for _, n := range names {
			if n == "" {
				return fmt.Errorf("empty stream name: %w", ErrInvalidOption)
			}
			o.streams = append(o.streams, n)
		}
		return nil
	}
}

// Collector polls the broker and exports what it answers.
type Collector struct {
	js  jetstream.JetStream
	log *zap.Logger
	o   options

	pending     *prometheus.GaugeVec
	ackPending  *prometheus.GaugeVec
	redelivered *prometheus.GaugeVec
	paused      *prometheus.GaugeVec
	msgs        *prometheus.GaugeVec
	bytes       *prometheus.GaugeVec
	errors      *prometheus.CounterVec

	// Every polls at the interval from Start until Drain.
	*lifecycle.Every
}

// New returns a collector whose metrics are registered with reg.
func New(js jetstream.JetStream, log *zap.Logger, reg prometheus.Registerer, opts ...Option) (*Collector, error) {
	if js == nil || log == nil || reg == nil {
		return nil, fmt.Errorf("jetstream, logger and registerer are required: %w", ErrInvalidOption)
	}
	o := options{interval: DefaultInterval}
	for _, opt := range opts {
		if err := opt(&o); err != nil {
			return nil, err
		}
	}
	lag := []string{"stream", "consumer"}
	f := promauto.With(reg)
	c := &Collector{
		js: js, log: log.With(zap.String("part", "broker-metrics")), o: o,
		pending: f.NewGaugeVec(prometheus.GaugeOpts{
			Name: "eventshop_consumer_pending_messages",
			Help: "Messages of the stream that match the durable consumer's filter and were not delivered yet (num_pending): its lag.",
		}, lag),
		ackPending: f.NewGaugeVec(prometheus.GaugeOpts{
			Name: "eventshop_consumer_ack_pending_messages",
			Help: "Messages delivered to the durable consumer and not acknowledged yet (num_ack_pending), bounded by its max ack pending.",
		}, lag),
		redelivered: f.NewGaugeVec(prometheus.GaugeOpts{
			Name: "eventshop_consumer_redelivered_messages",
			Help: "Messages delivered more than once to the durable consumer and not acknowledged yet (num_redelivered).",
		}, lag),
		paused: f.NewGaugeVec(prometheus.GaugeOpts{
			Name: "eventshop_consumer_paused",
			Help: "1 while the durable consumer is paused on the server (the payment service pauses its gateway consumers while the breaker is open), else 0.",
		}, lag),
		msgs: f.NewGaugeVec(prometheus.GaugeOpts{
			Name: "eventshop_stream_messages",
			Help: "Messages stored in a stream the service owns.",
		}, []string{"stream"}),
		bytes: f.NewGaugeVec(prometheus.GaugeOpts{
			Name: "eventshop_stream_bytes",
			Help: "Bytes stored in a stream the service owns.",
		}, []string{"stream"}),
		errors: f.NewCounterVec(prometheus.CounterOpts{
			Name: "eventshop_broker_info_errors_total",
			Help: "Consumer and stream info requests that failed, by kind (consumer, stream) and name: the lag and size gauges of that name are stale.",
		}, []string{"kind", "name"}),
	}
	c.Every = lifecycle.NewEvery("broker-metrics", o.interval, func(ctx context.Context) { c.Poll(ctx) })
	return c, nil
}

// Poll asks the broker once for every consumer and stream and updates the
// gauges; each request is bounded by the interval. It returns the number
// of requests that failed (logged and counted, never fatal).
func (c *Collector) Poll(ctx context.Context) int {
	failed := 0
	for _, t := range c.o.consumers {
		if err := c.pollConsumer(ctx, t); err != nil {
			failed++
			c.fail(ctx, "consumer", t.durable, err, zap.String("stream", t.stream))
		}
	}
	for _, s := range c.o.streams {
		if err := c.pollStream(ctx, s); err != nil {
			failed++
			c.fail(ctx, "stream", s, err)
		}
	}
	return failed
}

func (c *Collector) fail(ctx context.Context, kind, name string, err error, fields ...zap.Field) {
	if ctx.Err() != nil {
		return // stopping: not a broker failure
	}
	c.errors.WithLabelValues(kind, name).Inc()
	c.log.Debug(kind+" info failed; its gauges are stale", append(fields, zap.String(kind, name), zap.Error(err))...)
}

func (c *Collector) pollConsumer(ctx context.Context, t target) error {
	rctx, cancel := context.WithTimeout(ctx, c.o.interval)
	defer cancel()
	// One CONSUMER.INFO request: the handle the lookup returns carries the
	// info it was answered with.
	cons, err := c.js.Consumer(rctx, t.stream, t.durable)
	if err != nil {
		return err
	}
	info := cons.CachedInfo()
	c.pending.WithLabelValues(t.stream, t.durable).Set(float64(info.NumPending))
	c.ackPending.WithLabelValues(t.stream, t.durable).Set(float64(info.NumAckPending))
	c.redelivered.WithLabelValues(t.stream, t.durable).Set(float64(info.NumRedelivered))
	p := 0.0
	if info.Paused {
		p = 1
	}
	c.paused.WithLabelValues(t.stream, t.durable).Set(p)
	return nil
}

func (c *Collector) pollStream(ctx context.Context, name string) error {
	rctx, cancel := context.WithTimeout(ctx, c.o.interval)
	defer cancel()
	s, err := c.js.Stream(rctx, name)
	if err != nil {
		return err
	}
	st := s.CachedInfo().State
	c.msgs.WithLabelValues(name).Set(float64(st.Msgs))
	c.bytes.WithLabelValues(name).Set(float64(st.Bytes))
	return nil
}
