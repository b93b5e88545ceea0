package deadletter

import "github.com/prometheus/client_golang/prometheus"

// Advisory kinds and outcomes, the labels of
// eventshop_dead_letter_advisories_total.
const (
	KindMaxDeliveries = "max_deliveries"
	KindTerminated    = "terminated"

	AdvisoryWritten = "written" // the advisory path wrote the letter
	AdvisoryAlready = "already" // the letter (or its tombstone) was there: the runner wrote it
	AdvisoryIgnored = "ignored" // not an advisory of a known kind
)

// Metrics are the dead-letter metrics of one service.
type Metrics struct {
	gauge       *prometheus.GaugeVec
	resolutions *prometheus.CounterVec
	advisories  *prometheus.CounterVec
}

// NewMetrics registers the dead-letter metrics with reg.
func NewMetrics(reg prometheus.Registerer) (*Metrics, error) {
	m := &Metrics{
		gauge: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "eventshop_dead_letters",
			Help: "Dead letters waiting to be replayed or discarded, of the messages of the stream this service owns, by the consumer that gave up.",
		}, []string{"consumer"}),
		resolutions: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "eventshop_dead_letters_resolved_total",
			Help: "Dead letters resolved by an operator, by consumer and resolution (replayed, discarded).",
		}, []string{"consumer", "resolution"}),
		advisories: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "eventshop_dead_letter_advisories_total",
			Help: "MAX_DELIVERIES and MSG_TERMINATED advisories processed for this service's consumers, by kind and outcome (written, already, ignored).",
		}, []string{"kind", "outcome"}),
	}
	for _, c := range []prometheus.Collector{m.gauge, m.resolutions, m.advisories} {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	return m, nil
}

func (m *Metrics) waiting(consumer string, n int) {
	if m == nil {
		return
	}
	m.gauge.WithLabelValues(consumer).Set(float64(n))
}

func (m *Metrics) resolved(consumer, resolution string) {
	if m == nil {
		return
	}
	m.resolutions.WithLabelValues(consumer, resolution).Inc()
}

func (m *Metrics) advisory(kind, outcome string) {
	if m == nil {
		return
	}
	m.advisories.WithLabelValues(kind, outcome).Inc()
}
