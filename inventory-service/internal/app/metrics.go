package app

import (
	"fmt"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/eventshop/inventory-service/internal/stock"
)

// Metrics counts what the use cases decided.
type Metrics struct {
	reservations *prometheus.CounterVec
}

// NewMetrics registers eventshop_inventory_reservations_total{outcome}
// with reg; outcome is reserved, rejected, released, committed or void.
func NewMetrics(reg prometheus.Registerer) (*Metrics, error) {
	m := &Metrics{reservations: prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "eventshop_inventory_reservations_total",
		Help: "Reservation state changes, by outcome (reserved, rejected, released, committed, void).",
	}, []string{"outcome"})}
	if err := reg.Register(m.reservations); err != nil {
		return nil, fmt.Errorf("register reservation metrics: %w", err)
	}
	for _, s := range []stock.Status{stock.StatusReserved, stock.StatusRejected, stock.StatusReleased, stock.StatusCommitted, stock.StatusVoid} {
		m.reservations.WithLabelValues(string(s)) // export zeros, so rates work from the start
	}
	return m, nil
}

func (m *Metrics) outcome(s stock.Status) {
	if m == nil {
		return
	}
	m.reservations.WithLabelValues(string(s)).Inc()
}
