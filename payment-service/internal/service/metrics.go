package service

import (
	"context"
	"errors"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/eventshop/payment-service/internal/breaker"
	"github.com/eventshop/payment-service/internal/consumer"
	"github.com/eventshop/payment-service/internal/gateway"
	"github.com/eventshop/payment-service/internal/payment"
)

// paymentMetrics are the payment-specific metrics: charge and refund
// outcomes, gateway latency, the handling of a payment and the circuit
// breaker.
type paymentMetrics struct {
	charges     *prometheus.CounterVec
	mismatches  prometheus.Counter
	refunds     *prometheus.CounterVec
	latency     *prometheus.HistogramVec
	transitions *prometheus.CounterVec
	process     *prometheus.HistogramVec
	reg         prometheus.Registerer
}

func newPaymentMetrics(reg prometheus.Registerer) (*paymentMetrics, error) {
	m := &paymentMetrics{
		reg: reg,
		charges: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "eventshop_payment_charges_total",
			Help: "Charge attempts by outcome (succeeded, declined, mismatch, unavailable, rejected, breaker_open).",
		}, []string{"outcome"}),
		mismatches: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "eventshop_payment_gateway_mismatch_total",
			Help: "Gateway answers about another charge than the one asked for (order, amount or currency differ): failed payments to investigate at once.",
		}),

		refunds: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "eventshop_payment_refunds_total",
			Help: "Refund attempts of cancelled orders' charges by outcome (succeeded, unavailable, rejected, breaker_open).",
		}, []string{"outcome"}),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "eventshop_payment_gateway_request_seconds",
			Help:    "Latency of payment gateway charge calls, by outcome.",
			Buckets: []float64{.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10},
		}, []string{"outcome"}),
		transitions: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "eventshop_payment_breaker_transitions_total",
			Help: "Gateway circuit breaker state transitions.",
		}, []string{"from", "to"}),
		process: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			// The design's payment_process_duration_seconds, under the
			// eventshop_ prefix every metric here has.
			Name: "eventshop_payment_process_duration_seconds",
			Help: "Time to process one reserved order's payment (payment.Processor.Process: record, gateway call, " +
				"record, event), by outcome: succeeded, failed (declined), void (cancelled first), unavailable " +
				"(gateway down or breaker open: waits), rejected, no_token, refunded, error (a transient NATS failure).",
			Buckets: []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30},
		}, []string{"outcome"}),
	}
	for _, c := range []prometheus.Collector{m.charges, m.mismatches, m.refunds, m.latency, m.transitions, m.process} {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	return m, nil
}

// watchBreaker exports the breaker's state, read at scrape time so that an
// open breaker whose timeout has passed shows half-open.
func (m *paymentMetrics) watchBreaker(b *breaker.Breaker) error {
	return m.reg.Register(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "eventshop_payment_breaker_state",
		Help: "Gateway circuit breaker state: 0 closed, 1 half-open, 2 open.",
	}, func() float64 { return float64(b.State()) }))
}

// ChargeOutcome implements gateway.Observer.
func (m *paymentMetrics) ChargeOutcome(outcome string) {
	m.charges.WithLabelValues(outcome).Inc()
	if outcome == gateway.OutcomeMismatch {
		m.mismatches.Inc()
	}
}

// RefundOutcome implements gateway.Observer.
func (m *paymentMetrics) RefundOutcome(outcome string) { m.refunds.WithLabelValues(outcome).Inc() }

// GatewayLatency implements gateway.Observer.
func (m *paymentMetrics) GatewayLatency(outcome string, d time.Duration) {
	m.latency.WithLabelValues(outcome).Observe(d.Seconds())
}

func (m *paymentMetrics) transition(t breaker.Transition) {
	m.transitions.WithLabelValues(t.From.String(), t.To.String()).Inc()
}

// timedPayer times every payment processed by the payer it wraps into
// eventshop_payment_process_duration_seconds.
type timedPayer struct {
	next consumer.Payer
	m    *paymentMetrics
	now  func() time.Time
}

// Process implements consumer.Payer.
func (t timedPayer) Process(ctx context.Context, req payment.Request) (payment.Record, error) {
	start := t.now()
	rec, err := t.next.Process(ctx, req)
	t.m.process.WithLabelValues(processOutcome(rec, err)).Observe(t.now().Sub(start).Seconds())
	return rec, err
}

// processOutcome names a payment's outcome with one of a few fixed labels.
func processOutcome(rec payment.Record, err error) string {
	switch {
	case err == nil && (rec.Status == payment.StatusSucceeded || rec.Status == payment.StatusFailed ||
		rec.Status == payment.StatusVoid || rec.Status == payment.StatusRefunded):
		return string(rec.Status)
	case err == nil:
		return "other"
	case errors.Is(err, payment.ErrGatewayUnavailable):
		return "unavailable"
	case errors.Is(err, payment.ErrGatewayRejected):
		return "rejected"
	case errors.Is(err, payment.ErrNoPaymentToken):
		return "no_token"
	default:
		return "error"
	}
}
