package app

import (
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"

	"github.com/eventshop/inventory-service/internal/stock"
)

// Metrics counts what the use cases decided.
type Metrics struct {
	reservations *prometheus.CounterVec
	conflicts    *prometheus.CounterVec
}

// NewMetrics registers eventshop_inventory_reservations_total{outcome}
// with reg (outcome is reserved, rejected, released, committed or void),
// and eventshop_inventory_cas_conflicts_total{op}, the compare-and-set
// races each operation lost and retried.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		reservations: promauto.With(reg).NewCounterVec(prometheus.CounterOpts{
			Name: "eventshop_inventory_reservations_total",
			Help: "Reservation state changes, by outcome (reserved, rejected, released, committed, void).",
		}, []string{"outcome"}),
		conflicts: promauto.With(reg).NewCounterVec(prometheus.CounterOpts{
			Name: "eventshop_inventory_cas_conflicts_total",
			Help: "Optimistic-concurrency conflicts on the inventory KV bucket that were retried, by operation.",
		}, []string{"op"}),
	}
	for _, s := range []stock.Status{stock.StatusReserved, stock.StatusRejected, stock.StatusReleased, stock.StatusCommitted, stock.StatusVoid} {
		m.reservations.WithLabelValues(string(s)) // export zeros, so rates work from the start
	}
	return m
}

func (m *Metrics) outcome(s stock.Status) {
	if m == nil {
		return
	}
	m.reservations.WithLabelValues(string(s)).Inc()
}
