package service

import (
	"context"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
	"go.uber.org/zap"

	"github.com/eventshop/payment-service/internal/breaker"
)

// pausedConsumer names a durable consumer whose work needs the gateway.
type pausedConsumer struct{ stream, durable string }

// gatewayPauser pauses, on the server, the consumers whose work needs the
// gateway for as long as the circuit breaker stays open: JetStream stops
// delivering to them, so an outage costs no deliveries, no CPU and never a
// dead letter. The pause ends by itself when the breaker's open timeout
// ends, which is when the breaker lets a probe through; a failed probe
// re-opens the breaker and pauses them again. Messages already delivered
// when the breaker opened wait with NakWithDelay until the same moment.
//
// The breaker tells it of an opening (observe) with its lock held, so the
// pause calls are made by Run, a background job of the service: they end
// with the service's lifetime and are joined at its shutdown.
type gatewayPauser struct {
	js        jetstream.JetStream
	log       *zap.Logger
	consumers []pausedConsumer
	pauses    *prometheus.CounterVec

	mu    sync.Mutex
	until time.Time     // the end of the latest opening's pause, under mu
	wake  chan struct{} // an opening to act on (capacity 1)
}

func newGatewayPauser(js jetstream.JetStream, log *zap.Logger, reg prometheus.Registerer, consumers ...pausedConsumer) *gatewayPauser {
	return &gatewayPauser{
		js: js, log: log, consumers: consumers, wake: make(chan struct{}, 1),
		pauses: promauto.With(reg).NewCounterVec(prometheus.CounterOpts{
			Name: "eventshop_payment_consumer_pauses_total",
			Help: "Server-side pauses of the gateway's consumers while the circuit breaker is open, by outcome (paused, failed).",
		}, []string{"outcome"}),
	}
}

// observe is called on every breaker transition (with the breaker's lock
// held, so it must not block): an opening asks Run to pause the consumers
// until the open timeout ends. Transitions come in order, so the latest
// opening's end is the one that counts.
func (p *gatewayPauser) observe(t breaker.Transition, openTimeout time.Duration) {
	if t.To != breaker.Open {
		return
	}
	p.mu.Lock()
	p.until = t.At.Add(openTimeout)
	p.mu.Unlock()
	select {
	case p.wake <- struct{}{}:
	default: // Run has not taken the last one yet: it reads the latest end
	}
}

// Run pauses the consumers after each opening until ctx ends.
func (p *gatewayPauser) Run(ctx context.Context) error {
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-p.wake:
		}
		p.mu.Lock()
		until := p.until
		p.mu.Unlock()
		p.pause(ctx, until)
	}
}

func (p *gatewayPauser) pause(ctx context.Context, until time.Time) {
	if !time.Now().Before(until) {
		return
	}
	call, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	for _, c := range p.consumers {
		if _, err := p.js.PauseConsumer(call, c.stream, c.durable, until); err != nil {
			if ctx.Err() != nil {
				return // the service is stopping
			}
			// Not fatal: the handler's wait-and-retry still keeps every
			// message; it only costs deliveries.
			p.log.Warn("could not pause consumer while the gateway breaker is open",
				zap.String("stream", c.stream), zap.String("consumer", c.durable), zap.Error(err))
			p.pauses.WithLabelValues("failed").Inc()
			continue
		}
		p.log.Info("consumer paused while the gateway breaker is open",
			zap.String("stream", c.stream), zap.String("consumer", c.durable), zap.Time("until", until))
		p.pauses.WithLabelValues("paused").Inc()
	}
}
