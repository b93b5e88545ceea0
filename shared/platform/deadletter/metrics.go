package deadletter

import (
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
)

// Metrics are the metrics of the letters a service manages. The letters
// its consumers cause, and the advisories its capture handles, are counted
// with the consumer metrics (runner.Metrics).
type Metrics struct {
	gauge       *prometheus.GaugeVec
	resolutions *prometheus.CounterVec
}

// NewMetrics registers the dead-letter metrics with reg.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	f := promauto.With(reg)
	return &Metrics{
		gauge: f.NewGaugeVec(prometheus.GaugeOpts{
			Name: "eventshop_dead_letters",
			Help: "Dead letters waiting to be replayed or discarded, of the messages of the stream this service owns, by the consumer that gave up.",
		}, []string{"consumer"}),
		resolutions: f.NewCounterVec(prometheus.CounterOpts{
			Name: "eventshop_dead_letters_resolved_total",
			Help: "Dead letters resolved by an operator, by consumer and resolution (replayed, discarded).",
		}, []string{"consumer", "resolution"}),
	}
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
