package service

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"

	"github.com/eventshop/payment-service/internal/breaker"
	"github.com/eventshop/payment-service/internal/gateway"
)

// paymentMetrics are the metrics of the gateway client and its circuit
// breaker: charge and refund outcomes, gateway latency, the breaker's
// transitions and state. The time to handle a payment is the use case's
// (app).
type paymentMetrics struct {
	charges     *prometheus.CounterVec
	mismatches  prometheus.Counter
	refunds     *prometheus.CounterVec
	latency     *prometheus.HistogramVec
	transitions *prometheus.CounterVec
	reg         prometheus.Registerer
}

func newPaymentMetrics(reg prometheus.Registerer) *paymentMetrics {
	f := promauto.With(reg)
	return &paymentMetrics{
		reg: reg,
		charges: f.NewCounterVec(prometheus.CounterOpts{
			Name: "eventshop_payment_charges_total",
			Help: "Charge attempts by outcome (succeeded, declined, mismatch, unavailable, rejected, breaker_open).",
		}, []string{"outcome"}),
		mismatches: f.NewCounter(prometheus.CounterOpts{
			Name: "eventshop_payment_gateway_mismatch_total",
			Help: "Gateway answers about another charge than the one asked for (order, amount or currency differ): failed payments to investigate at once.",
		}),

		refunds: f.NewCounterVec(prometheus.CounterOpts{
			Name: "eventshop_payment_refunds_total",
			Help: "Refund attempts of cancelled orders' charges by outcome (succeeded, unavailable, rejected, breaker_open).",
		}, []string{"outcome"}),
		latency: f.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "eventshop_payment_gateway_request_seconds",
			Help:    "Latency of payment gateway charge calls, by outcome.",
			Buckets: []float64{.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10},
		}, []string{"outcome"}),
		transitions: f.NewCounterVec(prometheus.CounterOpts{
			Name: "eventshop_payment_breaker_transitions_total",
			Help: "Gateway circuit breaker state transitions.",
		}, []string{"from", "to"}),
	}
}

// watchBreaker exports the breaker's state, read at scrape time so that an
// open breaker whose timeout has passed shows half-open.
func (m *paymentMetrics) watchBreaker(b *breaker.Breaker) {
	promauto.With(m.reg).NewGaugeFunc(prometheus.GaugeOpts{
		Name: "eventshop_payment_breaker_state",
		Help: "Gateway circuit breaker state: 0 closed, 1 half-open, 2 open.",
	}, func() float64 { return float64(b.State()) })
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
