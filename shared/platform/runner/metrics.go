package runner

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
)

// Outcome labels.
const (
	OutcomeAck        = "ack"
	OutcomeRetry      = "retry"
	OutcomeWait       = "wait"
	OutcomeDeadLetter = "dead_letter"
)

// Metrics are the consumer metrics of one service, shared by its runners.
type Metrics struct {
	handled     *prometheus.CounterVec
	duration    *prometheus.HistogramVec
	attempts    *prometheus.HistogramVec
	deadLetters *prometheus.CounterVec
	refused     *prometheus.CounterVec
	advisories  *prometheus.CounterVec
}

// NewMetrics registers the consumer metrics with reg.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	f := promauto.With(reg)
	return &Metrics{
		handled: f.NewCounterVec(prometheus.CounterOpts{
			Name: "eventshop_consumer_messages_total",
			Help: "Messages handled, by consumer and outcome (ack, retry, wait, dead_letter).",
		}, []string{"consumer", "outcome"}),
		duration: f.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "eventshop_consumer_handle_seconds",
			Help:    "Time to handle and settle one message.",
			Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10},
		}, []string{"consumer"}),
		attempts: f.NewHistogramVec(prometheus.HistogramOpts{
			Name: "eventshop_consumer_delivery_attempt",
			Help: "Delivery attempt number of each handled message (1 = first delivery), by consumer and outcome: " +
				"how many tries an ack took, and after how many a message was dead-lettered.",
			Buckets: []float64{1, 2, 3, 5, 10, 20, 50, 100},
		}, []string{"consumer", "outcome"}),
		deadLetters: f.NewCounterVec(prometheus.CounterOpts{
			Name: "eventshop_dead_letters_total",
			Help: "Messages moved to the dead-letter stream, by consumer (by the runner or from a server advisory).",
		}, []string{"consumer"}),
		refused: f.NewCounterVec(prometheus.CounterOpts{
			Name: "eventshop_events_refused_total",
			Help: "Well-formed events refused for what they claim (an amount that is not the order's total, an illegal " +
				"transition, a conflicting duplicate) and dead-lettered, by consumer and reason: each one is an event " +
				"the saga did not write, or a bug; alert on any.",
		}, []string{"consumer", "reason"}),
		advisories: f.NewCounterVec(prometheus.CounterOpts{
			Name: "eventshop_dead_letter_advisories_total",
			Help: "MAX_DELIVERIES and MSG_TERMINATED advisories processed for this service's consumers, by kind and outcome (written, already, ignored).",
		}, []string{"kind", "outcome"}),
	}
}

func (m *Metrics) observe(consumer, outcome string, attempt uint64, d time.Duration) {
	if m == nil {
		return
	}
	m.handled.WithLabelValues(consumer, outcome).Inc()
	m.duration.WithLabelValues(consumer).Observe(d.Seconds())
	m.attempts.WithLabelValues(consumer, outcome).Observe(float64(attempt))
}

// DeadLettered counts one message consumer gave up on and that was written
// to the dead-letter stream (only when the letter was created, never for a
// second attempt at the same message).
func (m *Metrics) DeadLettered(consumer string) {
	if m == nil {
		return
	}
	m.deadLetters.WithLabelValues(consumer).Inc()
}

// Refused counts one event consumer refused (see Refused) and
// dead-lettered.
func (m *Metrics) Refused(consumer, reason string) {
	if m == nil {
		return
	}
	m.refused.WithLabelValues(consumer, reason).Inc()
}

// advisory counts one advisory a Capture handled.
func (m *Metrics) advisory(kind, outcome string) {
	if m == nil {
		return
	}
	m.advisories.WithLabelValues(kind, outcome).Inc()
}
