package store

import "github.com/prometheus/client_golang/prometheus"

// Metrics describe the audit chain's growth.
type Metrics struct {
	appendedTotal   prometheus.Counter
	duplicatesTotal prometheus.Counter
	head            prometheus.Gauge
	pipelines       prometheus.Histogram
}

// NewMetrics registers the audit metrics with reg.
func NewMetrics(reg prometheus.Registerer) (*Metrics, error) {
	m := &Metrics{
		appendedTotal: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "eventshop_audit_entries_appended_total",
			Help: "Entries this process appended to the audit chain.",
		}),
		duplicatesTotal: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "eventshop_audit_duplicates_skipped_total",
			Help: "Events not appended because they were already in the audit chain.",
		}),
		head: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "eventshop_audit_chain_head_index",
			Help: "Chain index of the last entry this process knows of.",
		}),
		pipelines: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "eventshop_audit_pipeline_entries",
			Help:    "Entries published together in one pipeline (group commit) of the audit appender.",
			Buckets: []float64{1, 2, 4, 8, 16, 32, 64, 128, 256},
		}),
	}
	for _, c := range []prometheus.Collector{m.appendedTotal, m.duplicatesTotal, m.head, m.pipelines} {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	return m, nil
}

func (m *Metrics) appended(index uint64) {
	if m == nil {
		return
	}
	m.appendedTotal.Inc()
	m.head.Set(float64(index))
}

func (m *Metrics) duplicate() {
	if m == nil {
		return
	}
	m.duplicatesTotal.Inc()
}

func (m *Metrics) headIndex(index uint64) {
	if m == nil {
		return
	}
	m.head.Set(float64(index))
}

func (m *Metrics) pipeline(entries int) {
	if m == nil {
		return
	}
	m.pipelines.Observe(float64(entries))
}
