// Package openorders exports how old the oldest order not known final is,
// and the deadline orders are held to, so that an alert can tell an order
// past its deadline (deployments/observability/rules/alerts.yml,
// OrderPastDeadline).
//
// The deadline consumer (order-deadlines) holds the created event of every
// order in flight and acknowledges it once the order is final (at most
// 10 s later), so the created events past its ack floor are the orders
// not seen final: the first of them is the oldest. A Watch reads the
// consumer's ack floor at an interval (one CONSUMER.INFO) and the first
// created event after it (one get), as platform/natsmetrics reads the lag
// of every durable. Like it, a Watch never holds the service up: a failed
// read is logged at debug level and the gauge keeps its last value.
package openorders

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
	"go.uber.org/zap"

	"github.com/eventshop/shared/events"
	"github.com/eventshop/shared/platform/lifecycle"
)

// DefaultInterval is how often the broker is asked when no interval is set.
const DefaultInterval = 5 * time.Second

// ErrInvalidOption is returned, wrapped, for an option that cannot work.
var ErrInvalidOption = errors.New("invalid open orders option")

// Option configures a Watch.
type Option func(*Watch) error

// WithInterval sets how often the broker is asked (default DefaultInterval).
func WithInterval(d time.Duration) Option {
	return func(w *Watch) error {
		if d <= 0 {
			return fmt.Errorf("interval %s: want > 0: %w", d, ErrInvalidOption)
		}
		w.interval = d
		return nil
	}
}

// WithClock sets the clock ages are measured with.
func WithClock(now func() time.Time) Option {
	return func(w *Watch) error {
		if now == nil {
			return fmt.Errorf("clock: %w", ErrInvalidOption)
		}
		w.now = now
		return nil
	}
}

// Watch polls the deadline consumer and exports the age of the oldest
// order it has not acknowledged.
type Watch struct {
	js       jetstream.JetStream
	durable  string
	log      *zap.Logger
	interval time.Duration
	now      func() time.Time

	oldest prometheus.Gauge

	mu     sync.Mutex
	stream jetstream.Stream // ORDERS, once looked up

	// Every polls at the interval from Start until Drain.
	*lifecycle.Every
}

// New returns a watch of durable, the deadline consumer of the ORDERS
// created events, whose gauges eventshop_order_oldest_open_age_seconds and
// eventshop_order_deadline_seconds (deadline) are registered with reg.
func New(js jetstream.JetStream, durable string, deadline time.Duration, log *zap.Logger, reg prometheus.Registerer, opts ...Option) (*Watch, error) {
	if js == nil || durable == "" || deadline <= 0 || log == nil || reg == nil {
		return nil, fmt.Errorf("jetstream, durable, deadline > 0, logger and registerer are required: %w", ErrInvalidOption)
	}
	w := &Watch{
		js: js, durable: durable, log: log.With(zap.String("part", "open-orders")), interval: DefaultInterval, now: time.Now,
	}
	for _, opt := range opts {
		if err := opt(w); err != nil {
			return nil, err
		}
	}
	f := promauto.With(reg)
	w.oldest = f.NewGauge(prometheus.GaugeOpts{
		Name: "eventshop_order_oldest_open_age_seconds",
		Help: "Age of the oldest order the " + durable + " consumer has not seen final (the created_at of the first created " +
			"event after its ack floor); 0 when every order is. It may exceed ORDER_DEADLINE by the 10 s between looks and a poll.",
	})
	f.NewGauge(prometheus.GaugeOpts{
		Name: "eventshop_order_deadline_seconds",
		Help: "ORDER_DEADLINE in seconds: an order not final this long after it was placed is cancelled (reason timeout).",
	}).Set(deadline.Seconds())
	w.Every = lifecycle.NewEvery("open-orders", w.interval, func(ctx context.Context) {
		if err := w.Poll(ctx); err != nil && ctx.Err() == nil {
			w.log.Debug("oldest open order not read; its gauge is stale", zap.Error(err))
		}
	})
	return w, nil
}

// Poll reads the oldest order the deadline consumer has not acknowledged
// and sets the gauge to its age (0 without one). The reads are bounded by
// the interval.
func (w *Watch) Poll(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, w.interval)
	defer cancel()
	age, err := w.oldestAge(ctx)
	if err != nil {
		return err
	}
	w.oldest.Set(age.Seconds())
	return nil
}

// oldestAge returns the age of the first created event after the deadline
// consumer's ack floor: every created event up to the floor is
// acknowledged, so that order is the oldest not seen final (or not even
// delivered yet). 0 when there is none.
func (w *Watch) oldestAge(ctx context.Context) (time.Duration, error) {
	c, err := w.js.Consumer(ctx, events.StreamOrders, w.durable)
	if err != nil {
		return 0, fmt.Errorf("consumer %s: %w", w.durable, err)
	}
	// The lookup is one CONSUMER.INFO: its answer is the cached info.
	floor := c.CachedInfo().AckFloor.Stream
	s, err := w.orders(ctx)
	if err != nil {
		return 0, err
	}
	created := events.FilterSubject(events.OrderCreated)
	msg, err := s.GetMsg(ctx, floor+1, jetstream.WithGetMsgSubject(created))
	if errors.Is(err, jetstream.ErrMsgNotFound) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("first %s after %s's ack floor %d: %w", created, w.durable, floor, err)
	}
	return max(w.now().Sub(createdAt(msg)), 0), nil
}

// orders returns the ORDERS stream's handle, looked up on first use.
func (w *Watch) orders(ctx context.Context) (jetstream.Stream, error) {
	w.mu.Lock()
	s := w.stream
	w.mu.Unlock()
	if s != nil {
		return s, nil
	}
	s, err := w.js.Stream(ctx, events.StreamOrders)
	if err != nil {
		return nil, fmt.Errorf("stream %s: %w", events.StreamOrders, err)
	}
	w.mu.Lock()
	w.stream = s
	w.mu.Unlock()
	return s, nil
}

// createdAt is when the order was placed: its created event's created_at
// (the deadline counts from it), or, for an event that does not decode (the
// deadline consumer dead-letters it), when the stream stored it.
func createdAt(msg *jetstream.RawStreamMsg) time.Time {
	env, err := events.Decode(msg.Subject, msg.Data)
	if err != nil {
		return msg.Time
	}
	var d events.OrderCreatedData
	if err := env.DecodeData(&d); err != nil || d.CreatedAt.IsZero() {
		return msg.Time
	}
	return d.CreatedAt
}
