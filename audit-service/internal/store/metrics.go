package store

import (
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
)

// Metrics describe the audit chain's growth.
type Metrics struct {
	appendedTotal   prometheus.Counter
	duplicatesTotal prometheus.Counter
	lookupsTotal    prometheus.Counter
	head            prometheus.Gauge
	commits         prometheus.Histogram
	blockEntries    prometheus.Histogram
	blockBytes      prometheus.Histogram
}

// NewMetrics registers the audit metrics with reg.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	f := promauto.With(reg)
	return &Metrics{
		appendedTotal: f.NewCounter(prometheus.CounterOpts{
			Name: "eventshop_audit_entries_appended_total",
			Help: "Entries this process appended to the audit chain.",
		}),
		duplicatesTotal: f.NewCounter(prometheus.CounterOpts{
			Name: "eventshop_audit_duplicates_skipped_total",
			Help: "Events not appended because they were already in the audit chain.",
		}),
		lookupsTotal: f.NewCounter(prometheus.CounterOpts{
			Name: "eventshop_audit_copy_lookups_total",
			Help: "Events older than the remembered window, looked up in their domain stream to tell a republished copy.",
		}),
		head: f.NewGauge(prometheus.GaugeOpts{
			Name: "eventshop_audit_chain_head_index",
			Help: "Chain index of the last entry this process knows of.",
		}),
		commits: f.NewHistogram(prometheus.HistogramOpts{
			Name:    "eventshop_audit_pipeline_entries",
			Help:    "Entries written together by one group commit of the audit appender (one round trip; one block unless it is split by size).",
			Buckets: []float64{1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024},
		}),
		blockEntries: f.NewHistogram(prometheus.HistogramOpts{
			Name:    "eventshop_audit_block_entries",
			Help:    "Entries per block stored on the AUDIT stream.",
			Buckets: []float64{1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024},
		}),
		blockBytes: f.NewHistogram(prometheus.HistogramOpts{
			Name:    "eventshop_audit_block_bytes",
			Help:    "Bytes per block stored on the AUDIT stream.",
			Buckets: prometheus.ExponentialBuckets(1024, 2, 10), // 1 KiB .. 512 KiB
		}),
	}
}

// block records a stored block of entries, whose last entry is at index.
func (m *Metrics) block(entries, bytes int, index uint64) {
	if m == nil {
		return
	}
	m.appendedTotal.Add(float64(entries))
	m.blockEntries.Observe(float64(entries))
	m.blockBytes.Observe(float64(bytes))
	m.head.Set(float64(index))
}

func (m *Metrics) duplicate() {
	if m == nil {
		return
	}
	m.duplicatesTotal.Inc()
}

func (m *Metrics) lookup() {
	if m == nil {
		return
	}
	m.lookupsTotal.Inc()
}

func (m *Metrics) headIndex(index uint64) {
	if m == nil {
		return
	}
	m.head.Set(float64(index))
}

func (m *Metrics) commit(entries int) {
	if m == nil {
		return
	}
	m.commits.Observe(float64(entries))
}
